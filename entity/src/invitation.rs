//! An invitation of an email address to a project, accepted with a token
//! mailed to that address (kept only as a hash) or by the agent it names.

use sea_orm::entity::prelude::*;

use crate::membership::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum InvitationState {
    /// Waiting for the invitee, until it expires.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The invitee joined the project; the token works no more.
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    /// An admin withdrew it, or a newer invitation of the same email replaced it.
    #[sea_orm(string_value = "REVOKED")]
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    /// Lower-cased, as agents' emails are stored.
    pub email: String,
    pub role: Role,
    pub state: InvitationState,
    /// SHA-256 of the token, hex encoded; the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// When it was accepted or revoked.
    pub closed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
