//! Projects, their members and membership events.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::project;
use futures_util::{Stream, StreamExt};

use crate::domain::access::{ProjectAccess, Role};
use crate::domain::events::{Event, MembershipChangeKind, MembershipChanged};
use crate::domain::ids::parse_id;
use crate::domain::invitations::{self, InvitationMail};
use crate::domain::{project_keys, projects};
use crate::error::AppError;
use crate::graphql::auth::Agent;
use crate::graphql::context::{project_access, require_agent, services, subscription_access};
use crate::graphql::invitations::Invitation;
use crate::graphql::loaders::Loaders;

/// What a member may do in a project.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Role")]
pub enum RoleKind {
    /// Manages the project: members, contact form, keys.
    Admin,
    /// Works with the project's contacts and exports.
    Agent,
}

impl From<Role> for RoleKind {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleKind::Admin,
            Role::Agent => RoleKind::Agent,
        }
    }
}

impl From<RoleKind> for Role {
    fn from(role: RoleKind) -> Self {
        match role {
            RoleKind::Admin => Role::Admin,
            RoleKind::Agent => Role::Agent,
        }
    }
}

pub struct Project {
    model: project::Model,
    access: ProjectAccess,
}

impl Project {
    pub fn new(model: project::Model, access: ProjectAccess) -> Self {
        Project { model, access }
    }
}

/// A project (a website or app with its chat widget) as one of its members sees
/// it.
#[Object]
impl Project {
    /// The project's id.
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// The project's name.
    async fn name(&self) -> &str {
        &self.model.name
    }

    /// The key the chat widget embeds; it identifies the project publicly.
    async fn public_key(&self) -> &str {
        &self.model.public_key
    }

    /// The key the site's server signs identified visitors and
    /// server-to-server `startChat` calls with. Admins only: null for
    /// agents, so that a shared selection of fields works for both roles.
    async fn secret_key(&self) -> Option<&str> {
        self.access
            .may_read_secret_key()
            .then_some(self.model.secret_key.as_str())
    }

    /// When the project was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    /// The caller's role in this project.
    async fn viewer_role(&self) -> RoleKind {
        self.access.role().into()
    }

    /// Origins (`https://shop.example`) from which the chat widget may call
    /// `startChat` and `submitContactForm` in a browser.
    async fn allowed_origins(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let loaders = ctx.data::<Loaders>()?;
        Ok(loaders
            .allowed_origins
            .load_one(self.access.clone())
            .await?
            .unwrap_or_default())
    }

    /// Invitations to this project, newest first. Admins only.
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<Invitation>> {
        if self.access.role() != Role::Admin {
            return Err(AppError::Forbidden("only project admins may see invitations").into());
        }
        let found = ctx
            .data::<Loaders>()?
            .invitations
            .load_one(self.access.clone())
            .await?
            .unwrap_or_default();
        Ok(found.into_iter().map(Invitation).collect())
    }

    /// The project's members with their roles.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Member>> {
        let loaders = ctx.data::<Loaders>()?;
        let members = loaders
            .members
            .load_one(self.access.clone())
            .await?
            .unwrap_or_default();
        Ok(members
            .iter()
            .map(|(agent, membership)| Member {
                agent: Agent::from(agent),
                role: membership.role.into(),
                joined_at: membership.created_at,
            })
            .collect())
    }
}

/// An agent's membership of a project.
#[derive(SimpleObject)]
pub struct Member {
    /// The member.
    pub agent: Agent,
    /// What the member may do.
    pub role: RoleKind,
    /// When the agent joined the project.
    pub joined_at: DateTime<Utc>,
}

/// How a membership changed.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChangeType {
    /// An agent joined the project.
    Added,
    /// A member's role changed.
    RoleChanged,
    /// A member left or was removed.
    Removed,
}

/// A change to one agent's membership of a project.
#[derive(SimpleObject)]
pub struct MembershipChange {
    /// The project.
    pub project_id: ID,
    /// The agent whose membership changed.
    pub agent_id: ID,
    /// The role after the change; null once the agent was removed.
    pub role: Option<RoleKind>,
    /// What changed.
    pub kind: MembershipChangeType,
}

impl From<&MembershipChanged> for MembershipChange {
    fn from(change: &MembershipChanged) -> Self {
        MembershipChange {
            project_id: ID(change.project_id.to_string()),
            agent_id: ID(change.agent_id.to_string()),
            role: change.role.map(|role| Role::from(role).into()),
            kind: match change.kind {
                MembershipChangeKind::Added => MembershipChangeType::Added,
                MembershipChangeKind::RoleChanged => MembershipChangeType::RoleChanged,
                MembershipChangeKind::Removed => MembershipChangeType::Removed,
            },
        }
    }
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// The projects the caller is a member of.
    async fn projects(&self, ctx: &Context<'_>) -> Result<Vec<Project>> {
        let agent = require_agent(ctx)?;
        let projects = projects::projects_of(&services(ctx).db, agent.id).await?;
        Ok(projects
            .into_iter()
            .map(|(model, access)| Project::new(model, access))
            .collect())
    }

    /// One project; NOT_FOUND unless the caller is a member.
    async fn project(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's id.")] id: ID,
    ) -> Result<Project> {
        let access = project_access(ctx, &id, Role::Agent).await?;
        let model = projects::get(&services(ctx).db, &access).await?;
        Ok(Project::new(model, access))
    }
}

#[derive(Default)]
pub struct ProjectMutation;

/// Publishes the change to subscribers and shapes the answer.
pub(crate) fn announce(ctx: &Context<'_>, change: MembershipChanged) -> MembershipChange {
    let answer = MembershipChange::from(&change);
    services(ctx).bus.publish(Event::MembershipChanged(change));
    answer
}

#[Object]
impl ProjectMutation {
    /// Creates a project; the caller becomes its ADMIN.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's name, at most 200 characters.")] name: String,
    ) -> Result<Project> {
        let agent = require_agent(ctx)?;
        let db = &services(ctx).db;
        let model = projects::create_project(db, agent.id, &name).await?;
        let access =
            crate::domain::access::require_role(db, agent.id, model.id, Role::Admin).await?;
        Ok(Project::new(model, access))
    }

    /// Invites an email address to the project and mails it a link; the
    /// invitee joins on accepting (`acceptInvitation`). The answer is the
    /// same whether the address has an account or not. Admins only.
    async fn add_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project to invite to; the caller must be its admin.")] project_id: ID,
        #[graphql(desc = "The email to send the invitation to.")] email: String,
        #[graphql(desc = "The role the agent will have.")] role: RoleKind,
    ) -> Result<Invitation> {
        let access = project_access(ctx, &project_id, Role::Admin).await?;
        let services = services(ctx);
        let app_url = services.settings.agent_app_url();
        let mail = InvitationMail {
            mailer: services.mailer.as_ref(),
            app_url: &app_url,
            ttl: services.settings.accounts.invitation_ttl,
        };
        let invitation =
            invitations::invite(&services.db, &mail, &access, &email, role.into()).await?;
        Ok(Invitation(invitation))
    }

    /// New keys for the project: the secret key changes at once, the old
    /// public key keeps working for `PUBLIC_KEY_GRACE_HOURS` so that
    /// deployed widgets can be updated meanwhile. Admins only.
    async fn rotate_project_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be its admin.")] project_id: ID,
    ) -> Result<Project> {
        let access = project_access(ctx, &project_id, Role::Admin).await?;
        let services = services(ctx);
        let grace = services.settings.accounts.public_key_grace;
        let model = project_keys::rotate(&services.db, &access, grace).await?;
        services
            .origins
            .keys_changed(&services.db, services.bus.as_ref(), model.id)
            .await?;
        Ok(Project::new(model, access))
    }

    /// The caller leaves the project; its last admin cannot.
    async fn leave_project(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project to leave.")] project_id: ID,
    ) -> Result<MembershipChange> {
        let access = project_access(ctx, &project_id, Role::Agent).await?;
        let change = projects::leave_project(&services(ctx).db, &access).await?;
        Ok(announce(ctx, change))
    }

    /// Replaces the origins from which the project's chat widget may call
    /// the API in a browser: `scheme://host[:port]` each, at most 50; an
    /// empty list allows no browser origin. Admins only.
    async fn set_allowed_origins(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be its admin.")] project_id: ID,
        #[graphql(desc = "Every allowed origin (`https://shop.example`), replacing the list.")]
        origins: Vec<String>,
    ) -> Result<Project> {
        let access = project_access(ctx, &project_id, Role::Admin).await?;
        let services = services(ctx);
        services
            .origins
            .set_for_project(&services.db, services.bus.as_ref(), &access, &origins)
            .await?;
        let model = projects::get(&services.db, &access).await?;
        Ok(Project::new(model, access))
    }

    /// Removes a member. Admins only; the last admin cannot be removed.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be its admin.")] project_id: ID,
        #[graphql(desc = "The member to remove.")] agent_id: ID,
    ) -> Result<MembershipChange> {
        let access = project_access(ctx, &project_id, Role::Admin).await?;
        let agent_id = parse_id(&agent_id, "agentId")?;
        let change = projects::remove_member(&services(ctx).db, &access, agent_id).await?;
        Ok(announce(ctx, change))
    }

    /// Changes a member's role. Admins only; the last admin keeps its role.
    async fn change_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be its admin.")] project_id: ID,
        #[graphql(desc = "The member whose role changes.")] agent_id: ID,
        #[graphql(desc = "The new role.")] role: RoleKind,
    ) -> Result<MembershipChange> {
        let access = project_access(ctx, &project_id, Role::Admin).await?;
        let agent_id = parse_id(&agent_id, "agentId")?;
        let change =
            projects::change_role(&services(ctx).db, &access, agent_id, role.into()).await?;
        Ok(announce(ctx, change))
    }
}

#[derive(Default)]
pub struct ProjectSubscription;

#[Subscription]
impl ProjectSubscription {
    /// Members joining, leaving or changing role in a project.
    async fn membership_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project to follow; the caller must be a member.")] project_id: ID,
    ) -> Result<impl Stream<Item = MembershipChange> + use<>> {
        let access = subscription_access(ctx, &project_id, Role::Agent).await?;
        let project_id = access.project_id();
        Ok(services(ctx)
            .bus
            .subscribe()
            .filter_map(move |event| async move {
                match event {
                    Event::MembershipChanged(change) if change.project_id == project_id => {
                        Some(MembershipChange::from(&change))
                    }
                    _ => None,
                }
            }))
    }
}
