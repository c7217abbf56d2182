//! Rows that are finished for good: tokens that no longer open anything,
//! invitations that can no longer be accepted, old notifications.

use chrono::{DateTime, Utc};
use entity::{access_token, invitation, notification, password_reset};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::AppResult;

/// Access tokens that expired or were revoked before `cutoff`.
pub async fn delete_finished_access_tokens(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> AppResult<u64> {
    let deleted = access_token::Entity::delete_many()
        .filter(
            Condition::any()
                .add(access_token::Column::ExpiresAt.lt(cutoff))
                .add(access_token::Column::RevokedAt.lt(cutoff)),
        )
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Password resets that expired or were used before `cutoff`.
pub async fn delete_finished_password_resets(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> AppResult<u64> {
    let deleted = password_reset::Entity::delete_many()
        .filter(
            Condition::any()
                .add(password_reset::Column::ExpiresAt.lt(cutoff))
                .add(password_reset::Column::UsedAt.lt(cutoff)),
        )
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Invitations accepted or revoked before `cutoff`, or that expired before
/// it: none of them can be accepted any more. The memberships they made
/// are rows of their own and stay.
pub async fn delete_finished_invitations(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> AppResult<u64> {
    let deleted = invitation::Entity::delete_many()
        .filter(
            Condition::any()
                .add(invitation::Column::ClosedAt.lt(cutoff))
                .add(invitation::Column::ExpiresAt.lt(cutoff)),
        )
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Notifications created before `cutoff`, read or not.
pub async fn delete_notifications_before(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> AppResult<u64> {
    let deleted = notification::Entity::delete_many()
        .filter(notification::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
