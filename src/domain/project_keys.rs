//! A project's keys: finding a project by the public key its widget
//! embeds, and rotating the keys, with the old public key still accepted
//! for a grace period so that deployed widgets keep working meanwhile.

use std::time::Duration;

use chrono::Utc;
use entity::project;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Set,
};

use crate::domain::access::{ProjectAccess, Role};
use crate::domain::ids::random_secret;
use crate::error::{AppError, AppResult};

/// The project whose public key is `key`, or whose previous key it is
/// while the grace after a rotation lasts.
pub async fn find_by_public_key(
    db: &impl ConnectionTrait,
    key: &str,
) -> AppResult<Option<project::Model>> {
    let key = key.trim();
    Ok(project::Entity::find()
        .filter(
            Condition::any()
                .add(project::Column::PublicKey.eq(key))
                .add(
                    Condition::all()
                        .add(project::Column::PreviousPublicKey.eq(key))
                        .add(project::Column::PreviousPublicKeyUntil.gt(Utc::now())),
                ),
        )
        .one(db)
        .await?)
}

/// New keys for the project: the secret key is replaced at once (it is
/// the one that grants something), the public key keeps working for
/// `grace`. A second rotation within the grace ends the first one's.
pub async fn rotate(
    db: &impl ConnectionTrait,
    access: &ProjectAccess,
    grace: Duration,
) -> AppResult<project::Model> {
    if access.role() != Role::Admin {
        return Err(AppError::Forbidden("only project admins may do this"));
    }
    let current = project::Entity::find_by_id(access.project_id())
        .one(db)
        .await?
        .ok_or(AppError::NotFound("project"))?;
    let until = Utc::now() + chrono::Duration::from_std(grace).map_err(AppError::internal)?;
    let previous = current.public_key.clone();
    let mut rotated: project::ActiveModel = current.into();
    rotated.previous_public_key = Set(Some(previous));
    rotated.previous_public_key_until = Set(Some(until));
    rotated.public_key = Set(random_secret("pk"));
    rotated.secret_key = Set(random_secret("sk"));
    Ok(rotated.update(db).await?)
}
