//! `INTROSPECTION=false`: documents that ask for `__schema` or `__type`
//! are refused before anything runs, as request errors with a code.
//! async-graphql's own switch alone answers such fields with null, which a
//! tool would read as an empty schema rather than a refusal. `__typename`
//! is not introspection of the schema and keeps working.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerResult, Variables};

use crate::graphql::errors::client_request_error;

pub const REFUSAL: &str = "introspection is disabled on this server";

pub struct IntrospectionOff;

impl ExtensionFactory for IntrospectionOff {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(IntrospectionOff)
    }
}

#[async_trait::async_trait]
impl Extension for IntrospectionOff {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if asks_for_introspection(&document) {
            return Err(client_request_error(REFUSAL));
        }
        Ok(document)
    }
}

/// Any operation or fragment of the document, used or not: a fragment
/// is where a tool would hide the field.
fn asks_for_introspection(document: &ExecutableDocument) -> bool {
    document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set.node),
        )
        .any(selects_introspection)
}

/// Recursion follows the document's nesting, which the input guard bounds.
fn selects_introspection(set: &SelectionSet) -> bool {
    set.items.iter().any(|selection| match &selection.node {
        Selection::Field(field) => {
            matches!(field.node.name.node.as_str(), "__schema" | "__type")
                || selects_introspection(&field.node.selection_set.node)
        }
        Selection::InlineFragment(inline) => selects_introspection(&inline.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn asks(query: &str) -> bool {
        asks_for_introspection(&parse_query(query).unwrap())
    }

    #[test]
    fn schema_and_type_are_introspection_anywhere_in_the_document() {
        assert!(asks("{ __schema { types { name } } }"));
        assert!(asks(
            "query { me { id } __type(name: \"Contact\") { name } }"
        ));
        assert!(asks(
            "{ ...F } fragment F on QueryRoot { __schema { queryType { name } } }"
        ));
        assert!(asks(
            "{ ... on QueryRoot { __schema { queryType { name } } } }"
        ));
        assert!(asks(include_str!(
            "../../tests/support/introspection_query.graphql"
        )));
    }

    #[test]
    fn typename_and_data_are_not() {
        assert!(!asks("{ __typename }"));
        assert!(!asks("{ me { id __typename } }"));
        assert!(!asks(
            "mutation { login(email: \"a\", password: \"b\") { token } }"
        ));
    }
}
