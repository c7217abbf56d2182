//! The shared handles every request and job works with.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::access_cache::AccessCache;
use crate::config::Settings;
use crate::domain::export_links::ExportLinks;
use crate::geo::GeoLocator;
use crate::mail::Mailer;
use crate::protection::origins::OriginPolicy;
use crate::protection::rate_limit::RateLimiter;
use crate::pubsub::EventBus;
use crate::read_connections::ReadConnections;
use crate::storage::{ExportStore, LocalStore};

#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    /// For the contacts section's reads: connections of their own on
    /// PostgreSQL, the shared one on SQLite.
    pub reads: ReadConnections,
    pub bus: Arc<dyn EventBus>,
    /// Tokens and memberships seen in the last moment; the bus clears them.
    pub access_cache: Arc<AccessCache>,
    pub settings: Arc<Settings>,
    pub geo: Arc<dyn GeoLocator>,
    /// Where export files are stored.
    pub store: Arc<dyn ExportStore>,
    /// The embedded store, when no S3 is configured: its links are served
    /// by this server.
    pub local_store: Option<Arc<LocalStore>>,
    /// Limits on the public operations and failed logins: in Redis, shared
    /// by every instance, when configured; in memory otherwise.
    pub rate_limiter: Arc<RateLimiter>,
    /// The browser origins allowed to call the API, cached.
    pub origins: Arc<OriginPolicy>,
    /// Invitations and password resets; the export worker has the same one.
    pub mailer: Arc<dyn Mailer>,
    /// Signs and checks the export links that are mailed.
    pub export_links: Arc<ExportLinks>,
}
