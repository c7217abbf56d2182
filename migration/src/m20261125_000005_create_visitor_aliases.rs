//! Visitor ids of contacts merged into another: a returning visitor of a
//! merged contact finds the surviving contact.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("visitor_aliases")
                    .col(uuid("project_id"))
                    .col(string_len("visitor_id", 128))
                    .col(uuid("contact_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("project_id").col("visitor_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_visitor_aliases_contact")
                            .from("visitor_aliases", "contact_id")
                            .to("contacts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_visitor_aliases_contact")
                    .table("visitor_aliases")
                    .col("contact_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("visitor_aliases").to_owned())
            .await
    }
}
