//! Schema migrations of the contacts service, one file per change, never
//! edited once landed.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_agents_and_projects;
mod m20261125_000002_create_contacts_and_chats;
mod m20261125_000003_create_forms_and_contact_history;
mod m20261125_000004_contact_list_indexes;
mod m20261125_000005_create_visitor_aliases;
mod m20261125_000006_create_export_jobs_and_notifications;
mod m20261125_000007_project_allowed_origins;
mod m20261201_000008_server_issued_visitors;
mod m20261201_000009_accounts;
mod m20261201_000010_export_choices;
mod m20261201_000011_export_delivery;
mod m20261201_000012_export_file_retention;
mod m20261201_000013_contact_search_text;
pub mod search_folding;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_agents_and_projects::Migration),
            Box::new(m20261125_000002_create_contacts_and_chats::Migration),
            Box::new(m20261125_000003_create_forms_and_contact_history::Migration),
            Box::new(m20261125_000004_contact_list_indexes::Migration),
            Box::new(m20261125_000005_create_visitor_aliases::Migration),
            Box::new(m20261125_000006_create_export_jobs_and_notifications::Migration),
            Box::new(m20261125_000007_project_allowed_origins::Migration),
            Box::new(m20261201_000008_server_issued_visitors::Migration),
            Box::new(m20261201_000009_accounts::Migration),
            Box::new(m20261201_000010_export_choices::Migration),
            Box::new(m20261201_000011_export_delivery::Migration),
            Box::new(m20261201_000012_export_file_retention::Migration),
            Box::new(m20261201_000013_contact_search_text::Migration),
        ]
    }
}
