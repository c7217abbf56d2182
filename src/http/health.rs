//! Probes for orchestrators: liveness (cheap, no dependency asked) and
//! readiness (every service this instance depends on, see `readiness`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::HttpState;
use crate::readiness;

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `{"status": "ready"|"unavailable", "checks": {"database": "ok", ...}}`,
/// with 503 when any check is down.
pub async fn readyz(State(state): State<Arc<HttpState>>) -> (StatusCode, Json<Value>) {
    let readiness = readiness::check(&state.services).await;
    let (status, word) = if readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(json!({ "status": word, "checks": readiness.checks })),
    )
}
