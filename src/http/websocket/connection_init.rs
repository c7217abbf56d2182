//! `connection_init`: the agent token a websocket connection must bring.

use sea_orm::DatabaseConnection;
use serde_json::Value;

use crate::domain::auth::{self, LiveSession};
use crate::graphql::context::Viewer;

/// Why `connection_init` is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InitRefusal {
    /// No token, or one that is unknown, revoked or expired.
    NoLiveToken,
    /// The token could not be checked.
    Unavailable,
}

/// The agent whose live token the payload carries, under `authorization`
/// (`Bearer <token>` or the bare token), `Authorization` or `token`, with
/// the session that token opens.
pub async fn authenticate_connection(
    db: &DatabaseConnection,
    payload: Option<&Value>,
) -> Result<(Viewer, LiveSession), InitRefusal> {
    let token = payload
        .and_then(|payload| {
            ["authorization", "Authorization", "token"]
                .iter()
                .find_map(|key| payload.get(key).and_then(Value::as_str))
        })
        .map(|value| {
            value
                .strip_prefix("Bearer ")
                .unwrap_or(value)
                .trim()
                .to_owned()
        })
        .ok_or(InitRefusal::NoLiveToken)?;
    let session = still_live(db, &token)
        .await?
        .ok_or(InitRefusal::NoLiveToken)?;
    let viewer = Viewer {
        agent: Some(session.agent.clone()),
        token: Some(token),
        visitor: None,
    };
    Ok((viewer, session))
}

/// The token's session, if the token is still live: checked at
/// `connection_init`, again at every operation, and whenever events may
/// have been missed.
pub async fn still_live(
    db: &DatabaseConnection,
    token: &str,
) -> Result<Option<LiveSession>, InitRefusal> {
    auth::live_session(db, token).await.map_err(|error| {
        tracing::warn!(?error, "cannot check a websocket connection's token");
        InitRefusal::Unavailable
    })
}
