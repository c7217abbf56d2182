//! Who may do what in a project: the one check that every project-scoped
//! operation passes through.

use entity::membership;
pub use entity::membership::Role;
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::access_cache::AccessCache;
use crate::error::{AppError, AppResult};

/// Proof that an agent holds a role in a project; only `require_role`
/// makes one, so code that takes it cannot skip the check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProjectAccess {
    project_id: Uuid,
    agent_id: Uuid,
    role: Role,
}

impl ProjectAccess {
    pub fn project_id(&self) -> Uuid {
        self.project_id
    }

    pub fn agent_id(&self) -> Uuid {
        self.agent_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the agent may read the project's secret key, which signs
    /// identified visitors and the site's server-to-server calls: admins
    /// only, since it lets its holder act as the site.
    pub fn may_read_secret_key(&self) -> bool {
        self.role == Role::Admin
    }
}

impl From<&membership::Model> for ProjectAccess {
    /// A membership row read from the database is itself the proof.
    fn from(membership: &membership::Model) -> Self {
        ProjectAccess {
            project_id: membership.project_id,
            agent_id: membership.agent_id,
            role: membership.role,
        }
    }
}

fn satisfies(held: Role, needed: Role) -> bool {
    match needed {
        Role::Agent => true,
        Role::Admin => held == Role::Admin,
    }
}

/// Checks that `agent_id` is a member of `project_id` with at least `needed`.
/// A non-member gets exactly the answer a missing project gets.
pub async fn require_role(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    project_id: Uuid,
    needed: Role,
) -> AppResult<ProjectAccess> {
    let access = find_access(db, agent_id, project_id).await?;
    check_role(access, needed)
}

/// `require_role` for the gate of a request: a membership found in the
/// last moment is taken from `cache`, which every membership change clears.
pub async fn require_role_cached(
    cache: &AccessCache,
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    project_id: Uuid,
    needed: Role,
) -> AppResult<ProjectAccess> {
    let access = match cache.membership(project_id, agent_id) {
        Some(access) => access,
        None => {
            let ticket = cache.ticket();
            let access = find_access(db, agent_id, project_id).await?;
            cache.keep_membership(ticket, &access);
            access
        }
    };
    check_role(access, needed)
}

async fn find_access(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    project_id: Uuid,
) -> AppResult<ProjectAccess> {
    let membership = membership::Entity::find_by_id((project_id, agent_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("project"))?;
    Ok(ProjectAccess::from(&membership))
}

fn check_role(access: ProjectAccess, needed: Role) -> AppResult<ProjectAccess> {
    if !satisfies(access.role, needed) {
        return Err(AppError::Forbidden("only project admins may do this"));
    }
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_may_do_what_agents_may() {
        assert!(satisfies(Role::Admin, Role::Admin));
        assert!(satisfies(Role::Admin, Role::Agent));
        assert!(satisfies(Role::Agent, Role::Agent));
        assert!(!satisfies(Role::Agent, Role::Admin));
    }
}
