//! `/graphql`: queries and mutations over POST, GraphiQL and websocket
//! subscriptions over GET.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::HttpState;
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
    let Some(request) = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|value| value.get("query").is_some_and(|query| query.is_string()))
        .and_then(|value| serde_json::from_value::<async_graphql::Request>(value).ok())
    else {
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
    let response = state
        .schema
        .execute(request.data(viewer).data(origin))
        .await;
    Json(tag_request_errors(response)).into_response()
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
        .on_upgrade(move |socket| {
            let db = state.services.db.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| authenticate_connection(db, payload))
                .serve()
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
                visitor: found.map(|(chat, _)| VisitorSession {
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
