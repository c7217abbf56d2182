//! Contact exports as durable background jobs, and the in-app notifications
//! that deliver their links.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("export_jobs")
                    .col(pk_uuid("id"))
                    .col(uuid("project_id"))
                    .col(uuid("requested_by"))
                    .col(timestamp_with_time_zone("range_from"))
                    .col(timestamp_with_time_zone("range_to"))
                    .col(string_len("status", 16))
                    .col(integer("attempts").default(0))
                    .col(integer("max_attempts"))
                    .col(timestamp_with_time_zone("run_after"))
                    .col(string_len_null("lease_owner", 64))
                    .col(timestamp_with_time_zone_null("lease_expires_at"))
                    .col(big_integer("rows_written").default(0))
                    .col(big_integer_null("rows_total"))
                    .col(string_len_null("object_key", 255))
                    .col(big_integer_null("file_bytes"))
                    .col(string_len_null("error", 1000))
                    .col(boolean("cancel_requested").default(false))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .col(timestamp_with_time_zone_null("mail_sent_at"))
                    .col(integer("mail_attempts").default(0))
                    .col(string_len_null("mail_error", 1000))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_export_jobs_project")
                            .from("export_jobs", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_export_jobs_agent")
                            .from("export_jobs", "requested_by")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Workers look for runnable jobs by status and due time.
        manager
            .create_index(
                Index::create()
                    .name("idx_export_jobs_runnable")
                    .table("export_jobs")
                    .col("status")
                    .col("run_after")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_export_jobs_project")
                    .table("export_jobs")
                    .col("project_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("notifications")
                    .col(pk_uuid("id"))
                    .col(uuid("agent_id"))
                    .col(uuid("project_id"))
                    .col(string_len("kind", 32))
                    .col(string_len("title", 200))
                    .col(string_len("body", 2000))
                    .col(uuid_null("export_job_id"))
                    .col(timestamp_with_time_zone_null("read_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_agent")
                            .from("notifications", "agent_id")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_project")
                            .from("notifications", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_agent")
                    .table("notifications")
                    .col("agent_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["notifications", "export_jobs"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
