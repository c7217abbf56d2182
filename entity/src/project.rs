//! A project: one website or app whose chats and contacts belong together.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// Embedded in the chat widget; identifies the project, grants nothing alone.
    #[sea_orm(unique)]
    pub public_key: String,
    /// Signs identified visitors and server-to-server calls. Kept in clear
    /// because verifying an HMAC needs the key itself.
    pub secret_key: String,
    pub created_at: DateTimeUtc,
    /// The public key before the last rotation, still accepted until
    /// `previous_public_key_until` so that deployed widgets keep working.
    #[sea_orm(unique)]
    pub previous_public_key: Option<String>,
    pub previous_public_key_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
