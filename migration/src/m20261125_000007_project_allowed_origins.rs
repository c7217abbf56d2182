//! The browser origins each project's chat widget may call the API from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("project_allowed_origins")
                    .col(uuid("project_id"))
                    .col(string_len("origin", 255))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("project_id").col("origin"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_project_allowed_origins_project")
                            .from("project_allowed_origins", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("project_allowed_origins").to_owned())
            .await
    }
}
