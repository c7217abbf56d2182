//! Field errors null the nearest nullable ancestor, as the GraphQL spec
//! requires (6.4.4, handling field errors): async-graphql leaves the key of
//! a failed non-null field out instead, and normalised caches (Apollo
//! Client, Relay) reject or corrupt such answers. Every response with field
//! errors passes through here, over HTTP and websockets alike.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet, Type,
    TypeSystemDefinition,
};
use async_graphql::{Name, PathSegment, Response, Value, parser};

/// Each object type's fields and what they return, read from the served
/// schema once.
struct SchemaTypes {
    fields: HashMap<String, HashMap<String, Type>>,
    /// The root types of queries, mutations and subscriptions.
    roots: [String; 3],
}

fn root_index(operation: OperationType) -> usize {
    match operation {
        OperationType::Query => 0,
        OperationType::Mutation => 1,
        OperationType::Subscription => 2,
    }
}

static SCHEMA_TYPES: LazyLock<SchemaTypes> = LazyLock::new(|| SchemaTypes::from_sdl(&super::sdl()));

impl SchemaTypes {
    fn from_sdl(sdl: &str) -> SchemaTypes {
        let mut types = SchemaTypes {
            fields: HashMap::new(),
            roots: ["Query".into(), "Mutation".into(), "Subscription".into()],
        };
        let Ok(document) = parser::parse_schema(sdl) else {
            return types;
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    let fields = match definition.kind {
                        async_graphql::parser::types::TypeKind::Object(object) => object.fields,
                        async_graphql::parser::types::TypeKind::Interface(interface) => {
                            interface.fields
                        }
                        _ => continue,
                    };
                    types.fields.insert(
                        definition.name.node.to_string(),
                        fields
                            .into_iter()
                            .map(|field| (field.node.name.node.to_string(), field.node.ty.node))
                            .collect(),
                    );
                }
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    for (operation, root) in [
                        (OperationType::Query, schema.query),
                        (OperationType::Mutation, schema.mutation),
                        (OperationType::Subscription, schema.subscription),
                    ] {
                        if let Some(root) = root {
                            types.roots[root_index(operation)] = root.node.to_string();
                        }
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        types
    }

    fn field_type(&self, object: &str, field: &str) -> Option<&Type> {
        self.fields.get(object)?.get(field)
    }
}

/// Nulls what each field error requires, for the response of `query` (its
/// operation `operation_name`). A document that no longer parses, or a
/// path the document does not explain, is left as it is.
pub fn propagate_nulls(response: &mut Response, query: &str, operation_name: Option<&str>) {
    if response.errors.iter().all(|error| error.path.is_empty()) {
        return;
    }
    let Ok(document) = parser::parse_query(query) else {
        return;
    };
    let Some((operation_type, selection_set)) = operation(&document, operation_name) else {
        return;
    };
    let types = &*SCHEMA_TYPES;
    let root = &types.roots[root_index(operation_type)];
    for error in &response.errors {
        if error.path.is_empty() {
            continue;
        }
        let walk = PathWalk {
            types,
            document: &document,
        };
        match walk.nearest_nullable(root, selection_set, &error.path) {
            Some(Nullable::At(depth)) => null_at(&mut response.data, &error.path[..depth]),
            Some(Nullable::Data) => response.data = Value::Null,
            None => {}
        }
    }
}

fn operation<'d>(
    document: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(OperationType, &'d SelectionSet)> {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => &operation.node,
        (DocumentOperations::Multiple(operations), Some(name)) => &operations.get(name)?.node,
        (DocumentOperations::Multiple(operations), None) => &operations.values().next()?.node,
    };
    Some((operation.ty, &operation.selection_set.node))
}

/// Where the error's null goes: the value at the first `n` path segments,
/// or the whole `data`.
#[derive(Debug, PartialEq, Eq)]
enum Nullable {
    At(usize),
    Data,
}

struct PathWalk<'a> {
    types: &'a SchemaTypes,
    document: &'a ExecutableDocument,
}

impl<'a> PathWalk<'a> {
    /// Follows the path through the selections and the schema, noting for
    /// each position whether it may hold null, and returns the deepest
    /// nullable one.
    fn nearest_nullable(
        &self,
        root: &str,
        root_selections: &'a SelectionSet,
        path: &[PathSegment],
    ) -> Option<Nullable> {
        let mut object = root.to_owned();
        let mut selections: Vec<&'a SelectionSet> = vec![root_selections];
        let mut current: Option<Type> = None;
        let mut nullable_positions = Vec::with_capacity(path.len());
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    if let Some(ty) = current.take() {
                        object = named_type(&ty).to_owned();
                    }
                    let (field_name, sub_selections) = self.fields_with_key(&selections, key)?;
                    let ty = if field_name == "__typename" {
                        Type::new("String!")?
                    } else {
                        self.types.field_type(&object, &field_name)?.clone()
                    };
                    nullable_positions.push(ty.nullable);
                    selections = sub_selections;
                    current = Some(ty);
                }
                PathSegment::Index(_) => {
                    let BaseType::List(item) = current.take()?.base else {
                        return None;
                    };
                    nullable_positions.push(item.nullable);
                    current = Some(*item);
                }
            }
        }
        Some(
            match nullable_positions.iter().rposition(|nullable| *nullable) {
                Some(position) => Nullable::At(position + 1),
                None => Nullable::Data,
            },
        )
    }

    /// The field name behind a response key, and the selections under every
    /// field of that key (validation made them agree on the field).
    fn fields_with_key(
        &self,
        sets: &[&'a SelectionSet],
        key: &str,
    ) -> Option<(String, Vec<&'a SelectionSet>)> {
        let mut name = None;
        let mut under = Vec::new();
        let mut pending: Vec<&'a SelectionSet> = sets.to_vec();
        let mut spread: Vec<&Name> = Vec::new();
        while let Some(set) = pending.pop() {
            for selection in &set.items {
                match &selection.node {
                    Selection::Field(field) => {
                        let field = &field.node;
                        if field.response_key().node.as_str() == key {
                            name.get_or_insert_with(|| field.name.node.to_string());
                            under.push(&field.selection_set.node);
                        }
                    }
                    Selection::InlineFragment(inline) => {
                        pending.push(&inline.node.selection_set.node);
                    }
                    Selection::FragmentSpread(fragment) => {
                        let fragment_name = &fragment.node.fragment_name.node;
                        if spread.contains(&fragment_name) {
                            continue;
                        }
                        spread.push(fragment_name);
                        if let Some(definition) = self.document.fragments.get(fragment_name) {
                            pending.push(&definition.node.selection_set.node);
                        }
                    }
                }
            }
        }
        name.map(|name| (name, under))
    }
}

fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named_type(item),
    }
}

/// Sets the value at `path` to null, when the path leads to a value or to
/// a missing key of an object; a path through a null already is done.
fn null_at(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        *data = Value::Null;
        return;
    };
    let mut value = data;
    for segment in parents {
        value = match (segment, value) {
            (PathSegment::Field(key), Value::Object(object)) => {
                match object.get_mut(key.as_str()) {
                    Some(inner) => inner,
                    None => return,
                }
            }
            (PathSegment::Index(index), Value::List(items)) => match items.get_mut(*index) {
                Some(inner) => inner,
                None => return,
            },
            _ => return,
        };
    }
    match (last, value) {
        (PathSegment::Field(key), Value::Object(object)) => {
            object.insert(Name::new(key), Value::Null);
        }
        (PathSegment::Index(index), Value::List(items)) => {
            if let Some(item) = items.get_mut(*index) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::ServerError;
    use serde_json::json;

    const SDL: &str = "
        schema { query: QueryRoot }
        type QueryRoot { contact(id: ID!): Contact! maybe(id: ID!): Contact contacts: [Contact!]! }
        type Contact { id: ID! name: String chats(first: Int): [Chat!]! nullableChats: [Chat] }
        type Chat { id: ID! ip: String }
    ";

    fn nullable_for(query: &str, path: Vec<PathSegment>) -> Option<Nullable> {
        let types = SchemaTypes::from_sdl(SDL);
        let document = parser::parse_query(query).unwrap();
        let (_, selections) = operation(&document, None).unwrap();
        PathWalk {
            types: &types,
            document: &document,
        }
        .nearest_nullable("QueryRoot", selections, &path)
    }

    fn field(name: &str) -> PathSegment {
        PathSegment::Field(name.to_owned())
    }

    #[test]
    fn an_error_under_non_null_fields_nulls_the_nearest_nullable_ancestor() {
        assert_eq!(
            nullable_for(
                "{ contact(id: 1) { id chats { id } } }",
                vec![field("contact"), field("chats")]
            ),
            Some(Nullable::Data)
        );
        assert_eq!(
            nullable_for(
                "{ c: maybe(id: 1) { id list: chats { id } } }",
                vec![field("c"), field("list")]
            ),
            Some(Nullable::At(1))
        );
        assert_eq!(
            nullable_for(
                "{ contact(id: 1) { nullableChats { id } } }",
                vec![
                    field("contact"),
                    field("nullableChats"),
                    PathSegment::Index(2),
                    field("id")
                ]
            ),
            Some(Nullable::At(3))
        );
        assert_eq!(
            nullable_for(
                "{ ...F } fragment F on QueryRoot { contact(id: 1) { ... on Contact { name } } }",
                vec![field("contact"), field("name")]
            ),
            Some(Nullable::At(2))
        );
        assert_eq!(
            nullable_for("{ contact(id: 1) { id } }", vec![field("nope")]),
            None
        );
    }

    #[test]
    fn nulls_land_where_the_path_says() {
        let mut data =
            Value::from_json(json!({"c": {"id": "1"}, "d": [{"x": 1}, {"x": 2}]})).unwrap();
        null_at(&mut data, &[field("c"), field("list")]);
        null_at(&mut data, &[field("d"), PathSegment::Index(1)]);
        assert_eq!(
            data.into_json().unwrap(),
            json!({"c": {"id": "1", "list": null}, "d": [{"x": 1}, null]})
        );
    }

    #[test]
    fn responses_of_the_served_schema_follow_the_spec() {
        let query = "{ contact(id: \"x\") { id chats(first: 100000) { id } } }";
        let mut response =
            Response::new(Value::from_json(json!({"contact": {"id": "x"}})).unwrap());
        let mut error = ServerError::new("first: at most 100", None);
        error.path = vec![field("contact"), field("chats")];
        response.errors.push(error);
        propagate_nulls(&mut response, query, None);
        assert_eq!(response.data, Value::Null);
    }
}
