//! The checks of a parsed document that async-graphql does not make: its
//! depth (with the introspection rule), its argument values and its row
//! cost. The request pipeline runs them, over HTTP and websockets alike,
//! before the document reaches the schema.
//!
//! They are not schema extensions: with any extension registered,
//! async-graphql sends every field of every answer through the extension
//! chain, which cost a page request about a fifth of its throughput
//! (BENCHMARKS.md, "Where the time goes").

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, Variables};

use super::arguments::ArgumentRules;
use super::cost::{CostModel, too_costly};
use super::depth;
use super::errors::client_request_error;
use crate::config::Limits;

pub struct DocumentChecks {
    max_depth: usize,
    arguments: ArgumentRules,
    cost: CostModel,
    max_cost: u64,
}

impl DocumentChecks {
    /// The checks of the served schema at `limits`.
    pub fn new(limits: &Limits) -> DocumentChecks {
        DocumentChecks {
            max_depth: limits.max_query_depth,
            arguments: ArgumentRules::of_served_schema(),
            cost: CostModel::of_served_schema(),
            max_cost: limits.max_query_cost,
        }
    }

    /// The first check the operation that will run (`operation_name`, or
    /// the document's only one) fails. A page size out of range is named
    /// as such before the cost it would add up to.
    pub fn check(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<(), ServerError> {
        depth::check(document, self.max_depth)
            .map_err(|refusal| client_request_error(refusal.message()))?;
        self.arguments
            .check(document, operation_name, variables)
            .map_err(|refusal| refusal.into_server_error())?;
        match self.cost.cost_of(document, operation_name, variables) {
            Some(cost) if cost > self.max_cost => Err(too_costly(cost, self.max_cost)),
            _ => Ok(()),
        }
    }
}
