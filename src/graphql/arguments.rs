//! Argument values checked before execution: page sizes out of range and
//! ids that cannot be ours are refused as request errors, with no `data`,
//! instead of failing one field while the rest of the operation runs.
//!
//! The arguments to check are read from the served schema: every `first`
//! and `last` of type `Int` is a page size, every argument of type `ID`
//! (or a list of them) an id. Values come from the document's literals and
//! the request's variables; a resolver's own rules (a page of at least one,
//! an id that matches nothing) still apply when it runs.

use crate::graphql::operation::chosen_operation;
use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet, Type,
    TypeKind, TypeSystemDefinition,
};
use async_graphql::{Name, Pos, ServerError, Value, Variables, parser};

use crate::domain::contact_list::MAX_PAGE_SIZE;
use crate::domain::ids::parse_id;
use crate::graphql::errors::client_request_error;

/// What an argument's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// A page size: from 0 to [`MAX_PAGE_SIZE`].
    PageSize,
    /// An id our codec decodes, or a list of them.
    Id,
}

/// An argument value refused before execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentRefusal {
    /// The argument, as the field declares it.
    pub argument: String,
    pub message: String,
    pub pos: Pos,
}

impl ArgumentRefusal {
    /// The refusal as a request error, coded and naming the argument like
    /// every other bad input.
    pub fn into_server_error(self) -> ServerError {
        let mut error = client_request_error(format!("{}: {}", self.argument, self.message));
        error.locations = vec![self.pos];
        if let Some(extensions) = error.extensions.as_mut() {
            extensions.set("field", self.argument.as_str());
        }
        error
    }
}

/// The checked arguments of each field of the schema, and what each field
/// returns (to follow the selections).
#[derive(Debug, Default)]
pub struct ArgumentRules {
    fields: HashMap<(String, String), FieldRules>,
    roots: [String; 3],
}

#[derive(Debug, Default)]
struct FieldRules {
    returns: String,
    arguments: Vec<(String, Rule)>,
}

fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named_type(item),
    }
}

fn rule_of(name: &str, ty: &Type) -> Option<Rule> {
    match named_type(ty) {
        "Int" if matches!(name, "first" | "last") && !matches!(ty.base, BaseType::List(_)) => {
            Some(Rule::PageSize)
        }
        "ID" => Some(Rule::Id),
        _ => None,
    }
}

impl ArgumentRules {
    /// The rules of the schema this server serves.
    pub fn of_served_schema() -> ArgumentRules {
        ArgumentRules::from_sdl(&crate::graphql::sdl()).expect("the served SDL parses")
    }

    pub fn from_sdl(sdl: &str) -> Result<ArgumentRules, parser::Error> {
        let document = parser::parse_schema(sdl)?;
        let mut rules = ArgumentRules {
            fields: HashMap::new(),
            roots: ["Query".into(), "Mutation".into(), "Subscription".into()],
        };
        for definition in &document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = &schema.node;
                    for (root, name) in rules.roots.iter_mut().zip([
                        &schema.query,
                        &schema.mutation,
                        &schema.subscription,
                    ]) {
                        if let Some(name) = name {
                            *root = name.node.to_string();
                        }
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let fields = match &ty.node.kind {
                        TypeKind::Object(object) => &object.fields,
                        TypeKind::Interface(interface) => &interface.fields,
                        _ => continue,
                    };
                    for field in fields {
                        let field = &field.node;
                        let arguments = field
                            .arguments
                            .iter()
                            .filter_map(|argument| {
                                let name = argument.node.name.node.as_str();
                                rule_of(name, &argument.node.ty.node)
                                    .map(|rule| (name.to_owned(), rule))
                            })
                            .collect();
                        rules.fields.insert(
                            (ty.node.name.node.to_string(), field.name.node.to_string()),
                            FieldRules {
                                returns: named_type(&field.ty.node).to_owned(),
                                arguments,
                            },
                        );
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Ok(rules)
    }

    /// The first refused argument value of the operation that will run
    /// (`operation_name`, or the document's only one), fragments included.
    pub fn check(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<(), ArgumentRefusal> {
        let Some(operation) = chosen_operation(document, operation_name) else {
            // No such operation: the executor refuses the document itself.
            return Ok(());
        };
        let root = match operation.ty {
            async_graphql::parser::types::OperationType::Query => &self.roots[0],
            async_graphql::parser::types::OperationType::Mutation => &self.roots[1],
            async_graphql::parser::types::OperationType::Subscription => &self.roots[2],
        };
        let mut walk = Walk {
            rules: self,
            document,
            operation,
            variables,
            checked_fragments: HashSet::new(),
        };
        walk.selections(root, &operation.selection_set.node)
    }
}

struct Walk<'a> {
    rules: &'a ArgumentRules,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    /// A fragment's arguments are the same wherever it is spread: checked
    /// once, which also keeps a (refused anyway) cycle finite.
    checked_fragments: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selections(
        &mut self,
        type_name: &str,
        set: &'a SelectionSet,
    ) -> Result<(), ArgumentRefusal> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => self.field(type_name, &field.node)?,
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(type_name, |condition| condition.node.on.node.as_str());
                    self.selections(on, &inline.node.selection_set.node)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if !self.checked_fragments.insert(name) {
                        continue;
                    }
                    if let Some(fragment) = self.document.fragments.get(name) {
                        self.selections(
                            &fragment.node.type_condition.node.on.node,
                            &fragment.node.selection_set.node,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    fn field(&mut self, type_name: &str, field: &'a Field) -> Result<(), ArgumentRefusal> {
        let key = (type_name.to_owned(), field.name.node.to_string());
        let Some(rules) = self.rules.fields.get(&key) else {
            // Introspection, `__typename`, or a field of a union member
            // named by a fragment: nothing of ours to check.
            return Ok(());
        };
        for (argument, rule) in &rules.arguments {
            self.argument(field, argument, *rule)?;
        }
        self.selections(&rules.returns, &field.selection_set.node)
    }

    fn argument(&self, field: &Field, argument: &str, rule: Rule) -> Result<(), ArgumentRefusal> {
        let Some(value) = field.get_argument(argument) else {
            return Ok(());
        };
        let Ok(resolved) = value
            .node
            .clone()
            .into_const_with(|variable| self.variable(&variable).cloned().ok_or(()))
        else {
            // A variable the request did not give: validation reports it.
            return Ok(());
        };
        check_value(rule, &resolved).map_err(|message| ArgumentRefusal {
            argument: argument.to_owned(),
            message,
            pos: value.pos,
        })
    }

    fn variable(&self, name: &Name) -> Option<&'a Value> {
        self.variables.get(name).or_else(|| {
            self.operation
                .variable_definitions
                .iter()
                .find(|definition| definition.node.name.node == *name)
                .and_then(|definition| definition.node.default_value())
        })
    }
}

/// Why `value` breaks `rule`, if it does. Null passes: a missing value is
/// the field's default, or validation's to refuse.
fn check_value(rule: Rule, value: &Value) -> Result<(), String> {
    match (rule, value) {
        (_, Value::Null) => Ok(()),
        (Rule::PageSize, Value::Number(number)) => match number.as_i64() {
            Some(size) if size < 0 => Err("must not be negative".to_owned()),
            Some(size) if size as u64 <= MAX_PAGE_SIZE => Ok(()),
            _ => Err(format!("must be at most {MAX_PAGE_SIZE}")),
        },
        (Rule::Id, Value::String(raw)) => parse_id(raw, "")
            .map(|_| ())
            .map_err(|_| "is not a valid id".to_owned()),
        (Rule::Id, Value::List(items)) => items
            .iter()
            .try_for_each(|item| check_value(Rule::Id, item)),
        // Any other type is validation's to refuse, which has run already.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "
        type Query { contact(id: ID!): Contact! contacts(first: Int, ids: [ID!]): [Contact!]! }
        type Contact { id: ID! chats(first: Int! = 20, after: String): [Chat!]! }
        type Chat { id: ID! }
        schema { query: Query }";

    fn check(query: &str, variables: serde_json::Value) -> Result<(), ArgumentRefusal> {
        let rules = ArgumentRules::from_sdl(SDL).unwrap();
        let document = parser::parse_query(query).unwrap();
        rules.check(&document, None, &Variables::from_json(variables))
    }

    const ID: &str = "0190a5b2-0000-7000-8000-000000000000";

    #[test]
    fn page_sizes_in_range_and_decodable_ids_pass() {
        let query = format!(r#"{{ contact(id: "{ID}") {{ chats(first: 100) {{ id }} }} }}"#);
        assert_eq!(check(&query, serde_json::json!({})), Ok(()));
        let query = "query($n: Int) { contacts(first: $n) { id } }";
        assert_eq!(check(query, serde_json::json!({"n": 0})), Ok(()));
        assert_eq!(check(query, serde_json::json!({})), Ok(()));
    }

    #[test]
    fn nested_page_sizes_out_of_range_are_refused_naming_the_argument() {
        let query = format!(r#"{{ contact(id: "{ID}") {{ id chats(first: 100000) {{ id }} }} }}"#);
        let refusal = check(&query, serde_json::json!({})).unwrap_err();
        assert_eq!(refusal.argument, "first");
        assert_eq!(refusal.message, "must be at most 100");
        let query = "query($n: Int) { contacts(first: $n) { id } }";
        let refusal = check(query, serde_json::json!({"n": -1})).unwrap_err();
        assert_eq!(refusal.message, "must not be negative");
    }

    #[test]
    fn ids_the_codec_cannot_decode_are_refused_in_variables_lists_and_fragments() {
        let query = "query($id: ID!) { contact(id: $id) { id } }";
        let refusal = check(query, serde_json::json!({"id": "nope"})).unwrap_err();
        assert_eq!(
            (refusal.argument.as_str(), refusal.message.as_str()),
            ("id", "is not a valid id")
        );
        let query = format!(r#"{{ contacts(ids: ["{ID}", "x"]) {{ id }} }}"#);
        assert_eq!(
            check(&query, serde_json::json!({})).unwrap_err().argument,
            "ids"
        );
        let query = format!(
            r#"{{ contact(id: "{ID}") {{ ...Detail }} }} fragment Detail on Contact {{ chats(first: 101) {{ id }} }}"#
        );
        assert_eq!(
            check(&query, serde_json::json!({})).unwrap_err().argument,
            "first"
        );
    }

    #[test]
    fn the_error_is_a_coded_request_error_naming_the_argument() {
        let query = "query($id: ID!) { contact(id: $id) { id } }";
        let error = check(query, serde_json::json!({"id": "nope"}))
            .unwrap_err()
            .into_server_error();
        let extensions = error.extensions.unwrap();
        assert_eq!(extensions.get("code"), Some(&Value::from("BAD_USER_INPUT")));
        assert_eq!(extensions.get("field"), Some(&Value::from("id")));
        assert_eq!(error.message, "id: is not a valid id");
    }

    #[test]
    fn the_served_schema_has_rules_for_its_page_and_id_arguments() {
        let rules = ArgumentRules::of_served_schema();
        let contact = &rules.fields[&("QueryRoot".to_owned(), "contact".to_owned())];
        assert_eq!(contact.arguments, vec![("id".to_owned(), Rule::Id)]);
    }
}
