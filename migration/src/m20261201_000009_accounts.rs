//! Accounts: invitations to projects, password reset tokens, the last use
//! and client of each access token, and a project's previous public key
//! during the grace period after a rotation.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("invitations")
                    .col(pk_uuid("id"))
                    .col(uuid("project_id"))
                    .col(string_len("email", 320))
                    .col(string_len("role", 16))
                    .col(string_len("state", 16))
                    // SHA-256 of the token mailed to the invitee.
                    .col(string_len_uniq("token_hash", 64))
                    .col(uuid_null("invited_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("closed_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_project")
                            .from("invitations", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_invited_by")
                            .from("invitations", "invited_by")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_project")
                    .table("invitations")
                    .col("project_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_email")
                    .table("invitations")
                    .col("email")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("password_resets")
                    .col(pk_uuid("id"))
                    .col(uuid("agent_id"))
                    .col(string_len_uniq("token_hash", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_resets_agent")
                            .from("password_resets", "agent_id")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_password_resets_agent")
                    .table("password_resets")
                    .col("agent_id")
                    .to_owned(),
            )
            .await?;

        // SQLite adds one column per ALTER TABLE.
        for column in [
            timestamp_with_time_zone_null("last_used_at"),
            string_len_null("user_agent", 512),
            string_len_null("ip", 64),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("access_tokens")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }

        for column in [
            string_len_null("previous_public_key", 64),
            timestamp_with_time_zone_null("previous_public_key_until"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("projects")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("uq_projects_previous_public_key")
                    .table("projects")
                    .col("previous_public_key")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("uq_projects_previous_public_key")
                    .table("projects")
                    .to_owned(),
            )
            .await?;
        for column in ["previous_public_key_until", "previous_public_key"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("projects")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in ["ip", "user_agent", "last_used_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("access_tokens")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table("password_resets").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("invitations").to_owned())
            .await
    }
}
