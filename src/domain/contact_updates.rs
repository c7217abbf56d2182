//! What a member subscribed to a project's contact changes is sent.

use entity::contact;
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::domain::access::{self, Role};
use crate::domain::events::ContactChanged;
use crate::error::AppResult;

/// The contact as it is now (`None` once deleted or merged away), after
/// checking that the subscriber is still a member of the project: a removed
/// member stops receiving changes.
pub async fn current_state(
    db: &impl ConnectionTrait,
    subscriber: Uuid,
    change: &ContactChanged,
) -> AppResult<Option<contact::Model>> {
    access::require_role(db, subscriber, change.project_id, Role::Agent).await?;
    Ok(contact::Entity::find_by_id(change.contact_id)
        .one(db)
        .await?
        .filter(|contact| contact.project_id == change.project_id))
}
