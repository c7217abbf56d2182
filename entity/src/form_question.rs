//! A question of a project's in-chat contact form.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "form_questions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    /// Stable name of the question, unique within the project.
    pub key: String,
    pub label: String,
    /// TEXT, EMAIL, PHONE, NUMBER, SELECT or CHECKBOX.
    pub kind: String,
    pub required: bool,
    /// FIELD (a contact field) or ATTRIBUTE (a custom attribute).
    pub target_kind: String,
    /// The contact field (name, email, phone, company) or attribute key.
    pub target_name: String,
    /// The choices of a SELECT question, as a JSON array of strings.
    #[sea_orm(column_type = "JsonBinary")]
    pub options: Json,
    pub position: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
