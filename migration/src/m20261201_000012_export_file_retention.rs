//! When retention deleted an export's file, so that its job and its links
//! can say the file has expired rather than that it never existed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("export_jobs")
                    .add_column(timestamp_with_time_zone_null("file_expired_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("export_jobs")
                    .drop_column("file_expired_at")
                    .to_owned(),
            )
            .await
    }
}
