//! Invitations to a project: an admin invites an email address; whoever
//! owns it joins by accepting, as the agent of that email or, without an
//! account yet, by creating one with the mailed token. Inviting answers
//! the same whether the address has an account or not.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::invitation::{self, InvitationState};
use entity::{agent, membership, project};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::access::{self, ProjectAccess, Role};
use crate::domain::account_mail;
use crate::domain::agents::{self, parse_name};
use crate::domain::auth::Password;
use crate::domain::contacts::first_rows_per_contact;
use crate::domain::email::EmailAddress;
use crate::domain::events::{MembershipChangeKind, MembershipChanged};
use crate::domain::ids::{new_id, random_secret, secret_hash};
use crate::error::{AppError, AppResult};
use crate::mail::Mailer;

/// The most invitations listed at once, newest first.
pub const MAX_INVITATIONS_LISTED: u64 = 100;

const TOKEN_PREFIX: &str = "inv";

/// Where invitation mails go out from and what their links point at.
pub struct InvitationMail<'a> {
    pub mailer: &'a dyn Mailer,
    pub app_url: &'a str,
    pub ttl: Duration,
}

/// Where an invitation stands now: its stored state, or expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation with the name of its project, which the invitee cannot
/// read otherwise before joining.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub model: invitation::Model,
    pub project_name: String,
}

impl Invitation {
    pub fn status(&self) -> InvitationStatus {
        status_at(&self.model, Utc::now())
    }
}

fn status_at(model: &invitation::Model, now: DateTime<Utc>) -> InvitationStatus {
    match model.state {
        InvitationState::Accepted => InvitationStatus::Accepted,
        InvitationState::Revoked => InvitationStatus::Revoked,
        InvitationState::Pending if model.expires_at <= now => InvitationStatus::Expired,
        InvitationState::Pending => InvitationStatus::Pending,
    }
}

fn require_admin(access: &ProjectAccess) -> AppResult<()> {
    if access.role() == Role::Admin {
        Ok(())
    } else {
        Err(AppError::Forbidden("only project admins may do this"))
    }
}

/// Invites `email` to the project and mails the invitation. The work is
/// the same for an address with an account and one without (one lookup,
/// one insert, one mail), and so is the answer. A pending invitation of the
/// same address is replaced.
pub async fn invite(
    db: &DatabaseConnection,
    mail: &InvitationMail<'_>,
    access: &ProjectAccess,
    email: &str,
    role: Role,
) -> AppResult<Invitation> {
    require_admin(access)?;
    let email = EmailAddress::parse(email, "email")?;
    let project = project::Entity::find_by_id(access.project_id())
        .one(db)
        .await?
        .ok_or(AppError::NotFound("project"))?;
    let existing = agents::find_by_email(db, &email).await?;
    if let Some(agent) = &existing {
        // Admins see their members' emails anyway: this says nothing new.
        let member = membership::Entity::find_by_id((project.id, agent.id))
            .one(db)
            .await?;
        if member.is_some() {
            return Err(AppError::bad_input(
                "email",
                "this agent is already a member",
            ));
        }
    }
    let now = Utc::now();
    let token = random_secret(TOKEN_PREFIX);
    let txn = db.begin().await?;
    invitation::Entity::update_many()
        .col_expr(
            invitation::Column::State,
            Expr::value(InvitationState::Revoked),
        )
        .col_expr(invitation::Column::ClosedAt, Expr::value(now))
        .filter(invitation::Column::ProjectId.eq(project.id))
        .filter(invitation::Column::Email.eq(email.as_str()))
        .filter(invitation::Column::State.eq(InvitationState::Pending))
        // An expired one stays as it ended.
        .filter(invitation::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    let model = invitation::ActiveModel {
        id: Set(new_id()),
        project_id: Set(project.id),
        email: Set(email.as_str().to_owned()),
        role: Set(role),
        state: Set(InvitationState::Pending),
        token_hash: Set(secret_hash(&token)),
        invited_by: Set(Some(access.agent_id())),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::from_std(mail.ttl).map_err(AppError::internal)?),
        closed_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;

    let link = account_mail::link(mail.app_url, "invitations", &token);
    let hours = mail.ttl.as_secs() / 3600;
    let message = match existing {
        Some(_) => account_mail::invitation_for_agent(email.as_str(), &project.name, &link, hours),
        None => account_mail::invitation_for_newcomer(email.as_str(), &project.name, &link, hours),
    };
    if let Err(error) = mail.mailer.send(message).await {
        // An invitation nobody was told of is no invitation.
        invitation::Entity::delete_by_id(model.id).exec(db).await?;
        return Err(AppError::internal(
            anyhow::Error::new(error).context("mailing an invitation"),
        ));
    }
    Ok(Invitation {
        model,
        project_name: project.name,
    })
}

/// The invitations of each project whose admin the accesses are, newest
/// first, by project, in two statements. Accesses of other roles get none.
pub async fn of_projects(
    db: &impl ConnectionTrait,
    accesses: &[ProjectAccess],
) -> AppResult<HashMap<Uuid, Vec<Invitation>>> {
    let project_ids: Vec<Uuid> = accesses
        .iter()
        .filter(|access| require_admin(access).is_ok())
        .map(ProjectAccess::project_id)
        .collect();
    let models = first_rows_per_contact::<invitation::Entity>(
        db,
        invitation::Column::ProjectId,
        &[
            (invitation::Column::CreatedAt, Order::Desc),
            (invitation::Column::Id, Order::Desc),
        ],
        &project_ids,
        MAX_INVITATIONS_LISTED,
    )
    .await?;
    let mut by_project: HashMap<Uuid, Vec<Invitation>> = project_ids
        .iter()
        .map(|project_id| (*project_id, Vec::new()))
        .collect();
    for invitation in with_project_names(db, models).await? {
        by_project
            .entry(invitation.model.project_id)
            .or_default()
            .push(invitation);
    }
    Ok(by_project)
}

/// The pending invitations of the agent's email, newest first.
pub async fn of_agent(
    db: &impl ConnectionTrait,
    agent: &agent::Model,
) -> AppResult<Vec<Invitation>> {
    let models = invitation::Entity::find()
        .filter(invitation::Column::Email.eq(agent.email.as_str()))
        .filter(invitation::Column::State.eq(InvitationState::Pending))
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .order_by_desc(invitation::Column::CreatedAt)
        .order_by_desc(invitation::Column::Id)
        .limit(MAX_INVITATIONS_LISTED)
        .all(db)
        .await?;
    with_project_names(db, models).await
}

async fn with_project_names(
    db: &impl ConnectionTrait,
    models: Vec<invitation::Model>,
) -> AppResult<Vec<Invitation>> {
    let names: HashMap<Uuid, String> = project::Entity::find()
        .select_only()
        .column(project::Column::Id)
        .column(project::Column::Name)
        .filter(project::Column::Id.is_in(models.iter().map(|m| m.project_id)))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(models
        .into_iter()
        .map(|model| Invitation {
            project_name: names.get(&model.project_id).cloned().unwrap_or_default(),
            model,
        })
        .collect())
}

/// Withdraws a pending invitation. Admins of its project only; for anyone
/// else it does not exist.
pub async fn revoke(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    invitation_id: Uuid,
) -> AppResult<Invitation> {
    let not_found = AppError::NotFound("invitation");
    let model = invitation::Entity::find_by_id(invitation_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("invitation"))?;
    match access::require_role(db, agent_id, model.project_id, Role::Admin).await {
        Err(AppError::NotFound(_)) => return Err(not_found),
        other => other?,
    };
    let now = Utc::now();
    let revoked = invitation::Entity::update_many()
        .col_expr(
            invitation::Column::State,
            Expr::value(InvitationState::Revoked),
        )
        .col_expr(invitation::Column::ClosedAt, Expr::value(now))
        .filter(invitation::Column::Id.eq(model.id))
        .filter(invitation::Column::State.eq(InvitationState::Pending))
        .exec(db)
        .await?;
    if revoked.rows_affected == 0 {
        return Err(AppError::bad_input(
            "id",
            "this invitation was already accepted or revoked",
        ));
    }
    let mut models = with_project_names(
        db,
        vec![invitation::Model {
            state: InvitationState::Revoked,
            closed_at: Some(now),
            ..model
        }],
    )
    .await?;
    models.pop().ok_or(not_found)
}

/// The logged-in agent accepts an invitation of its own email.
pub async fn accept_as_agent(
    db: &DatabaseConnection,
    agent: &agent::Model,
    invitation_id: Uuid,
) -> AppResult<MembershipChanged> {
    let model = invitation::Entity::find_by_id(invitation_id)
        .filter(invitation::Column::Email.eq(agent.email.as_str()))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("invitation"))?;
    let txn = db.begin().await?;
    claim(&txn, &model, "id").await?;
    let change = add_member(&txn, &model, agent.id, "id").await?;
    txn.commit().await?;
    Ok(change)
}

/// What someone holding an invitation's token gives to accept it: for an
/// address without an account, the name and password of the new account.
pub struct TokenAcceptance<'a> {
    pub token: &'a str,
    pub name: Option<&'a str>,
    pub password: Option<&'a str>,
}

/// Accepts the invitation of a mailed token: the token proves the address,
/// so its agent joins, or, without an account, one is created and joins.
pub async fn accept_with_token(
    db: &DatabaseConnection,
    acceptance: TokenAcceptance<'_>,
) -> AppResult<MembershipChanged> {
    let refused = || AppError::bad_input("token", "is not a valid invitation token");
    if !acceptance.token.starts_with(TOKEN_PREFIX) || acceptance.token.len() > 128 {
        return Err(refused());
    }
    let model = invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(secret_hash(acceptance.token)))
        .one(db)
        .await?
        .ok_or_else(refused)?;
    refuse_unless_pending(&model, "token")?;
    let email = EmailAddress::parse(&model.email, "token")?;
    let existing = agents::find_by_email(db, &email).await?;
    let txn = db.begin().await?;
    // Claimed first: of two acceptances at once, the second waits here and
    // is refused, before it creates an account.
    claim(&txn, &model, "token").await?;
    let agent_id = match existing {
        Some(agent) => agent.id,
        None => {
            let name = parse_name(
                acceptance.name.ok_or_else(|| {
                    AppError::bad_input("name", "is needed to create your account")
                })?,
                "name",
            )?;
            let password = acceptance.password.ok_or_else(|| {
                AppError::bad_input("password", "is needed to create your account")
            })?;
            Password::parse(password)?;
            agents::create_agent(&txn, email.as_str(), &name, password)
                .await?
                .id
        }
    };
    let change = add_member(&txn, &model, agent_id, "token").await?;
    txn.commit().await?;
    Ok(change)
}

fn refuse_unless_pending(model: &invitation::Model, field: &str) -> AppResult<()> {
    let message = match status_at(model, Utc::now()) {
        InvitationStatus::Pending => return Ok(()),
        InvitationStatus::Accepted => "this invitation was already used",
        InvitationStatus::Revoked => "this invitation was revoked",
        InvitationStatus::Expired => "this invitation has expired",
    };
    Err(AppError::bad_input(field, message))
}

/// Uses the invitation up, in the caller's transaction: one conditional
/// update, so that of two acceptances at once only one gets through.
async fn claim(
    txn: &impl ConnectionTrait,
    model: &invitation::Model,
    field: &str,
) -> AppResult<()> {
    refuse_unless_pending(model, field)?;
    let now = Utc::now();
    let claimed = invitation::Entity::update_many()
        .col_expr(
            invitation::Column::State,
            Expr::value(InvitationState::Accepted),
        )
        .col_expr(invitation::Column::ClosedAt, Expr::value(now))
        .filter(invitation::Column::Id.eq(model.id))
        .filter(invitation::Column::State.eq(InvitationState::Pending))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?;
    if claimed.rows_affected == 0 {
        return Err(AppError::bad_input(
            field,
            "this invitation was already used",
        ));
    }
    Ok(())
}

/// Makes the agent a member with the invitation's role.
async fn add_member(
    txn: &impl ConnectionTrait,
    model: &invitation::Model,
    agent_id: Uuid,
    field: &str,
) -> AppResult<MembershipChanged> {
    let now = Utc::now();
    let already = membership::Entity::find_by_id((model.project_id, agent_id))
        .one(txn)
        .await?;
    if already.is_some() {
        return Err(AppError::bad_input(
            field,
            "you are already a member of this project",
        ));
    }
    membership::ActiveModel {
        project_id: Set(model.project_id),
        agent_id: Set(agent_id),
        role: Set(model.role),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    Ok(MembershipChanged {
        project_id: model.project_id,
        agent_id,
        role: Some(model.role.into()),
        kind: MembershipChangeKind::Added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitation(state: InvitationState, expires_in_secs: i64) -> invitation::Model {
        let now = Utc::now();
        invitation::Model {
            id: new_id(),
            project_id: new_id(),
            email: "ana@example.com".into(),
            role: Role::Agent,
            state,
            token_hash: secret_hash("inv_x"),
            invited_by: None,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(expires_in_secs),
            closed_at: None,
        }
    }

    #[test]
    fn a_pending_invitation_past_its_time_is_expired() {
        let now = Utc::now();
        assert_eq!(
            status_at(&invitation(InvitationState::Pending, 60), now),
            InvitationStatus::Pending
        );
        assert_eq!(
            status_at(&invitation(InvitationState::Pending, -1), now),
            InvitationStatus::Expired
        );
        assert_eq!(
            status_at(&invitation(InvitationState::Accepted, -1), now),
            InvitationStatus::Accepted
        );
        assert_eq!(
            status_at(&invitation(InvitationState::Revoked, 60), now),
            InvitationStatus::Revoked
        );
    }

    #[test]
    fn only_pending_invitations_can_be_used() {
        assert!(refuse_unless_pending(&invitation(InvitationState::Pending, 60), "token").is_ok());
        for model in [
            invitation(InvitationState::Pending, -1),
            invitation(InvitationState::Accepted, 60),
            invitation(InvitationState::Revoked, 60),
        ] {
            assert_eq!(
                refuse_unless_pending(&model, "token").unwrap_err().code(),
                "BAD_USER_INPUT"
            );
        }
    }
}
