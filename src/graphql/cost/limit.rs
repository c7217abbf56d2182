//! The row cost limit as a schema extension, so that HTTP and websocket
//! requests pass the same check, after async-graphql's own validation.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::graphql::errors::client_request_error;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ServerResult, ValidationResult, Variables};

use super::shapes::CostModel;

/// Refuses documents that may read more than `limit` rows.
pub struct RowCostLimit {
    model: Arc<CostModel>,
    limit: u64,
}

impl RowCostLimit {
    pub fn new(model: CostModel, limit: u64) -> Self {
        RowCostLimit {
            model: Arc::new(model),
            limit,
        }
    }
}

impl ExtensionFactory for RowCostLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RowCostCheck {
            model: self.model.clone(),
            limit: self.limit,
            request: Mutex::default(),
        })
    }
}

/// One request's check: the hooks before validation keep what the count
/// needs, the validation hook counts once the document is known valid.
struct RowCostCheck {
    model: Arc<CostModel>,
    limit: u64,
    request: Mutex<SeenRequest>,
}

#[derive(Default)]
struct SeenRequest {
    operation_name: Option<String>,
    variables: Variables,
    document: Option<ExecutableDocument>,
}

impl RowCostCheck {
    fn seen(&self) -> MutexGuard<'_, SeenRequest> {
        self.request.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Extension for RowCostCheck {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        self.seen().operation_name = request.operation_name.clone();
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mut seen = self.seen();
        seen.variables = variables.clone();
        seen.document = Some(document.clone());
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let validated = next.run(ctx).await?;
        let seen = std::mem::take(&mut *self.seen());
        let cost = seen.document.as_ref().and_then(|document| {
            self.model
                .cost_of(document, seen.operation_name.as_deref(), &seen.variables)
        });
        match cost {
            Some(cost) if cost > self.limit => Err(vec![too_costly(cost, self.limit)]),
            _ => Ok(validated),
        }
    }
}

fn too_costly(cost: u64, limit: u64) -> ServerError {
    let mut error = client_request_error(format!(
        "the query costs {cost} rows, more than the limit of {limit}"
    ));
    if let Some(extensions) = error.extensions.as_mut() {
        extensions.set("cost", cost);
        extensions.set("limit", limit);
    }
    error
}
