//! What exact cancels, crash clean-up and checked links need: the multipart
//! upload an attempt has in flight, and the server's link-signing keys,
//! shared by every instance on the database.

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
                    .add_column(string_len_null("upload_id", 1024))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("server_secrets")
                    .if_not_exists()
                    .col(string_len("name", 64).primary_key())
                    .col(string_len("secret", 256))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("server_secrets").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("export_jobs")
                    .drop_column("upload_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
