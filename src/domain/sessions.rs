//! An agent's sessions: its live bearer tokens, when and from which client
//! each was last used, and ending them.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use entity::{access_token, agent};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::domain::auth::TOKEN_PREFIX;
use crate::domain::events::SessionRevoked;
use crate::domain::ids::secret_hash;
use crate::error::{AppError, AppResult};

/// The most sessions `sessions` lists, newest first.
pub const MAX_SESSIONS_LISTED: u64 = 100;

const MAX_USER_AGENT_CHARS: usize = 512;

/// A token's last use is written at most this often, so that a busy client
/// does not turn every request into a write.
const USE_RECORDED_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// The client a request came from, as the server trusts it.
#[derive(Clone, Debug, Default)]
pub struct SessionClient {
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

impl SessionClient {
    /// The user agent as stored: without control characters, bounded.
    pub fn user_agent(&self) -> Option<String> {
        let cleaned: String = self
            .user_agent
            .as_deref()?
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        Some(cleaned).filter(|agent| !agent.trim().is_empty())
    }

    pub fn ip(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}

/// The agent and the session of a live bearer token, in one statement.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    token: &str,
) -> AppResult<Option<(agent::Model, access_token::Model)>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let found = access_token::Entity::find()
        .filter(access_token::Column::TokenHash.eq(secret_hash(token)))
        .filter(live())
        .find_also_related(agent::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(session, agent)| Some((agent?, session))))
}

fn live() -> Condition {
    Condition::all()
        .add(access_token::Column::RevokedAt.is_null())
        .add(access_token::Column::ExpiresAt.gt(Utc::now()))
}

/// Whether a session last used at `last_used` should be written again now.
fn use_is_stale(last_used: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_used.is_none_or(|at| now - at >= USE_RECORDED_EVERY)
}

/// Records that `session` was used now by `client`, unless it was within
/// the last minute. The condition is repeated in the statement, so that
/// concurrent requests of one token write once.
pub async fn record_use(
    db: &impl ConnectionTrait,
    session: &access_token::Model,
    client: &SessionClient,
) -> AppResult<()> {
    let now = Utc::now();
    if !use_is_stale(session.last_used_at, now) {
        return Ok(());
    }
    access_token::Entity::update_many()
        .col_expr(access_token::Column::LastUsedAt, Expr::value(now))
        .col_expr(
            access_token::Column::UserAgent,
            Expr::value(client.user_agent()),
        )
        .col_expr(access_token::Column::Ip, Expr::value(client.ip()))
        .filter(access_token::Column::Id.eq(session.id))
        .filter(
            Condition::any()
                .add(access_token::Column::LastUsedAt.is_null())
                .add(access_token::Column::LastUsedAt.lte(now - USE_RECORDED_EVERY)),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// The live sessions of an agent, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
) -> AppResult<Vec<access_token::Model>> {
    Ok(access_token::Entity::find()
        .filter(access_token::Column::AgentId.eq(agent_id))
        .filter(live())
        .order_by_desc(access_token::Column::CreatedAt)
        .order_by_desc(access_token::Column::Id)
        .limit(MAX_SESSIONS_LISTED)
        .all(db)
        .await?)
}

/// Ends one live session of the agent; another agent's session, or one
/// already ended, is not found. Returns what connections holding it hear.
pub async fn revoke(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    session_id: Uuid,
) -> AppResult<SessionRevoked> {
    let ended = access_token::Entity::update_many()
        .col_expr(access_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(access_token::Column::Id.eq(session_id))
        .filter(access_token::Column::AgentId.eq(agent_id))
        .filter(live())
        .exec(db)
        .await?;
    if ended.rows_affected == 0 {
        return Err(AppError::NotFound("session"));
    }
    Ok(SessionRevoked {
        agent_id,
        token_id: session_id,
    })
}

/// Ends every live session of the agent but the one of `keep` (a token as
/// presented), and returns each one ended, for the connections holding it.
pub async fn revoke_all(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    keep: Option<&str>,
) -> AppResult<Vec<SessionRevoked>> {
    let mut live = access_token::Entity::find()
        .select_only()
        .column(access_token::Column::Id)
        .filter(access_token::Column::AgentId.eq(agent_id))
        .filter(access_token::Column::RevokedAt.is_null());
    if let Some(token) = keep {
        live = live.filter(access_token::Column::TokenHash.ne(secret_hash(token)));
    }
    let ids: Vec<Uuid> = live.into_tuple().all(db).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    access_token::Entity::update_many()
        .col_expr(access_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(access_token::Column::Id.is_in(ids.clone()))
        .filter(access_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(ids
        .into_iter()
        .map(|token_id| SessionRevoked { agent_id, token_id })
        .collect())
}

/// Whether `session` is the one of the token `presented`.
pub fn is_session_of(session: &access_token::Model, presented: Option<&str>) -> bool {
    presented.is_some_and(|token| secret_hash(token) == session.token_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_is_written_at_most_once_a_minute() {
        let now = Utc::now();
        assert!(use_is_stale(None, now));
        assert!(!use_is_stale(
            Some(now - chrono::Duration::seconds(59)),
            now
        ));
        assert!(use_is_stale(Some(now - chrono::Duration::seconds(60)), now));
    }

    #[test]
    fn user_agents_are_bounded_and_cleaned() {
        let client = SessionClient {
            user_agent: Some(format!("Mozilla\u{7}{}", "x".repeat(2_000))),
            ip: Some("203.0.113.9".parse().unwrap()),
        };
        let stored = client.user_agent().unwrap();
        assert_eq!(stored.chars().count(), MAX_USER_AGENT_CHARS);
        assert!(stored.starts_with("Mozillax"));
        assert_eq!(client.ip().as_deref(), Some("203.0.113.9"));
        let blank = SessionClient {
            user_agent: Some("  ".into()),
            ip: None,
        };
        assert_eq!(blank.user_agent(), None);
    }
}
