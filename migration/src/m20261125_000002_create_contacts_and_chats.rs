//! Contacts of a project and the chats their visitors started.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("contacts")
                    .col(pk_uuid("id"))
                    .col(uuid("project_id"))
                    .col(string_len("visitor_id", 128))
                    .col(string_len_null("name", 200))
                    .col(string_len_null("email", 320))
                    .col(string_len_null("phone", 32))
                    .col(string_len_null("company", 200))
                    .col(json_binary("custom_attributes"))
                    .col(string_len_null("last_ip", 64))
                    .col(string_len_null("country_code", 2))
                    .col(string_len_null("country_name", 100))
                    .col(string_len_null("state_name", 100))
                    .col(string_len_null("state_code", 10))
                    .col(string_len_null("province_name", 100))
                    .col(string_len_null("province_code", 10))
                    .col(string_len_null("city", 100))
                    .col(string_len_null("postal_code", 20))
                    .col(string_len_null("time_zone", 64))
                    .col(double_null("latitude"))
                    .col(double_null("longitude"))
                    .col(integer_null("accuracy_radius_km"))
                    .col(boolean("location_corrected").default(false))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contacts_project")
                            .from("contacts", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The upsert of startChat relies on this constraint: concurrent
        // starts for one visitor find one row instead of racing to insert.
        manager
            .create_index(
                Index::create()
                    .name("uq_contacts_project_visitor")
                    .table("contacts")
                    .col("project_id")
                    .col("visitor_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("chats")
                    .col(pk_uuid("id"))
                    .col(uuid("project_id"))
                    .col(uuid("contact_id"))
                    .col(timestamp_with_time_zone("started_at"))
                    .col(string_len_null("ip", 64))
                    .col(string_len_null("user_agent", 512))
                    .col(json_binary_null("location"))
                    .col(string_len_uniq("visitor_token_hash", 64))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chats_project")
                            .from("chats", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chats_contact")
                            .from("chats", "contact_id")
                            .to("contacts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_chats_contact_started")
                    .table("chats")
                    .col("contact_id")
                    .col("started_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["chats", "contacts"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
