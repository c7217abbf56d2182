//! A contact: a visitor of a project, with what is known about them.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: Option<String>,
    /// Lower-cased.
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub company: Option<String>,
    /// Answers to custom form questions, keyed by question key, typed JSON.
    #[sea_orm(column_type = "JsonBinary")]
    pub custom_attributes: Json,
    /// As kept by the IP retention setting: full, truncated, or none.
    pub last_ip: Option<String>,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub state_name: Option<String>,
    pub state_code: Option<String>,
    pub province_name: Option<String>,
    pub province_code: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub time_zone: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accuracy_radius_km: Option<i32>,
    /// Set once an agent corrected the location; lookups then leave it alone.
    pub location_corrected: bool,
    /// The site's own id for a signed-in visitor, verified by HMAC.
    pub external_id: Option<String>,
    /// Where each contact field's value came from, e.g. `{"email": "FORM"}`;
    /// the form never overwrites a value an agent entered.
    #[sea_orm(column_type = "JsonBinary")]
    pub field_sources: Json,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
