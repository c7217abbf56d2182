//! Changing and resetting an agent's password. Either ends sessions: a
//! change the agent's others, a reset every one.

use std::time::Duration;

use chrono::Utc;
use entity::{agent, password_reset};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::account_mail;
use crate::domain::agents;
use crate::domain::auth::{Password, hash_password, password_matches};
use crate::domain::email::EmailAddress;
use crate::domain::events::SessionRevoked;
use crate::domain::ids::{new_id, random_secret, secret_hash};
use crate::domain::sessions;
use crate::error::{AppError, AppResult};
use crate::mail::Mailer;

const TOKEN_PREFIX: &str = "pr";

/// A wrong current password, told apart so that it counts as a failed
/// attempt towards a lock.
pub const WRONG_CURRENT_PASSWORD: &str = "is not the current password";

/// Sets a new password when `current` is the agent's password, and ends
/// the agent's other sessions: those of `keep_token` (the caller's) stays.
pub async fn change_password(
    db: &DatabaseConnection,
    agent: &agent::Model,
    keep_token: Option<&str>,
    current: &str,
    new: &str,
) -> AppResult<Vec<SessionRevoked>> {
    if !password_matches(agent.password_hash.clone(), current).await? {
        return Err(AppError::bad_input(
            "currentPassword",
            WRONG_CURRENT_PASSWORD,
        ));
    }
    let new_hash = hash_password(Password::parse_as(new, "newPassword")?).await?;
    let txn = db.begin().await?;
    set_password_hash(&txn, agent.id, new_hash).await?;
    let revoked = sessions::revoke_all(&txn, agent.id, keep_token).await?;
    txn.commit().await?;
    Ok(revoked)
}

async fn set_password_hash(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    password_hash: String,
) -> AppResult<()> {
    agent::Entity::update_many()
        .col_expr(agent::Column::PasswordHash, Expr::value(password_hash))
        .filter(agent::Column::Id.eq(agent_id))
        .exec(db)
        .await?;
    // Links mailed before the new password was set work no more.
    password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(Utc::now()))
        .filter(password_reset::Column::AgentId.eq(agent_id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Where reset mails go out from and what their links point at.
pub struct ResetMail<'a> {
    pub mailer: &'a dyn Mailer,
    pub app_url: &'a str,
    pub ttl: Duration,
}

/// Mails a reset link when an agent has this email, and a note saying
/// that no account uses it otherwise: the same work and the same answer
/// either way, so the answer tells nobody whether the account exists.
pub async fn request_reset(
    db: &impl ConnectionTrait,
    mail: &ResetMail<'_>,
    email: &str,
) -> AppResult<()> {
    let email = EmailAddress::parse(email, "email")?;
    let message = match agents::find_by_email(db, &email).await? {
        Some(agent) => {
            let token = random_secret(TOKEN_PREFIX);
            let now = Utc::now();
            password_reset::ActiveModel {
                id: Set(new_id()),
                agent_id: Set(agent.id),
                token_hash: Set(secret_hash(&token)),
                created_at: Set(now),
                expires_at: Set(
                    now + chrono::Duration::from_std(mail.ttl).map_err(AppError::internal)?
                ),
                used_at: Set(None),
            }
            .insert(db)
            .await?;
            let link = account_mail::link(mail.app_url, "reset", &token);
            account_mail::password_reset(&agent.email, &link, mail.ttl.as_secs() / 60)
        }
        None => account_mail::password_reset_without_account(email.as_str()),
    };
    mail.mailer.send(message).await.map_err(|error| {
        AppError::internal(anyhow::Error::new(error).context("mailing a password reset"))
    })
}

/// Sets the password of the agent a reset token was mailed to and ends
/// every session of that agent. The token works once, before it expires.
pub async fn reset_password(
    db: &DatabaseConnection,
    token: &str,
    new: &str,
) -> AppResult<Vec<SessionRevoked>> {
    let refused = || {
        AppError::bad_input(
            "token",
            "is not a valid reset token: it may have expired or been used",
        )
    };
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Err(refused());
    }
    let new_password = Password::parse(new)?;
    let reset = password_reset::Entity::find()
        .filter(password_reset::Column::TokenHash.eq(secret_hash(token)))
        .one(db)
        .await?
        .filter(|reset| reset.used_at.is_none() && reset.expires_at > Utc::now())
        .ok_or_else(refused)?;
    // Hashed only for a live token, and outside the transaction.
    let new_hash = hash_password(new_password).await?;
    let now = Utc::now();
    let txn = db.begin().await?;
    // One conditional update: of two uses at once, one gets through.
    let used = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::Id.eq(reset.id))
        .filter(password_reset::Column::UsedAt.is_null())
        .filter(password_reset::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if used.rows_affected == 0 {
        return Err(refused());
    }
    set_password_hash(&txn, reset.agent_id, new_hash).await?;
    let revoked = sessions::revoke_all(&txn, reset.agent_id, None).await?;
    txn.commit().await?;
    Ok(revoked)
}
