//! The depth limit, and introspection's own rule: data queries nest at most
//! `MAX_QUERY_DEPTH` fields, while the subtrees of `__schema` and `__type`
//! follow the rule of introspection instead (one `__schema` per document,
//! `ofType` at most nine levels deep), so that the standard introspection
//! query of GraphQL tools passes without opening a way around the limits.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};

/// `ofType` levels introspection may ask for: graphql-js's standard query
/// asks for nine since 16.9 (seven before), and GraphiQL 4 sends that one.
pub const MAX_OF_TYPE_LEVELS: usize = 9;
/// `__schema` fields one document may ask for (fragments spread).
pub const MAX_SCHEMA_FIELDS: usize = 1;

fn is_introspection_root(field: &Field) -> bool {
    matches!(field.name.node.as_str(), "__schema" | "__type")
}

/// Why a document breaks the rule.
#[derive(Debug, PartialEq, Eq)]
pub enum DepthRefusal {
    TooDeep { limit: usize },
    TooManySchemas,
    OfTypeTooDeep,
}

impl DepthRefusal {
    pub fn message(&self) -> String {
        match self {
            DepthRefusal::TooDeep { limit } => {
                format!("the query nests fields deeper than {limit} levels")
            }
            DepthRefusal::TooManySchemas => {
                format!("a document may ask for __schema at most {MAX_SCHEMA_FIELDS} time")
            }
            DepthRefusal::OfTypeTooDeep => {
                format!("introspection may nest ofType at most {MAX_OF_TYPE_LEVELS} levels")
            }
        }
    }
}

/// What one selection set measures, fragments spread (each worked out once).
#[derive(Clone, Copy, Default)]
struct Shape {
    /// Deepest data field nesting, introspection subtrees counting one.
    depth: usize,
    /// `__schema` fields.
    schemas: usize,
    /// Deepest chain of `ofType` fields.
    of_type: usize,
}

struct Measure<'d> {
    document: &'d ExecutableDocument,
    fragments: HashMap<&'d Name, Shape>,
    /// Fragments being measured: a spread back into one is a cycle, which
    /// validation refuses; it counts nothing here.
    measuring: Vec<&'d Name>,
}

impl<'d> Measure<'d> {
    /// Recursion follows the document: selection sets are bounded by the
    /// input guard, fragment spreads by async-graphql's recursive-depth
    /// check, which has run when this does.
    fn selection_set(&mut self, set: &'d SelectionSet, in_introspection: bool) -> Shape {
        let mut shape = Shape::default();
        for selection in &set.items {
            let inner = match &selection.node {
                Selection::Field(field) => self.field(&field.node, in_introspection),
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, in_introspection)
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            shape.depth = shape.depth.max(inner.depth);
            shape.of_type = shape.of_type.max(inner.of_type);
            shape.schemas = shape.schemas.saturating_add(inner.schemas);
        }
        shape
    }

    fn field(&mut self, field: &'d Field, in_introspection: bool) -> Shape {
        let introspection = in_introspection || is_introspection_root(field);
        let inner = self.selection_set(&field.selection_set.node, introspection);
        let is_of_type = introspection && field.name.node.as_str() == "ofType";
        Shape {
            depth: if introspection { 1 } else { inner.depth + 1 },
            schemas: inner.schemas + usize::from(field.name.node.as_str() == "__schema"),
            of_type: inner.of_type + usize::from(is_of_type),
        }
    }

    /// A fragment measures the same wherever it is spread: one on an
    /// introspection type (`on __Type`) holds introspection, any other data.
    fn fragment(&mut self, name: &'d Name) -> Shape {
        if let Some(shape) = self.fragments.get(name) {
            return *shape;
        }
        if self.measuring.contains(&name) {
            return Shape::default();
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return Shape::default();
        };
        let on_introspection_type = fragment.node.type_condition.node.on.node.starts_with("__");
        self.measuring.push(name);
        let shape = self.selection_set(&fragment.node.selection_set.node, on_introspection_type);
        self.measuring.pop();
        self.fragments.insert(name, shape);
        shape
    }
}

/// Checks every operation of the document.
pub fn check(document: &ExecutableDocument, max_depth: usize) -> Result<(), DepthRefusal> {
    let mut measure = Measure {
        document,
        fragments: HashMap::new(),
        measuring: Vec::new(),
    };
    let mut schemas = 0usize;
    for (_, operation) in document.operations.iter() {
        let shape = measure.selection_set(&operation.node.selection_set.node, false);
        if shape.depth > max_depth {
            return Err(DepthRefusal::TooDeep { limit: max_depth });
        }
        if shape.of_type > MAX_OF_TYPE_LEVELS {
            return Err(DepthRefusal::OfTypeTooDeep);
        }
        schemas = schemas.saturating_add(shape.schemas);
    }
    if schemas > MAX_SCHEMA_FIELDS {
        return Err(DepthRefusal::TooManySchemas);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    const INTROSPECTION: &str = include_str!("../../tests/support/introspection_query.graphql");

    fn checked(query: &str, max_depth: usize) -> Result<(), DepthRefusal> {
        check(&parse_query(query).unwrap(), max_depth)
    }

    fn nested_fields(depth: usize) -> String {
        format!(
            "{{ {}id{} }}",
            "a { ".repeat(depth - 1),
            " }".repeat(depth - 1)
        )
    }

    #[test]
    fn data_queries_are_limited_with_fragments_spread() {
        assert_eq!(checked(&nested_fields(12), 12), Ok(()));
        assert_eq!(
            checked(&nested_fields(13), 12),
            Err(DepthRefusal::TooDeep { limit: 12 })
        );
        let through_fragment = "{ a { a { ...F } } } fragment F on T { a { a { a { a { a { a { a { a { a { a { id } } } } } } } } } } }";
        assert_eq!(
            checked(through_fragment, 12),
            Err(DepthRefusal::TooDeep { limit: 12 })
        );
    }

    #[test]
    fn the_standard_introspection_query_passes_at_the_default_depth() {
        assert_eq!(checked(INTROSPECTION, 12), Ok(()));
        let inlined = INTROSPECTION
            .split_once("fragment TypeRef on __Type {")
            .unwrap()
            .1;
        let inline_query =
            format!("{{ __schema {{ types {{ fields {{ type {{ {inlined} }} }} }} }}");
        assert_eq!(checked(&inline_query, 12), Ok(()));
    }

    #[test]
    fn introspection_has_its_own_rule() {
        let of_type = |levels: usize| {
            format!(
                "{{ __type(name: \"Contact\") {{ {}name{} }} }}",
                "ofType { ".repeat(levels),
                " }".repeat(levels)
            )
        };
        assert_eq!(checked(&of_type(MAX_OF_TYPE_LEVELS), 12), Ok(()));
        assert_eq!(
            checked(&of_type(MAX_OF_TYPE_LEVELS + 1), 12),
            Err(DepthRefusal::OfTypeTooDeep)
        );
        assert_eq!(
            checked(
                "{ a: __schema { queryType { name } } b: __schema { queryType { name } } }",
                12
            ),
            Err(DepthRefusal::TooManySchemas)
        );
        assert_eq!(
            checked(
                "{ ...S ...S } fragment S on QueryRoot { __schema { queryType { name } } }",
                12
            ),
            Err(DepthRefusal::TooManySchemas)
        );
    }
}
