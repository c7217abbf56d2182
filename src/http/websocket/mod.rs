//! GraphQL over websockets at `GET /graphql`: `graphql-transport-ws` and the legacy `graphql-ws`, over `Schema::execute_stream`.

mod connection;
mod connection_init;
mod operations;
mod protocol;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::request_pipeline::Caller;
use super::{HttpState, cors};
use crate::graphql::context::RequestOrigin;
use connection::Setup;
use protocol::Protocol;

/// Upgrades to a websocket speaking the first protocol the client offers
/// that the server knows; the client's address and origin are taken from
/// the upgrade request, as for a POST.
pub fn upgrade(
    state: Arc<HttpState>,
    peer: SocketAddr,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(Protocol::negotiate)
    else {
        return super::graphql::client_error(
            StatusCode::BAD_REQUEST,
            "ask for the graphql-transport-ws or the graphql-ws websocket protocol",
        );
    };
    let settings = &state.services.settings;
    let caller = Caller {
        viewer: Default::default(),
        origin: RequestOrigin {
            ip: Some(settings.trusted_proxies.client_ip(peer.ip(), headers)),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        },
        browser_origin: cors::browser_origin(headers, settings.public_url.as_deref()),
    };
    let limit = state.max_body_bytes;
    upgrade
        .protocols([protocol.name()])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            let setup = Setup {
                protocol,
                schema: state.schema.clone(),
                db: state.services.db.clone(),
                caller,
                bus: state.services.bus.clone(),
                pipeline: state.pipeline.clone(),
                shutdown: state.shutdown.clone(),
                metrics: state.metrics.clone(),
            };
            connection::serve(socket, setup)
        })
        .into_response()
}
