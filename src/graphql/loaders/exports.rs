//! Batched loading of what each export or notification of a list shows:
//! the agent who asked for an export, the export a notification is about.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use entity::{agent, export_job};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::{agents, exports};

/// Agents by id; asked only for agents of exports the caller may see.
pub struct AgentsLoader {
    pub(super) db: DatabaseConnection,
}

impl Loader<Uuid> for AgentsLoader {
    type Value = agent::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(agents::find_many(&self.db, keys)
            .await?
            .into_iter()
            .map(|agent| (agent.id, agent))
            .collect())
    }
}

/// One export job as one agent may see it: absent unless the agent is a
/// member of the job's project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobForAgent {
    pub agent_id: Uuid,
    pub job_id: Uuid,
}

pub struct ExportJobsLoader {
    pub(super) db: DatabaseConnection,
}

impl Loader<JobForAgent> for ExportJobsLoader {
    type Value = export_job::Model;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[JobForAgent],
    ) -> Result<HashMap<JobForAgent, Self::Value>, Self::Error> {
        let mut by_agent: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_agent.entry(key.agent_id).or_default().push(key.job_id);
        }
        let mut loaded = HashMap::new();
        for (agent_id, job_ids) in by_agent {
            let jobs = exports::find_many_for_agent(&self.db, agent_id, &job_ids).await?;
            loaded.extend(
                jobs.into_iter()
                    .map(|(job_id, job)| (JobForAgent { agent_id, job_id }, job)),
            );
        }
        Ok(loaded)
    }
}
