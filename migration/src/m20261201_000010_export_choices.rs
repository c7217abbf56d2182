//! What an export writes: its file format, the contacts list filter it
//! applies, its columns, and the time zone its times are written in; and
//! an index of the contacts that carry custom attributes, which an export
//! of every column reads for the attribute keys instead of every contact.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 4] = ["format", "filter", "columns", "time_zone"];

/// The condition is written as the export's key query writes it, so that
/// both engines see the query's rows are in the index.
const WITH_ATTRIBUTES_INDEX: &str = "CREATE INDEX IF NOT EXISTS idx_contacts_with_attributes \
     ON contacts (project_id, created_at) WHERE custom_attributes <> '{}'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            // Jobs queued before this change were CSV exports.
            string_len("format", 8).default("CSV").to_owned(),
            // The checked filter; null for none.
            json_binary_null("filter"),
            // The chosen columns; null for every field and attribute.
            json_binary_null("columns"),
            // IANA name; null for UTC.
            string_len_null("time_zone", 64),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("export_jobs")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(WITH_ATTRIBUTES_INDEX)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_contacts_with_attributes")
            .await?;
        for column in COLUMNS.into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table("export_jobs")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
