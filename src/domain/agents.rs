//! Agent accounts.

use chrono::Utc;
use entity::agent;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::db;
use crate::domain::auth::Password;
use crate::domain::email::EmailAddress;
use crate::domain::ids::new_id;
use crate::error::{AppError, AppResult};

const MAX_NAME_LEN: usize = 200;

pub fn parse_name(raw: &str, field: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(AppError::bad_input(
            field,
            format!("must have at most {MAX_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

pub async fn create_agent(
    db: &impl ConnectionTrait,
    email: &str,
    name: &str,
    password: &str,
) -> AppResult<agent::Model> {
    let email = EmailAddress::parse(email, "email")?;
    let name = parse_name(name, "name")?;
    let password = Password::parse(password)?;
    let taken = || AppError::bad_input("email", "an agent with this email exists");
    if find_by_email(db, &email).await?.is_some() {
        return Err(taken());
    }
    let password_hash = tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(AppError::internal)??;
    // Two creations of one email can both pass the check above; the unique
    // index decides, and the second hears what it would have heard later.
    agent::ActiveModel {
        id: Set(new_id()),
        email: Set(email.into_string()),
        name: Set(name),
        password_hash: Set(password_hash),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .map_err(|error| {
        if db::is_unique_violation(&error) {
            taken()
        } else {
            error.into()
        }
    })
}

pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &EmailAddress,
) -> AppResult<Option<agent::Model>> {
    Ok(agent::Entity::find()
        .filter(agent::Column::Email.eq(email.as_str()))
        .one(db)
        .await?)
}

pub async fn count(db: &impl ConnectionTrait) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(agent::Entity::find().count(db).await?)
}

/// The agents of `ids` that exist, in one statement.
pub async fn find_many(
    db: &impl ConnectionTrait,
    ids: &[uuid::Uuid],
) -> AppResult<Vec<agent::Model>> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(agent::Entity::find()
        .filter(agent::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}
