//! Contact forms, the history of every contact change, and what the form
//! synchronisation needs on contacts: where each value came from, the
//! site's verified identifier, and lookups by email and phone for merging.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("contacts")
                    .add_column(string_len_null("external_id", 255))
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table("contacts")
                    .add_column(json_binary("field_sources").default("{}"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_contacts_project_external")
                    .table("contacts")
                    .col("project_id")
                    .col("external_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_contacts_project_email", "email"),
            ("idx_contacts_project_phone", "phone"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("contacts")
                        .col("project_id")
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("form_questions")
                    .col(pk_uuid("id"))
                    .col(uuid("project_id"))
                    .col(string_len("key", 64))
                    .col(string_len("label", 200))
                    .col(string_len("kind", 16))
                    .col(boolean("required"))
                    .col(string_len("target_kind", 16))
                    .col(string_len("target_name", 64))
                    .col(json_binary("options"))
                    .col(integer("position"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_form_questions_project")
                            .from("form_questions", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_form_questions_key")
                    .table("form_questions")
                    .col("project_id")
                    .col("key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // One question per target: two questions filling one field would
        // fight over it.
        manager
            .create_index(
                Index::create()
                    .name("uq_form_questions_target")
                    .table("form_questions")
                    .col("project_id")
                    .col("target_kind")
                    .col("target_name")
                    .unique()
                    .to_owned(),
            )
            .await?;

        // No foreign key to contacts: the record of a deleted or merged
        // contact outlives it.
        manager
            .create_table(
                Table::create()
                    .table("contact_events")
                    .col(pk_uuid("id"))
                    .col(uuid("project_id"))
                    .col(uuid("contact_id"))
                    .col(string_len("kind", 32))
                    .col(string_len("actor_type", 16))
                    .col(uuid_null("actor_id"))
                    .col(string_len_null("field", 64))
                    .col(json_binary_null("old_value"))
                    .col(json_binary_null("new_value"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_events_project")
                            .from("contact_events", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_events_contact")
                    .table("contact_events")
                    .col("contact_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["contact_events", "form_questions"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("uq_contacts_project_external")
                    .table("contacts")
                    .to_owned(),
            )
            .await?;
        for name in ["idx_contacts_project_email", "idx_contacts_project_phone"] {
            manager
                .drop_index(Index::drop().name(name).table("contacts").to_owned())
                .await?;
        }
        for column in ["field_sources", "external_id"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("contacts")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
