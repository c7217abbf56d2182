//! Logging in and out, and who the caller is.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::agent;

use crate::domain::auth;
use crate::domain::events::Event;
use crate::graphql::context::{request_origin, require_agent, services, viewer};
use crate::graphql::guards;
use crate::graphql::invitations::{Invitation, invitations_of_viewer};
use crate::graphql::loaders::Loaders;
use crate::graphql::projects::Project;

/// An agent as other members of its projects see it.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Agent {
    /// The agent's id.
    pub id: ID,
    /// The email the agent signs in with.
    pub email: String,
    /// The agent's name, as shown to the other members.
    pub name: String,
}

impl From<&agent::Model> for Agent {
    fn from(agent: &agent::Model) -> Self {
        Agent {
            id: ID(agent.id.to_string()),
            email: agent.email.clone(),
            name: agent.name.clone(),
        }
    }
}

#[async_graphql::ComplexObject]
impl Agent {
    /// The projects of this agent; only an agent's own list can be read.
    async fn projects(&self, ctx: &Context<'_>) -> Result<Vec<Project>> {
        let me = require_agent(ctx)?;
        if me.id.to_string() != self.id.as_str() {
            return Ok(Vec::new());
        }
        let projects = ctx
            .data::<Loaders>()?
            .projects_of_agent
            .load_one(me.id)
            .await?
            .unwrap_or_default();
        Ok(projects
            .into_iter()
            .map(|(project, access)| Project::new(project, access))
            .collect())
    }

    /// Pending invitations to projects; only an agent's own can be read.
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<Invitation>> {
        let me = require_agent(ctx)?;
        if me.id.to_string() != self.id.as_str() {
            return Ok(Vec::new());
        }
        invitations_of_viewer(ctx).await
    }
}

/// A new session: the token to send, until when it works, and whose it is.
#[derive(SimpleObject)]
pub struct LoginPayload {
    /// Send as `Authorization: Bearer <token>`, or as `authorization` in the
    /// websocket `connection_init` payload.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// The agent signed in.
    pub agent: Agent,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The agent the bearer token belongs to.
    async fn me(&self, ctx: &Context<'_>) -> Result<Agent> {
        Ok(Agent::from(require_agent(ctx)?))
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs an agent in with email and password and issues a bearer token.
    /// Repeated failures lock the email out for a while (RATE_LIMITED).
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The agent's email.")] email: String,
        #[graphql(desc = "The agent's password.")] password: String,
    ) -> Result<LoginPayload> {
        let services = services(ctx);
        let client = request_origin(ctx).session_client();
        let issued = guards::guarded_login(
            ctx,
            &email,
            auth::login(
                &services.db,
                &email,
                &password,
                services.settings.token_ttl,
                &client,
            ),
        )
        .await?;
        Ok(LoginPayload {
            token: issued.token,
            expires_at: issued.expires_at,
            agent: Agent::from(&issued.agent),
        })
    }

    /// Revokes the token this request was made with.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        require_agent(ctx)?;
        if let Some(token) = &viewer(ctx).token {
            let services = services(ctx);
            if let Some(revoked) = auth::logout(&services.db, token).await? {
                services.bus.publish(Event::SessionRevoked(revoked));
            }
        }
        Ok(true)
    }
}
