//! A visitor as the server knows it: a browser holding a credential the
//! server issued, or a site's verified identity; each keeps its own answers.

use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum VisitorKind {
    /// A browser, known by the credential `startChat` issued to it.
    #[sea_orm(string_value = "BROWSER")]
    Browser,
    /// A site's signed-in user, known by its HMAC-verified identifier.
    #[sea_orm(string_value = "IDENTITY")]
    Identity,
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "visitors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub contact_id: Uuid,
    pub kind: VisitorKind,
    /// SHA-256 of the credential, or of the identity within the project.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// What this visitor itself gave, by field (`email`) or attribute
    /// (`attributes.plan`): the only values the visitor API shows it.
    #[sea_orm(column_type = "JsonBinary")]
    pub answers: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
