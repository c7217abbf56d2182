//! What a resolver knows about the caller, and the access checks built on it.

use std::sync::{Arc, Mutex};

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

/// The project accesses a websocket subscription was granted when it
/// started. The connection running it ends it when one of them ends
/// (removal from the project, a role change), which the subscription's own
/// stream would only notice at its next event, if ever.
#[derive(Clone, Default)]
pub struct HeldAccess(Arc<Mutex<Vec<ProjectAccess>>>);

impl HeldAccess {
    fn hold(&self, access: &ProjectAccess) {
        if let Ok(mut held) = self.0.lock() {
            held.push(access.clone());
        }
    }

    pub fn accesses(&self) -> Vec<ProjectAccess> {
        self.0.lock().map(|held| held.clone()).unwrap_or_default()
    }
}

/// `project_access` for a subscription: the access is held for as long
/// as the subscription runs, and its end ends the subscription.
pub async fn subscription_access(
    ctx: &Context<'_>,
    project_id: &str,
    needed: Role,
) -> AppResult<ProjectAccess> {
    let access = project_access(ctx, project_id, needed).await?;
    if let Some(held) = ctx.data_opt::<HeldAccess>() {
        held.hold(&access);
    }
    Ok(access)
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
    let services = services(ctx);
    access::require_role_cached(
        &services.access_cache,
        &services.db,
        agent.id,
        project_id,
        needed,
    )
    .await
}
