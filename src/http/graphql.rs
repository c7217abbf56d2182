//! `/graphql`: queries and mutations over POST, GraphiQL and websocket
//! subscriptions over GET.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Json;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::{HttpState, cors};
use crate::domain::{auth, chats};
use crate::graphql::context::{RequestOrigin, Viewer, VisitorSession};
use crate::graphql::errors::tag_request_errors;

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
    let Some(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|value| value.get("query").is_some_and(|query| query.is_string()))
    else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "the body must be one GraphQL request as JSON: {\"query\": ..., \"variables\": ...}",
        );
    };
    if carries_nul(&value) {
        return client_error(
            StatusCode::BAD_REQUEST,
            "text must not contain the NUL character (U+0000)",
        );
    }
    let Ok(request) = serde_json::from_value::<async_graphql::Request>(value) else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "the body must be one GraphQL request as JSON: {\"query\": ..., \"variables\": ...}",
        );
    };
    let viewer = match bearer_token(&headers) {
        Some(token) => match viewer_for_token(&state.services.db, token).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        },
        None => Viewer::default(),
    };
    let origin = RequestOrigin {
        ip: Some(
            state
                .services
                .settings
                .trusted_proxies
                .client_ip(peer.ip(), &headers),
        ),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let browser_origin =
        cors::browser_origin(&headers, state.services.settings.public_url.as_deref());
    let mut response = state
        .schema
        .execute(request.data(viewer).data(origin).data(browser_origin))
        .await;
    // Headers resolvers set, such as Retry-After.
    let resolver_headers = std::mem::take(&mut response.http_headers);
    let mut answer = Json(tag_request_errors(response)).into_response();
    answer.headers_mut().extend(resolver_headers);
    answer
}

pub async fn graphiql_or_websocket(
    State(state): State<Arc<HttpState>>,
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
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &state).await {
        Ok(protocol) => protocol,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let db = state.services.db.clone();
            // Upgraded connections outlive the HTTP server's graceful
            // shutdown: the socket's input ends when shutdown begins, and
            // the client is told the server is going away.
            let (mut sink, stream) = socket.split();
            let stream = stream.take_until(state.shutdown.clone().cancelled_owned());
            GraphQLWebSocket::new_with_pair(&mut sink, stream, state.schema.clone(), protocol)
                .on_connection_init(move |payload| authenticate_connection(db, payload))
                .serve()
                .await;
            if state.shutdown.is_cancelled() {
                let going_away = CloseFrame {
                    code: close_code::AWAY,
                    reason: "the server is shutting down".into(),
                };
                let _ = sink.send(Message::Close(Some(going_away))).await;
            }
            let _ = sink.close().await;
        })
}

/// A subscription connection must bring a live agent token in its
/// `connection_init` payload; without one the connection is refused.
async fn authenticate_connection(
    db: DatabaseConnection,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let refused = || async_graphql::Error::new("UNAUTHENTICATED: a valid agent token is required");
    let token = ["authorization", "Authorization", "token"]
        .iter()
        .find_map(|key| payload.get(key).and_then(|value| value.as_str()))
        .map(|value| {
            value
                .strip_prefix("Bearer ")
                .unwrap_or(value)
                .trim()
                .to_owned()
        })
        .ok_or_else(refused)?;
    let agent = auth::authenticate(&db, &token)
        .await
        .map_err(|_| async_graphql::Error::new("INTERNAL: try again later"))?
        .ok_or_else(refused)?;
    let mut data = Data::default();
    data.insert(Viewer {
        agent: Some(agent),
        token: Some(token),
        visitor: None,
    });
    Ok(data)
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
async fn viewer_for_token(db: &DatabaseConnection, token: &str) -> Result<Viewer, Response> {
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
        auth::authenticate(db, token).await.map(|agent| Viewer {
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

/// Whether a request carries U+0000 anywhere: in its variables, or written
/// as an escape in a string of the query. PostgreSQL text cannot hold it
/// and no field needs it, so such requests are refused whole, on SQLite too.
fn carries_nul(value: &serde_json::Value) -> bool {
    fn any_nul(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(any_nul),
            serde_json::Value::Object(map) => map
                .iter()
                .any(|(key, value)| key.contains('\0') || any_nul(value)),
            _ => false,
        }
    }
    let query = value.get("query").and_then(|query| query.as_str());
    any_nul(value) || query.is_some_and(escapes_nul)
}

/// `\u0000` or `\u{0}` (any number of zeros) in GraphQL source text.
/// An escaped backslash followed by `u0000` is text, not an escape.
fn escapes_nul(query: &str) -> bool {
    query.match_indices("\\u").any(|(at, _)| {
        let backslashes = query[..=at]
            .bytes()
            .rev()
            .take_while(|byte| *byte == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return false;
        }
        let rest = &query[at + 2..];
        let braced = rest
            .strip_prefix('{')
            .and_then(|rest| rest.split_once('}'))
            .is_some_and(|(digits, _)| !digits.is_empty() && digits.bytes().all(|b| b == b'0'));
        braced || rest.starts_with("0000")
    })
}

fn body_too_large(limit: usize) -> Response {
    client_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body exceeds {limit} bytes"),
    )
}

fn client_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]})),
    )
        .into_response()
}
