//! What each field of the schema returns, for costing: one thing, a page
//! or a bounded list. Read from the served SDL, so a new field is costed by
//! its declared shape; only the sizes of unpaged lists are written here.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    BaseType, FieldDefinition, OperationType, ServiceDocument, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Value, parser};

use crate::domain::contact_list::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::domain::{duplicates, export_choices, forms, invitations, sessions};
use crate::protection::origins;

/// Projects one agent is costed as belonging to. Nothing caps it; a
/// support agent in more than a hundred projects is not a case to serve
/// in one document.
const PROJECTS_PER_AGENT: u64 = 100;

/// Members a project is costed as having; nothing caps it either.
const MEMBERS_PER_PROJECT: u64 = 100;

/// The most items of every list field without a page argument, by type
/// and field. A list field missing here fails a test.
pub const UNPAGED_LIST_SIZES: &[(&str, &str, u64)] = &[
    ("QueryRoot", "projects", PROJECTS_PER_AGENT),
    ("Agent", "projects", PROJECTS_PER_AGENT),
    ("Project", "members", MEMBERS_PER_PROJECT),
    (
        "Project",
        "allowedOrigins",
        origins::MAX_ORIGINS_PER_PROJECT as u64,
    ),
    ("QueryRoot", "formQuestions", forms::MAX_QUESTIONS as u64),
    (
        "MutationRoot",
        "reorderFormQuestions",
        forms::MAX_QUESTIONS as u64,
    ),
    ("ContactForm", "questions", forms::MAX_QUESTIONS as u64),
    (
        "SubmitContactFormPayload",
        "remaining",
        forms::MAX_QUESTIONS as u64,
    ),
    ("FormQuestion", "options", forms::MAX_OPTIONS as u64),
    ("VisitorQuestion", "options", forms::MAX_OPTIONS as u64),
    ("Contact", "possibleDuplicates", duplicates::MAX_DUPLICATES),
    (
        "Project",
        "invitations",
        invitations::MAX_INVITATIONS_LISTED,
    ),
    ("Agent", "invitations", invitations::MAX_INVITATIONS_LISTED),
    ("QueryRoot", "sessions", sessions::MAX_SESSIONS_LISTED),
    (
        "ExportJob",
        "columns",
        export_choices::MAX_EXPORT_COLUMNS as u64,
    ),
];

/// Fields whose work is not the rows they return, costed as the rows they
/// read: counting a project's contacts, and a list whose search or filter
/// may scan them (SQLite scans for a search; PostgreSQL uses its indexes,
/// but the rule is the same on both).
pub const SCAN_COSTS: &[(&str, &str, u64)] = &[
    ("ContactConnection", "totalCount", 10_000),
    ("QueryRoot", "contacts", 1_000),
];

/// Fields of a page object that read once per page, not once per item: a
/// page's size does not multiply them.
pub const ONCE_PER_PAGE: &[(&str, &str)] = &[("ContactConnection", "totalCount")];

/// What one mutation of a document costs besides what it selects: it
/// writes, and aliases run one after another.
pub const MUTATION_COST: u64 = 100;

/// A list the table forgot is still costed, as a full page.
const UNLISTED_LIST_SIZE: u64 = MAX_PAGE_SIZE;

/// The arguments that size a page.
pub(super) const PAGE_ARGUMENTS: [&str; 2] = ["first", "last"];

/// How many items a field's value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Size {
    /// An object or a scalar; also the items of a page, which the field
    /// returning the page already counted.
    One,
    /// A page: its `first`/`last` argument, or `default` without either.
    Page { default: u64 },
    /// A list without a page argument, of at most this many items.
    AtMost(u64),
}

#[derive(Debug)]
pub(super) struct FieldShape {
    pub returns: String,
    pub size: Size,
}

/// The costing view of a schema, built once with it.
#[derive(Debug)]
pub struct CostModel {
    fields: HashMap<(String, String), FieldShape>,
    roots: Roots,
    /// List fields neither paged, nor page items, nor in the table.
    unlisted: Vec<String>,
}

fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named_type(item),
    }
}

fn is_list(ty: &Type) -> bool {
    matches!(ty.base, BaseType::List(_))
}

fn page_default(field: &FieldDefinition) -> Option<u64> {
    let mut page_arguments = field
        .arguments
        .iter()
        .filter(|argument| PAGE_ARGUMENTS.contains(&argument.node.name.node.as_str()))
        .peekable();
    page_arguments.peek()?;
    let declared = page_arguments
        .filter_map(
            |argument| match argument.node.default_value.as_ref()?.node {
                Value::Number(ref number) => number.as_u64(),
                _ => None,
            },
        )
        .max();
    Some(declared.unwrap_or(DEFAULT_PAGE_SIZE))
}

impl CostModel {
    /// The model of the schema this server serves.
    pub fn of_served_schema() -> CostModel {
        CostModel::from_sdl(&crate::graphql::sdl()).expect("the served SDL parses")
    }

    pub fn from_sdl(sdl: &str) -> Result<CostModel, parser::Error> {
        let document = parser::parse_schema(sdl)?;
        let object_fields = object_fields(&document);

        // The object a paged field returns is a page (a connection, a
        // history): its lists are the page's items.
        let page_types: HashSet<&str> = object_fields
            .iter()
            .filter(|(_, field)| page_default(field).is_some() && !is_list(&field.ty.node))
            .map(|(_, field)| named_type(&field.ty.node))
            .collect();

        let mut fields = HashMap::new();
        let mut unlisted = Vec::new();
        for (type_name, field) in &object_fields {
            let field_name = field.name.node.as_str();
            let size = if let Some(default) = page_default(field) {
                Size::Page { default }
            } else if !is_list(&field.ty.node) || page_types.contains(type_name) {
                Size::One
            } else if let Some((_, _, most)) = UNPAGED_LIST_SIZES
                .iter()
                .find(|(on, name, _)| on == type_name && *name == field_name)
            {
                Size::AtMost(*most)
            } else {
                unlisted.push(format!("{type_name}.{field_name}"));
                Size::AtMost(UNLISTED_LIST_SIZE)
            };
            fields.insert(
                (type_name.to_string(), field_name.to_owned()),
                FieldShape {
                    returns: named_type(&field.ty.node).to_owned(),
                    size,
                },
            );
        }
        Ok(CostModel {
            fields,
            roots: roots(&document),
            unlisted,
        })
    }

    pub(super) fn field(&self, type_name: &str, field_name: &str) -> Option<&FieldShape> {
        self.fields
            .get(&(type_name.to_owned(), field_name.to_owned()))
    }

    /// The rows a field reads besides those it returns.
    pub(super) fn scan_cost(&self, type_name: &str, field_name: &str) -> u64 {
        let scan = SCAN_COSTS
            .iter()
            .find(|(on, name, _)| *on == type_name && *name == field_name)
            .map_or(0, |(_, _, rows)| *rows);
        if type_name == self.roots.mutation {
            scan.saturating_add(MUTATION_COST)
        } else {
            scan
        }
    }

    pub(super) fn root(&self, operation: OperationType) -> &str {
        match operation {
            OperationType::Query => &self.roots.query,
            OperationType::Mutation => &self.roots.mutation,
            OperationType::Subscription => &self.roots.subscription,
        }
    }

    /// List fields that have neither a page argument nor a size in
    /// [`UNPAGED_LIST_SIZES`]; empty while the table keeps up.
    pub fn unlisted_lists(&self) -> &[String] {
        &self.unlisted
    }

    /// Whether `type_name.field_name` is a list without a page argument.
    pub fn is_unpaged_list(&self, type_name: &str, field_name: &str) -> bool {
        matches!(
            self.field(type_name, field_name),
            Some(FieldShape {
                size: Size::AtMost(_),
                ..
            })
        )
    }
}

fn object_fields(document: &ServiceDocument) -> Vec<(&str, &FieldDefinition)> {
    let mut found = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let fields = match &ty.node.kind {
            TypeKind::Object(object) => &object.fields,
            TypeKind::Interface(interface) => &interface.fields,
            _ => continue,
        };
        found.extend(
            fields
                .iter()
                .map(|field| (ty.node.name.node.as_str(), &field.node)),
        );
    }
    found
}

/// The names of the root types.
#[derive(Debug)]
struct Roots {
    query: String,
    mutation: String,
    subscription: String,
}

fn roots(document: &ServiceDocument) -> Roots {
    let mut roots = Roots {
        query: "Query".to_owned(),
        mutation: "Mutation".to_owned(),
        subscription: "Subscription".to_owned(),
    };
    for definition in &document.definitions {
        let TypeSystemDefinition::Schema(schema) = definition else {
            continue;
        };
        for (root, name) in [
            (&mut roots.query, &schema.node.query),
            (&mut roots.mutation, &schema.node.mutation),
            (&mut roots.subscription, &schema.node.subscription),
        ] {
            if let Some(name) = name {
                *root = name.node.to_string();
            }
        }
    }
    roots
}
