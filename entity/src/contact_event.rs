//! One recorded change to a contact: who or what, when, old and new value.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_events")]
pub struct Model {
    /// Time-ordered, so the id orders the history.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub contact_id: Uuid,
    /// CREATED, FORM_SYNC, AGENT_EDIT, MERGE, LOCATION_CHANGE, DELETED.
    pub kind: String,
    /// VISITOR, AGENT or SYSTEM.
    pub actor_type: String,
    /// The chat (visitor) or agent that made the change.
    pub actor_id: Option<Uuid>,
    pub field: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub old_value: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub new_value: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
