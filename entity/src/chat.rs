//! A chat a visitor started; it belongs to the visitor's contact.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub contact_id: Uuid,
    /// The visitor that started the chat: its browser, or its verified
    /// identity when the site vouched for one.
    pub visitor_id: Option<Uuid>,
    pub started_at: DateTimeUtc,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Where the chat came from, as looked up when it started (JSON of a
    /// location, or null).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub location: Option<Json>,
    /// SHA-256 of the visitor token handed out for this chat.
    #[sea_orm(unique)]
    pub visitor_token_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
