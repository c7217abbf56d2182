//! Batched loading of what each project of a list shows (its members, its
//! allowed origins) and of an agent's own projects.

use std::collections::HashMap;

use entity::{agent, membership, project};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use async_graphql::dataloader::Loader;

use crate::domain::access::ProjectAccess;
use crate::domain::{invitations, projects};
use crate::protection::origins;

/// Keyed by the caller's access to the project, which only the access
/// check makes.
pub struct MembersLoader {
    pub(super) db: DatabaseConnection,
}

impl Loader<ProjectAccess> for MembersLoader {
    type Value = Vec<(agent::Model, membership::Model)>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ProjectAccess],
    ) -> Result<HashMap<ProjectAccess, Self::Value>, Self::Error> {
        let mut members = projects::members_of_many(&self.db, keys).await?;
        Ok(keys
            .iter()
            .map(|access| {
                let found = members.remove(&access.project_id()).unwrap_or_default();
                (access.clone(), found)
            })
            .collect())
    }
}

/// A project's invitations; empty unless the access is an admin's.
pub struct InvitationsLoader {
    pub(super) db: DatabaseConnection,
}

impl Loader<ProjectAccess> for InvitationsLoader {
    type Value = Vec<invitations::Invitation>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ProjectAccess],
    ) -> Result<HashMap<ProjectAccess, Self::Value>, Self::Error> {
        let mut found = invitations::of_projects(&self.db, keys).await?;
        Ok(keys
            .iter()
            .map(|access| {
                let invitations = found.remove(&access.project_id()).unwrap_or_default();
                (access.clone(), invitations)
            })
            .collect())
    }
}

pub struct AllowedOriginsLoader {
    pub(super) db: DatabaseConnection,
}

impl Loader<ProjectAccess> for AllowedOriginsLoader {
    type Value = Vec<String>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ProjectAccess],
    ) -> Result<HashMap<ProjectAccess, Self::Value>, Self::Error> {
        let mut allowed = origins::allowed_origins_of_many(&self.db, keys).await?;
        Ok(keys
            .iter()
            .map(|access| {
                let found = allowed.remove(&access.project_id()).unwrap_or_default();
                (access.clone(), found)
            })
            .collect())
    }
}

/// Keyed by agent id; resolvers ask only for the caller's own projects.
pub struct ProjectsOfAgentLoader {
    pub(super) db: DatabaseConnection,
}

impl Loader<Uuid> for ProjectsOfAgentLoader {
    type Value = Vec<(project::Model, ProjectAccess)>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(projects::projects_of_many(&self.db, keys).await?)
    }
}
