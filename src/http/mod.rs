//! The HTTP surface: the GraphQL endpoint, its playground and the health probes.

mod caller;
pub mod cors;
mod downloads;
mod fragment_expansion;
mod graphql;
mod health;
mod input_guard;
mod metrics;
mod negotiation;
mod parsed_documents;
pub mod persisted_queries;
mod playground;
pub(crate) mod request_log;
mod request_pipeline;
mod websocket;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, Request};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::graphql::AppSchema;
use crate::metrics::Metrics;
use crate::services::Services;
pub use request_pipeline::Pipeline;

#[derive(Clone)]
pub struct HttpState {
    pub schema: AppSchema,
    pub services: Services,
    pub max_body_bytes: usize,
    /// Automatic persisted queries registered with this instance.
    pub persisted_queries: Arc<persisted_queries::PersistedQueries>,
    /// Cancelled when the server begins to shut down.
    pub shutdown: CancellationToken,
    pub metrics: Arc<Metrics>,
    pub pipeline: Arc<Pipeline>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API; `/metrics` too unless `METRICS_ADDR` serves it apart.
pub fn router(state: HttpState) -> Router {
    let cors = cors::layer(state.services.origins.clone());
    let metrics_apart = state.services.settings.metrics_addr.is_some();
    let state = Arc::new(state);
    let mut routes = Router::new();
    if !metrics_apart {
        routes = routes.route("/metrics", get(metrics::scrape));
    }
    routes
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    request_log::log_graphql_requests,
                )),
        )
        .route(
            &format!("{}/{{name}}", playground::ASSETS_PATH),
            get(playground::asset),
        )
        .route("/exports/{*key}", get(downloads::download))
        .route("/export-downloads/{job_id}", get(downloads::export_link))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .layer(cors)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                let span = tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                );
                crate::telemetry::continue_trace(&span, request.headers());
                span
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// `/metrics` alone, for `METRICS_ADDR`.
pub fn metrics_router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .with_state(Arc::new(state))
}
