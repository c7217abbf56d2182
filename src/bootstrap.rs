//! The first start on an empty database: an owner agent and a first project,
//! so that a newcomer can log in from the playground at once.

use crate::domain::ids::random_secret;
use crate::domain::{agents, projects};
use crate::error::AppResult;
use sea_orm::DatabaseConnection;

pub const OWNER_EMAIL: &str = "owner@contacts.local";

/// The login printed once, on the start that created it.
#[derive(Clone, Debug)]
pub struct OwnerLogin {
    pub email: String,
    pub password: String,
}

pub async fn ensure_owner(db: &DatabaseConnection) -> AppResult<Option<OwnerLogin>> {
    if agents::count(db).await? > 0 {
        return Ok(None);
    }
    let password: String = random_secret("pw").chars().skip(3).take(20).collect();
    let owner = match agents::create_agent(db, OWNER_EMAIL, "Owner", &password).await {
        Ok(owner) => owner,
        // Another instance starting on the same database created it first.
        Err(error) if error.code() == "BAD_USER_INPUT" => return Ok(None),
        Err(error) => return Err(error),
    };
    projects::create_project(db, owner.id, "My first project").await?;
    Ok(Some(OwnerLogin {
        email: OWNER_EMAIL.to_owned(),
        password,
    }))
}
