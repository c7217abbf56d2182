//! Two contacts of a project that may be one person: a visitor typed an
//! email or phone another contact has. Stored once per pair, smaller id first.

use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DuplicateReason {
    #[sea_orm(string_value = "EMAIL")]
    Email,
    #[sea_orm(string_value = "PHONE")]
    Phone,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_duplicates")]
pub struct Model {
    pub project_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub other_id: Uuid,
    pub reason: DuplicateReason,
    pub created_at: DateTimeUtc,
    /// Set when an agent said the two are different people.
    pub dismissed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
