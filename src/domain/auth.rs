//! Agent authentication: argon2 passwords and hashed, revocable bearer tokens.

use std::sync::LazyLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use entity::{access_token, agent};
use rand::rngs::OsRng;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::domain::email::EmailAddress;
use crate::domain::events::SessionRevoked;
use crate::domain::ids::{new_id, random_secret, secret_hash};
use crate::domain::sessions::SessionClient;
use crate::error::{AppError, AppResult};

const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 256;
pub(crate) const TOKEN_PREFIX: &str = "cta";

/// A password that satisfies the length rules; its text is never logged.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> AppResult<Password> {
        Password::parse_as(raw, "password")
    }

    /// Parses the input named `field`, which names it in a refusal.
    pub fn parse_as(raw: &str, field: &str) -> AppResult<Password> {
        let length = raw.chars().count();
        if length < MIN_PASSWORD_LEN {
            return Err(AppError::bad_input(
                field,
                format!("must have at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        if length > MAX_PASSWORD_LEN {
            return Err(AppError::bad_input(
                field,
                format!("must have at most {MAX_PASSWORD_LEN} characters"),
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn hash(&self) -> AppResult<String> {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| AppError::internal(anyhow::anyhow!("argon2: {error}")))
    }
}

/// Verified against when the email is unknown, so that a login for a
/// missing agent costs as much time as one for an existing agent.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    Password("not a real password".into())
        .hash()
        .unwrap_or_default()
});

/// Whether `password` is the one `hash` was made from, checked off the
/// async workers. Over-long input is refused before hashing.
pub async fn password_matches(hash: String, password: &str) -> AppResult<bool> {
    if password.len() > MAX_PASSWORD_LEN * 4 {
        return Ok(false);
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(AppError::internal)
}

/// Hashes a parsed password off the async workers.
pub async fn hash_password(password: Password) -> AppResult<String> {
    tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(AppError::internal)?
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// What a successful login hands back.
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub agent: agent::Model,
}

pub async fn login(
    db: &impl ConnectionTrait,
    email: &str,
    password: &str,
    token_ttl: Duration,
    client: &SessionClient,
) -> AppResult<IssuedToken> {
    let refused = || AppError::Unauthenticated("invalid email or password");
    // Over-long input is refused before hashing, which would cost time.
    if password.len() > MAX_PASSWORD_LEN * 4 || email.len() > 512 {
        return Err(refused());
    }
    let found = match EmailAddress::parse(email, "email") {
        Ok(email) => {
            agent::Entity::find()
                .filter(agent::Column::Email.eq(email.as_str()))
                .one(db)
                .await?
        }
        Err(_) => None,
    };
    let password = password.to_owned();
    let hash = found
        .as_ref()
        .map(|agent| agent.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    // Argon2 is deliberately slow: keep it off the async workers.
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(AppError::internal)?;
    match found {
        Some(agent) if matches => issue_token(db, agent, token_ttl, client).await,
        _ => Err(refused()),
    }
}

pub async fn issue_token(
    db: &impl ConnectionTrait,
    agent: agent::Model,
    token_ttl: Duration,
    client: &SessionClient,
) -> AppResult<IssuedToken> {
    let token = random_secret(TOKEN_PREFIX);
    let now = Utc::now();
    let expires_at = now + chrono::Duration::from_std(token_ttl).map_err(AppError::internal)?;
    access_token::ActiveModel {
        id: Set(new_id()),
        agent_id: Set(agent.id),
        token_hash: Set(secret_hash(&token)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        last_used_at: Set(Some(now)),
        user_agent: Set(client.user_agent()),
        ip: Set(client.ip()),
    }
    .insert(db)
    .await?;
    Ok(IssuedToken {
        token,
        expires_at,
        agent,
    })
}

/// The agent a bearer token belongs to, if the token is live.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    token: &str,
) -> AppResult<Option<agent::Model>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    // One statement: every authenticated request pays for this lookup.
    let live_token = sea_orm::sea_query::Query::select()
        .column(access_token::Column::AgentId)
        .from(access_token::Entity)
        .and_where(access_token::Column::TokenHash.eq(secret_hash(token)))
        .and_where(access_token::Column::RevokedAt.is_null())
        .and_where(access_token::Column::ExpiresAt.gt(Utc::now()))
        .to_owned();
    Ok(agent::Entity::find()
        .filter(agent::Column::Id.in_subquery(live_token))
        .one(db)
        .await?)
}

/// A live token, with what a long-lived connection must know to end when
/// the token does.
#[derive(Clone, Debug)]
pub struct LiveSession {
    pub agent: agent::Model,
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// The session a bearer token opens, if the token is live.
pub async fn live_session(
    db: &impl ConnectionTrait,
    token: &str,
) -> AppResult<Option<LiveSession>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let Some(row) = access_token::Entity::find()
        .filter(access_token::Column::TokenHash.eq(secret_hash(token)))
        .filter(access_token::Column::RevokedAt.is_null())
        .filter(access_token::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(agent::Entity::find_by_id(row.agent_id)
        .one(db)
        .await?
        .map(|agent| LiveSession {
            agent,
            token_id: row.id,
            expires_at: row.expires_at,
        }))
}

/// Revokes one token; later requests with it are unauthenticated. Returns
/// the revocation when this call made it, for connections holding the
/// token to hear of.
pub async fn logout(db: &impl ConnectionTrait, token: &str) -> AppResult<Option<SessionRevoked>> {
    let Some(row) = access_token::Entity::find()
        .filter(access_token::Column::TokenHash.eq(secret_hash(token)))
        .filter(access_token::Column::RevokedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let revoked = access_token::Entity::update_many()
        .col_expr(
            access_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(access_token::Column::Id.eq(row.id))
        .filter(access_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok((revoked.rows_affected > 0).then_some(SessionRevoked {
        agent_id: row.agent_id,
        token_id: row.id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert_eq!(
            Password::parse("short").err().unwrap().code(),
            "BAD_USER_INPUT"
        );
        assert!(Password::parse(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
        assert!(Password::parse("long enough").is_ok());
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = Password::parse("correct horse").unwrap().hash().unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }
}
