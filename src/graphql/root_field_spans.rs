//! A span around each root field's resolver, for traces: where a request's
//! time goes, field by field, without a span for every nested value.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};
use tracing::Instrument as _;

/// Registered only when spans go out (`OTEL_EXPORTER_OTLP_ENDPOINT`): an
/// extension's resolve hook runs for every field of every answer.
pub struct RootFieldSpans;

impl ExtensionFactory for RootFieldSpans {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RootFieldSpans)
    }
}

#[async_trait::async_trait]
impl Extension for RootFieldSpans {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        let span = tracing::info_span!(
            "graphql field",
            field = info.name,
            parent_type = info.parent_type,
            return_type = info.return_type,
        );
        next.run(ctx, info).instrument(span).await
    }
}
