//! `GET /metrics`: the Prometheus scrape.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;

pub async fn scrape(State(state): State<Arc<HttpState>>) -> Response {
    let services = &state.services;
    let text = state
        .metrics
        .render(&services.db, services.geo.as_ref())
        .await;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
