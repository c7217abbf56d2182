//! Batched loading of what each item of a list shows (a contact's chats and
//! history, a project's members, an export's agent...): one statement for a
//! whole page, not one per item.
//!
//! The loaders live in the schema data and keep no cache, so nothing stale
//! outlives a request; only rows of contacts that a resolver already
//! authorized are ever asked for.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{chat, contact, contact_event};
use sea_orm::DatabaseConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{contacts, duplicates};

mod exports;
mod projects;

pub use exports::{AgentsLoader, ExportJobsLoader, JobForAgent};
pub use projects::{AllowedOriginsLoader, InvitationsLoader, MembersLoader, ProjectsOfAgentLoader};

/// The first `first` rows of one contact's list, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FirstOf {
    pub contact_id: Uuid,
    pub first: u64,
}

/// A page of rows and whether more follow.
pub type Page<T> = (Vec<T>, bool);

pub struct ChatsLoader {
    db: DatabaseConnection,
}

pub struct HistoryLoader {
    db: DatabaseConnection,
}

/// Keys asked together with different page sizes are loaded per size.
fn by_page_size(keys: &[FirstOf]) -> HashMap<u64, Vec<Uuid>> {
    let mut groups: HashMap<u64, Vec<Uuid>> = HashMap::new();
    for key in keys {
        groups.entry(key.first).or_default().push(key.contact_id);
    }
    groups
}

impl Loader<FirstOf> for ChatsLoader {
    type Value = Page<chat::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[FirstOf]) -> Result<HashMap<FirstOf, Self::Value>, Self::Error> {
        let mut loaded = HashMap::new();
        for (first, contact_ids) in by_page_size(keys) {
            let pages = contacts::first_chats_of_many(&self.db, &contact_ids, first).await?;
            loaded.extend(
                pages
                    .into_iter()
                    .map(|(contact_id, page)| (FirstOf { contact_id, first }, page)),
            );
        }
        Ok(loaded)
    }
}

impl Loader<FirstOf> for HistoryLoader {
    type Value = Page<contact_event::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[FirstOf]) -> Result<HashMap<FirstOf, Self::Value>, Self::Error> {
        let mut loaded = HashMap::new();
        for (first, contact_ids) in by_page_size(keys) {
            let pages = contacts::first_history_of_many(&self.db, &contact_ids, first).await?;
            loaded.extend(
                pages
                    .into_iter()
                    .map(|(contact_id, page)| (FirstOf { contact_id, first }, page)),
            );
        }
        Ok(loaded)
    }
}

/// A contact's possible duplicates, for a whole page of contacts at once.
pub struct DuplicatesLoader {
    db: DatabaseConnection,
}

impl Loader<uuid::Uuid> for DuplicatesLoader {
    type Value = Vec<contact::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(duplicates::contacts_of_many(&self.db, keys).await?)
    }
}

/// The loaders of the schema, built once with it.
pub struct Loaders {
    pub chats: DataLoader<ChatsLoader>,
    pub history: DataLoader<HistoryLoader>,
    pub duplicates: DataLoader<DuplicatesLoader>,
    pub members: DataLoader<MembersLoader>,
    pub invitations: DataLoader<InvitationsLoader>,
    pub allowed_origins: DataLoader<AllowedOriginsLoader>,
    pub projects_of_agent: DataLoader<ProjectsOfAgentLoader>,
    pub agents: DataLoader<AgentsLoader>,
    pub export_jobs: DataLoader<ExportJobsLoader>,
}

/// How long a batch waits for more keys after its first. The contacts of a
/// page ask one after the other, with the executor yielding every 32 list
/// items; 1 ms (the default) can close a batch before a slow (debug, busy)
/// build has asked for the whole page.
const BATCH_WINDOW: Duration = Duration::from_millis(3);

impl Loaders {
    pub fn new(db: DatabaseConnection) -> Self {
        Loaders {
            chats: batched(ChatsLoader { db: db.clone() }),
            history: batched(HistoryLoader { db: db.clone() }),
            members: batched(MembersLoader { db: db.clone() }),
            invitations: batched(InvitationsLoader { db: db.clone() }),
            allowed_origins: batched(AllowedOriginsLoader { db: db.clone() }),
            projects_of_agent: batched(ProjectsOfAgentLoader { db: db.clone() }),
            agents: batched(AgentsLoader { db: db.clone() }),
            duplicates: batched(DuplicatesLoader { db: db.clone() }),
            export_jobs: batched(ExportJobsLoader { db }),
        }
    }
}

fn batched<T: Send + Sync + 'static>(loader: T) -> DataLoader<T> {
    DataLoader::new(loader, spawn_in_current_span).delay(BATCH_WINDOW)
}

/// Batches run in a task of their own; it carries the span of the request
/// that started it, so its statements are logged (and counted) with it.
fn spawn_in_current_span(
    batch: futures_util::future::BoxFuture<'static, ()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(batch.in_current_span())
}
