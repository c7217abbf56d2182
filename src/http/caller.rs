//! Who sends an HTTP request: the bearer token of `Authorization` (an
//! agent's or a visitor's), the client address and the browser origin.

use std::net::SocketAddr;

use super::cors;
use super::request_pipeline::Caller;
use crate::domain::chats;
use crate::domain::ids::secret_hash;
use crate::domain::sessions;
use crate::error::AppResult;
use crate::graphql::context::{RequestOrigin, Viewer, VisitorSession};
use crate::services::Services;
use axum::http::{HeaderMap, header};

/// The token could not be checked: the database is down.
#[derive(Debug)]
pub struct Unavailable;

pub async fn identify(
    services: &Services,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Caller, Unavailable> {
    let settings = &services.settings;
    let origin = RequestOrigin {
        ip: Some(settings.trusted_proxies.client_ip(peer.ip(), headers)),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let viewer = match bearer_token(headers) {
        Some(token) => viewer_for_token(services, token, &origin).await?,
        None => Viewer::default(),
    };
    Ok(Caller {
        viewer,
        origin,
        browser_origin: cors::browser_origin(headers, settings.public_url.as_deref()),
    })
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
    services: &Services,
    token: &str,
    origin: &RequestOrigin,
) -> Result<Viewer, Unavailable> {
    let looked_up = if token.starts_with("vt_") {
        chats::authenticate_visitor(&services.db, token)
            .await
            .map(|found| Viewer {
                visitor: found.map(|chat| VisitorSession {
                    chat_id: chat.id,
                    project_id: chat.project_id,
                }),
                ..Viewer::default()
            })
    } else {
        agent_for_token(services, token, origin)
            .await
            .map(|agent| Viewer {
                agent,
                token: Some(token.to_owned()),
                visitor: None,
            })
    };
    looked_up.map_err(|error| {
        tracing::error!(?error, "cannot check a bearer token");
        Unavailable
    })
}

/// The agent of a live token. Its session's use is recorded when the
/// token is read from the database (at most once a minute, so it costs no
/// statement on most requests); a token seen a moment ago is taken from
/// the cache, which every revocation clears.
async fn agent_for_token(
    services: &Services,
    token: &str,
    origin: &RequestOrigin,
) -> AppResult<Option<entity::agent::Model>> {
    let token_hash = secret_hash(token);
    if let Some((agent, _)) = services.access_cache.session(&token_hash) {
        return Ok(Some(agent));
    }
    let ticket = services.access_cache.ticket();
    let db = &services.db;
    let Some((agent, session)) = sessions::authenticate(db, token).await? else {
        return Ok(None);
    };
    if let Err(error) = sessions::record_use(db, &session, &origin.session_client()).await {
        // The request goes on: when a session was last used is a hint.
        tracing::warn!(?error, "cannot record a session's use");
    }
    services
        .access_cache
        .keep_session(ticket, token_hash, agent.clone(), session);
    Ok(Some(agent))
}
