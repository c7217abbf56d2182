//! Schema migrations of the contacts service, one file per change, never
//! edited once landed.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_agents_and_projects;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(
            m20261125_000001_create_agents_and_projects::Migration,
        )]
    }
}
