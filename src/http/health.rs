//! Probes for orchestrators: liveness and readiness.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use super::HttpState;
use crate::db;

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The service can do its work: the database answers.
pub async fn readyz(State(state): State<Arc<HttpState>>) -> (StatusCode, &'static str) {
    if db::is_ready(&state.services.db).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}
