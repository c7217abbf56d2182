//! Invitations to projects: as the invitee sees and accepts them, and as
//! admins list and revoke them (`addMember` creates them).

use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};

use crate::domain::ids::parse_id;
use crate::domain::invitations::{self, InvitationStatus, TokenAcceptance};
use crate::error::AppError;
use crate::graphql::context::{require_agent, services, viewer};
use crate::graphql::guards;
use crate::graphql::projects::{MembershipChange, RoleKind, announce};

/// Where an invitation is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "InvitationStatus")]
pub enum InvitationStatusKind {
    /// Waiting for the invitee.
    Pending,
    /// The invitee joined the project.
    Accepted,
    /// Withdrawn by an admin, or replaced by a newer invitation.
    Revoked,
    /// Not accepted in time.
    Expired,
}

impl From<InvitationStatus> for InvitationStatusKind {
    fn from(status: InvitationStatus) -> Self {
        match status {
            InvitationStatus::Pending => InvitationStatusKind::Pending,
            InvitationStatus::Accepted => InvitationStatusKind::Accepted,
            InvitationStatus::Revoked => InvitationStatusKind::Revoked,
            InvitationStatus::Expired => InvitationStatusKind::Expired,
        }
    }
}

pub struct Invitation(pub invitations::Invitation);

/// An invitation of an email address to a project.
#[Object]
impl Invitation {
    /// The invitation's id.
    async fn id(&self) -> ID {
        ID(self.0.model.id.to_string())
    }

    /// The project it invites to.
    async fn project_id(&self) -> ID {
        ID(self.0.model.project_id.to_string())
    }

    /// The project's name, for the invitee to recognise.
    async fn project_name(&self) -> &str {
        &self.0.project_name
    }

    /// The invited email address.
    async fn email(&self) -> &str {
        &self.0.model.email
    }

    /// The role the invitee gets on joining.
    async fn role(&self) -> RoleKind {
        self.0.model.role.into()
    }

    /// Whether it is pending, accepted, revoked or expired.
    async fn status(&self) -> InvitationStatusKind {
        self.0.status().into()
    }

    /// When it was sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.model.created_at
    }

    /// When its link stops working.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.model.expires_at
    }
}

#[derive(Default)]
pub struct InvitationMutation;

#[Object]
impl InvitationMutation {
    /// Joins the project of an invitation: logged in as the invited agent,
    /// with its `id` (see `me { invitations }`); or with the `token` of the
    /// mailed link, which also creates the account (`name`, `password`)
    /// when the address has none.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's id, for an invited agent who is logged in.")] id: Option<
            ID,
        >,
        #[graphql(desc = "The token of the mailed link (`inv_…`).")] token: Option<String>,
        #[graphql(desc = "With `token`, for a new account: the agent's name.")] name: Option<
            String,
        >,
        #[graphql(desc = "With `token`, for a new account: its password, at least 8 characters.")]
        password: Option<String>,
    ) -> Result<MembershipChange> {
        let db = &services(ctx).db;
        let change = match (id, token) {
            (Some(id), None) => {
                let agent = require_agent(ctx)?;
                let id = parse_id(&id, "id")?;
                invitations::accept_as_agent(db, agent, id).await?
            }
            (None, Some(token)) => {
                guards::admit_account_request(ctx, "acceptInvitation").await?;
                let acceptance = TokenAcceptance {
                    token: &token,
                    name: name.as_deref(),
                    password: password.as_deref(),
                };
                invitations::accept_with_token(db, acceptance).await?
            }
            _ => return Err(AppError::bad_input("id", "give either id or token").into()),
        };
        Ok(announce(ctx, change))
    }

    /// Withdraws a pending invitation; its link works no more. Admins of
    /// its project only.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation to withdraw.")] id: ID,
    ) -> Result<Invitation> {
        let agent = require_agent(ctx)?;
        let id = parse_id(&id, "id")?;
        let revoked = invitations::revoke(&services(ctx).db, agent.id, id).await?;
        Ok(Invitation(revoked))
    }
}

/// The pending invitations of the caller's own email.
pub async fn invitations_of_viewer(ctx: &Context<'_>) -> Result<Vec<Invitation>> {
    let Some(agent) = viewer(ctx).agent.as_ref() else {
        return Err(AppError::Unauthenticated("log in as an agent first").into());
    };
    let found = invitations::of_agent(&services(ctx).db, agent).await?;
    Ok(found.into_iter().map(Invitation).collect())
}
