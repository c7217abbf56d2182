//! The shared handles every request and job works with.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::geo::GeoLocator;
use crate::pubsub::EventBus;

#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub bus: Arc<dyn EventBus>,
    pub settings: Arc<Settings>,
    pub geo: Arc<dyn GeoLocator>,
}
