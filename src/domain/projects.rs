//! Projects and their members.

use std::collections::HashMap;

use chrono::Utc;
use entity::{agent, membership, project};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::access::{ProjectAccess, Role};
use crate::domain::agents::{self, parse_name};
use crate::domain::email::EmailAddress;
use crate::domain::events::{MembershipChangeKind, MembershipChanged};
use crate::domain::ids::{new_id, random_secret};
use crate::error::{AppError, AppResult};

/// Creates a project; its creator becomes its first ADMIN.
pub async fn create_project(
    db: &DatabaseConnection,
    creator_id: Uuid,
    name: &str,
) -> AppResult<project::Model> {
    let name = parse_name(name, "name")?;
    let now = Utc::now();
    let txn = db.begin().await?;
    let project = project::ActiveModel {
        id: Set(new_id()),
        name: Set(name),
        public_key: Set(random_secret("pk")),
        secret_key: Set(random_secret("sk")),
        created_at: Set(now),
        previous_public_key: Set(None),
        previous_public_key_until: Set(None),
    }
    .insert(&txn)
    .await?;
    membership::ActiveModel {
        project_id: Set(project.id),
        agent_id: Set(creator_id),
        role: Set(Role::Admin),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(project)
}

pub async fn get(db: &impl ConnectionTrait, access: &ProjectAccess) -> AppResult<project::Model> {
    project::Entity::find_by_id(access.project_id())
        .one(db)
        .await?
        .ok_or(AppError::NotFound("project"))
}

/// The projects an agent belongs to, oldest first, with the agent's access.
pub async fn projects_of(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
) -> AppResult<Vec<(project::Model, ProjectAccess)>> {
    Ok(projects_of_many(db, &[agent_id])
        .await?
        .remove(&agent_id)
        .unwrap_or_default())
}

/// The projects of each of `agent_ids`, by agent, in two statements.
pub async fn projects_of_many(
    db: &impl ConnectionTrait,
    agent_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<(project::Model, ProjectAccess)>>> {
    let memberships = membership::Entity::find()
        .filter(membership::Column::AgentId.is_in(agent_ids.iter().copied()))
        .all(db)
        .await?;
    let projects: HashMap<Uuid, project::Model> = project::Entity::find()
        .filter(project::Column::Id.is_in(memberships.iter().map(|m| m.project_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|project| (project.id, project))
        .collect();
    let mut by_agent: HashMap<Uuid, Vec<(project::Model, ProjectAccess)>> = agent_ids
        .iter()
        .map(|agent_id| (*agent_id, Vec::new()))
        .collect();
    for membership in &memberships {
        if let Some(project) = projects.get(&membership.project_id) {
            by_agent
                .entry(membership.agent_id)
                .or_default()
                .push((project.clone(), ProjectAccess::from(membership)));
        }
    }
    for projects in by_agent.values_mut() {
        projects.sort_by_key(|(project, _)| project.id);
    }
    Ok(by_agent)
}

/// The members of a project with their agents, in the order they joined.
pub async fn members(
    db: &impl ConnectionTrait,
    access: &ProjectAccess,
) -> AppResult<Vec<(agent::Model, membership::Model)>> {
    Ok(members_of_many(db, std::slice::from_ref(access))
        .await?
        .remove(&access.project_id())
        .unwrap_or_default())
}

/// The members of each project the accesses are to, by project, oldest
/// member first, in two statements.
pub async fn members_of_many(
    db: &impl ConnectionTrait,
    accesses: &[ProjectAccess],
) -> AppResult<HashMap<Uuid, Vec<(agent::Model, membership::Model)>>> {
    let memberships = membership::Entity::find()
        .filter(membership::Column::ProjectId.is_in(accesses.iter().map(ProjectAccess::project_id)))
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?;
    let agents: HashMap<Uuid, agent::Model> = agents::find_many(
        db,
        &memberships.iter().map(|m| m.agent_id).collect::<Vec<_>>(),
    )
    .await?
    .into_iter()
    .map(|agent| (agent.id, agent))
    .collect();
    let mut by_project: HashMap<Uuid, Vec<(agent::Model, membership::Model)>> = accesses
        .iter()
        .map(|access| (access.project_id(), Vec::new()))
        .collect();
    for membership in memberships {
        if let Some(agent) = agents.get(&membership.agent_id) {
            by_project
                .entry(membership.project_id)
                .or_default()
                .push((agent.clone(), membership));
        }
    }
    Ok(by_project)
}

fn require_admin(access: &ProjectAccess) -> AppResult<()> {
    if access.role() == Role::Admin {
        Ok(())
    } else {
        Err(AppError::Forbidden("only project admins may do this"))
    }
}

/// Adds a member without asking who wants it: the operator's command line.
/// Through the API, admins invite (see `invitations`).
pub async fn insert_member(
    db: &DatabaseConnection,
    project_id: Uuid,
    email: &str,
    role: Role,
) -> AppResult<MembershipChanged> {
    let email = EmailAddress::parse(email, "email")?;
    let txn = db.begin().await?;
    if project::Entity::find_by_id(project_id)
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("project"));
    }
    let agent = agents::find_by_email(&txn, &email)
        .await?
        .ok_or_else(|| AppError::bad_input("email", "no agent has this email"))?;
    // Two additions of one agent at once both find no membership; the
    // primary key decides, and the one that finds it taken answers as if
    // the agent had been a member all along.
    let inserted = membership::Entity::insert(membership::ActiveModel {
        project_id: Set(project_id),
        agent_id: Set(agent.id),
        role: Set(role),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([membership::Column::ProjectId, membership::Column::AgentId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if inserted == 0 {
        return Err(AppError::bad_input(
            "email",
            "this agent is already a member",
        ));
    }
    txn.commit().await?;
    Ok(MembershipChanged {
        project_id,
        agent_id: agent.id,
        role: Some(role.into()),
        kind: MembershipChangeKind::Added,
    })
}

/// Removes a member, or changes its role when `new_role` is given; a project
/// never loses its last ADMIN.
async fn change_membership(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    agent_id: Uuid,
    new_role: Option<Role>,
) -> AppResult<MembershipChanged> {
    require_admin(access)?;
    let txn = db.begin().await?;
    // Locking every membership row of the project serialises concurrent
    // changes, so two admins cannot demote each other at the same moment.
    // In one order (by agent), so that two transactions locking the same
    // rows cannot deadlock on each other.
    let memberships = membership::Entity::find()
        .filter(membership::Column::ProjectId.eq(access.project_id()))
        .order_by_asc(membership::Column::AgentId)
        .lock_exclusive()
        .all(&txn)
        .await?;
    // The caller's role is checked again under the lock: it may have been
    // demoted since its access was checked.
    let caller_is_admin = memberships
        .iter()
        .any(|m| m.agent_id == access.agent_id() && m.role == Role::Admin);
    if !caller_is_admin {
        return Err(AppError::Forbidden("only project admins may do this"));
    }
    let target = memberships
        .iter()
        .find(|m| m.agent_id == agent_id)
        .ok_or(AppError::NotFound("member"))?;
    let admins = memberships.iter().filter(|m| m.role == Role::Admin).count();
    let loses_admin = target.role == Role::Admin && new_role != Some(Role::Admin);
    if loses_admin && admins <= 1 {
        return Err(AppError::bad_input(
            "agentId",
            "a project must keep at least one admin",
        ));
    }
    let kind = match new_role {
        Some(role) => {
            let mut active: membership::ActiveModel = target.clone().into();
            active.role = Set(role);
            active.update(&txn).await?;
            MembershipChangeKind::RoleChanged
        }
        None => {
            membership::Entity::delete_by_id((access.project_id(), agent_id))
                .exec(&txn)
                .await?;
            MembershipChangeKind::Removed
        }
    };
    txn.commit().await?;
    Ok(MembershipChanged {
        project_id: access.project_id(),
        agent_id,
        role: new_role.map(Into::into),
        kind,
    })
}

pub async fn remove_member(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    agent_id: Uuid,
) -> AppResult<MembershipChanged> {
    change_membership(db, access, agent_id, None).await
}

pub async fn change_role(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    agent_id: Uuid,
    role: Role,
) -> AppResult<MembershipChanged> {
    change_membership(db, access, agent_id, Some(role)).await
}

/// The agent of `access` leaves the project; its last admin cannot.
pub async fn leave_project(
    db: &DatabaseConnection,
    access: &ProjectAccess,
) -> AppResult<MembershipChanged> {
    let txn = db.begin().await?;
    // The same lock as for removals and demotions: two admins leaving at
    // once cannot leave the project without one.
    let memberships = membership::Entity::find()
        .filter(membership::Column::ProjectId.eq(access.project_id()))
        .lock_exclusive()
        .all(&txn)
        .await?;
    let own = memberships
        .iter()
        .find(|m| m.agent_id == access.agent_id())
        .ok_or(AppError::NotFound("project"))?;
    let admins = memberships.iter().filter(|m| m.role == Role::Admin).count();
    if own.role == Role::Admin && admins <= 1 {
        return Err(AppError::bad_input(
            "projectId",
            "a project must keep at least one admin: make another member admin first",
        ));
    }
    membership::Entity::delete_by_id((access.project_id(), access.agent_id()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(MembershipChanged {
        project_id: access.project_id(),
        agent_id: access.agent_id(),
        role: None,
        kind: MembershipChangeKind::Removed,
    })
}
