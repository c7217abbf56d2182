//! `/graphql`: queries and mutations over POST, GraphiQL and websocket
//! subscriptions over GET.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::request_pipeline::{Caller, RawRequest, prepare_request, refusal_error};
use super::{HttpState, cors, websocket};
use crate::domain::chats;
use crate::domain::sessions;
use crate::error::AppResult;
use crate::graphql::context::{RequestOrigin, Viewer, VisitorSession};
use crate::graphql::errors::tag_request_errors;
use crate::graphql::null_propagation::propagate_nulls;

pub async fn execute(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.max_body_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > limit) {
        return body_too_large(limit);
    }
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return body_too_large(limit);
    };
    // serde_json refuses JSON nested deeper than 128 levels, so a deep
    // body is an error here, not a deep recursion.
    let Ok(raw) = serde_json::from_slice::<RawRequest>(&bytes) else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "the body must be one GraphQL request as JSON: {\"query\": ..., \"variables\": ...}",
        );
    };
    let settings = &state.services.settings;
    let origin = RequestOrigin {
        ip: Some(settings.trusted_proxies.client_ip(peer.ip(), &headers)),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let viewer = match bearer_token(&headers) {
        Some(token) => match viewer_for_token(&state.services.db, token, &origin).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        },
        None => Viewer::default(),
    };
    let caller = Caller {
        viewer,
        origin,
        browser_origin: cors::browser_origin(&headers, settings.public_url.as_deref()),
    };
    // Kept for the rare response with field errors, which is checked
    // against the document's nullability.
    let (query, operation_name) = (raw.query.clone(), raw.operation_name.clone());
    let request = match prepare_request(raw, caller) {
        Ok(request) => request,
        Err(refusal) => {
            let errors = [refusal_error(refusal)];
            return (StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response();
        }
    };
    let mut response = state.schema.execute(request).await;
    propagate_nulls(&mut response, &query, operation_name.as_deref());
    // Headers resolvers set, such as Retry-After.
    let resolver_headers = std::mem::take(&mut response.http_headers);
    let mut answer = Json(tag_request_errors(response)).into_response();
    answer.headers_mut().extend(resolver_headers);
    answer
}

pub async fn graphiql_or_websocket(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let wants_websocket = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    if !wants_websocket {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .finish(),
        )
        .into_response();
    }
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => websocket::upgrade(state, peer, &parts.headers, upgrade),
        Err(rejection) => rejection.into_response(),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Agent tokens and visitor tokens (`vt_`) share the header. An unknown or
/// revoked token makes the caller anonymous: public
/// operations still work, the rest answer UNAUTHENTICATED.
async fn viewer_for_token(
    db: &DatabaseConnection,
    token: &str,
    origin: &RequestOrigin,
) -> Result<Viewer, Response> {
    let looked_up = if token.starts_with("vt_") {
        chats::authenticate_visitor(db, token)
            .await
            .map(|found| Viewer {
                visitor: found.map(|chat| VisitorSession {
                    chat_id: chat.id,
                    project_id: chat.project_id,
                }),
                ..Viewer::default()
            })
    } else {
        agent_for_token(db, token, origin)
            .await
            .map(|agent| Viewer {
                agent,
                token: Some(token.to_owned()),
                visitor: None,
            })
    };
    match looked_up {
        Ok(viewer) => Ok(viewer),
        Err(error) => {
            tracing::error!(?error, "cannot check a bearer token");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"errors": [{"message": "service unavailable", "extensions": {"code": "INTERNAL"}}]})),
            )
                .into_response())
        }
    }
}

/// The agent of a live token, recording the session's use (at most once a
/// minute, so it costs no statement on most requests).
async fn agent_for_token(
    db: &DatabaseConnection,
    token: &str,
    origin: &RequestOrigin,
) -> AppResult<Option<entity::agent::Model>> {
    let Some((agent, session)) = sessions::authenticate(db, token).await? else {
        return Ok(None);
    };
    if let Err(error) = sessions::record_use(db, &session, &origin.session_client()).await {
        // The request goes on: when a session was last used is a hint.
        tracing::warn!(?error, "cannot record a session's use");
    }
    Ok(Some(agent))
}

fn body_too_large(limit: usize) -> Response {
    client_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body exceeds {limit} bytes"),
    )
}

pub(super) fn client_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]})),
    )
        .into_response()
}
