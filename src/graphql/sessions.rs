//! An agent's sessions (its bearer tokens) and ending them.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::ids::parse_id;
use crate::domain::sessions;
use crate::graphql::context::{require_agent, services, viewer};

/// One login of the caller: a bearer token that still works.
#[derive(SimpleObject)]
pub struct Session {
    /// The session's id, for `revokeSession`.
    pub id: ID,
    /// When the agent logged in.
    pub created_at: DateTime<Utc>,
    /// Within a minute: uses are recorded once a minute at most.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// The `User-Agent` of the last use.
    pub user_agent: Option<String>,
    /// The client IP of the last use.
    pub ip: Option<String>,
    /// Whether this request came with this session's token.
    pub current: bool,
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The caller's live sessions, newest first.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let agent = require_agent(ctx)?;
        let presented = viewer(ctx).token.as_deref();
        let live = sessions::list(&services(ctx).db, agent.id).await?;
        Ok(live
            .into_iter()
            .map(|session| Session {
                id: ID(session.id.to_string()),
                current: sessions::is_session_of(&session, presented),
                created_at: session.created_at,
                last_used_at: session.last_used_at,
                expires_at: session.expires_at,
                user_agent: session.user_agent,
                ip: session.ip,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Ends one of the caller's sessions: its token stops working.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session to end.")] id: ID,
    ) -> Result<bool> {
        let agent = require_agent(ctx)?;
        let id = parse_id(&id, "id")?;
        let revoked = sessions::revoke(&services(ctx).db, agent.id, id).await?;
        services(ctx).bus.publish_sessions_revoked(vec![revoked]);
        Ok(true)
    }

    /// Ends every session of the caller, this one included.
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> Result<bool> {
        let agent = require_agent(ctx)?;
        let revoked = sessions::revoke_all(&services(ctx).db, agent.id, None).await?;
        services(ctx).bus.publish_sessions_revoked(revoked);
        Ok(true)
    }
}
