//! Visitors as the server issues them: a credential stored hashed, each
//! visitor's own answers, chats tied to the visitor that started them, and
//! possible duplicates instead of merges on a typed email or phone.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Client-chosen visitor ids leave the contacts table; the service has
        // no deployment whose ids would need carrying over.
        db.execute_unprepared("DROP INDEX uq_contacts_project_visitor")
            .await?;
        db.execute_unprepared("ALTER TABLE contacts DROP COLUMN visitor_id")
            .await?;
        manager
            .drop_table(Table::drop().table("visitor_aliases").to_owned())
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("visitors")
                    .col(pk_uuid("id"))
                    .col(uuid("project_id"))
                    .col(uuid("contact_id"))
                    .col(string_len("kind", 16))
                    // SHA-256 of the browser's credential, or of the
                    // verified identity's identifier within the project.
                    .col(string_len_uniq("key_hash", 64))
                    .col(json_binary("answers"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_visitors_project")
                            .from("visitors", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_visitors_contact")
                            .from("visitors", "contact_id")
                            .to("contacts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_visitors_contact")
                    .table("visitors")
                    .col("contact_id")
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table("chats")
                    .add_column(uuid_null("visitor_id"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("contact_duplicates")
                    .col(uuid("project_id"))
                    // The pair is stored once, the smaller id first.
                    .col(uuid("contact_id"))
                    .col(uuid("other_id"))
                    .col(string_len("reason", 16))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("dismissed_at"))
                    .primary_key(Index::create().col("contact_id").col("other_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_duplicates_contact")
                            .from("contact_duplicates", "contact_id")
                            .to("contacts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_duplicates_other")
                            .from("contact_duplicates", "other_id")
                            .to("contacts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_duplicates_other")
                    .table("contact_duplicates")
                    .col("other_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("contact_duplicates").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("visitors").to_owned())
            .await?;
        Err(DbErr::Migration(
            "client-chosen visitor ids cannot be restored".to_owned(),
        ))
    }
}
