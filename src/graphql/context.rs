//! What a resolver knows about the caller, and the access checks built on it.

use async_graphql::Context;
use entity::agent;

use crate::domain::access::{self, ProjectAccess, Role};
use crate::domain::ids::parse_id;
use crate::domain::sessions::SessionClient;
use crate::error::{AppError, AppResult};
use crate::services::Services;

/// The caller of one request or websocket connection.
#[derive(Clone, Default)]
pub struct Viewer {
    pub agent: Option<agent::Model>,
    /// The bearer token as presented, so that `logout` can revoke it.
    pub token: Option<String>,
    /// A visitor, identified by the token `startChat` handed out.
    pub visitor: Option<VisitorSession>,
}

/// What a visitor token grants: this chat's contact form, nothing else.
#[derive(Clone, Copy, Debug)]
pub struct VisitorSession {
    pub chat_id: uuid::Uuid,
    pub project_id: uuid::Uuid,
}

/// Where an HTTP request came from, as far as the server can trust it.
#[derive(Clone, Default)]
pub struct RequestOrigin {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestOrigin {
    /// The client a session records.
    pub fn session_client(&self) -> SessionClient {
        SessionClient {
            user_agent: self.user_agent.clone(),
            ip: self.ip,
        }
    }
}

pub fn request_origin<'a>(ctx: &Context<'a>) -> &'a RequestOrigin {
    static UNKNOWN: RequestOrigin = RequestOrigin {
        ip: None,
        user_agent: None,
    };
    ctx.data_opt::<RequestOrigin>().unwrap_or(&UNKNOWN)
}

pub fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

pub fn viewer<'a>(ctx: &Context<'a>) -> &'a Viewer {
    static ANONYMOUS: Viewer = Viewer {
        agent: None,
        token: None,
        visitor: None,
    };
    ctx.data_opt::<Viewer>().unwrap_or(&ANONYMOUS)
}

pub fn require_agent<'a>(ctx: &Context<'a>) -> AppResult<&'a agent::Model> {
    viewer(ctx)
        .agent
        .as_ref()
        .ok_or(AppError::Unauthenticated("log in as an agent first"))
}

pub fn require_visitor(ctx: &Context<'_>) -> AppResult<VisitorSession> {
    viewer(ctx).visitor.ok_or(AppError::Unauthenticated(
        "send the visitor token from startChat",
    ))
}

/// The gate of every project-scoped resolver: the caller must be an agent
/// holding `needed` in the project named by `project_id`.
pub async fn project_access(
    ctx: &Context<'_>,
    project_id: &str,
    needed: Role,
) -> AppResult<ProjectAccess> {
    let agent = require_agent(ctx)?;
    let project_id = parse_id(project_id, "projectId")?;
    access::require_role(&services(ctx).db, agent.id, project_id, needed).await
}
