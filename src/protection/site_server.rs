//! Whether a `startChat` comes from the site's own server, vouching for
//! the visitor whose address it passes with the project's secret key.

use std::net::IpAddr;

use entity::project;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::domain::ids::secret_hash;
use crate::error::AppResult;

/// Longest project key looked up: keys are client input.
const MAX_KEY_LEN: usize = 256;

/// The visitor address a site's server vouches for, when `secret_key` is
/// the secret of the project with `project_key`. A wrong key vouches for
/// nobody (and the start is refused later anyway).
pub async fn vouched_visitor(
    db: &impl ConnectionTrait,
    project_key: &str,
    visitor_ip: Option<&str>,
    secret_key: Option<&str>,
) -> AppResult<Option<IpAddr>> {
    let (Some(visitor_ip), Some(secret_key)) = (visitor_ip, secret_key) else {
        return Ok(None);
    };
    let Ok(visitor_ip) = visitor_ip.trim().parse::<IpAddr>() else {
        return Ok(None);
    };
    if project_key.len() > MAX_KEY_LEN {
        return Ok(None);
    }
    let secret: Option<String> = project::Entity::find()
        .select_only()
        .column(project::Column::SecretKey)
        .filter(project::Column::PublicKey.eq(project_key.trim()))
        .into_tuple()
        .one(db)
        .await?;
    // Hashes compare in a time that does not depend on the key.
    let proven = secret.is_some_and(|secret| secret_hash(&secret) == secret_hash(secret_key));
    Ok(proven.then_some(visitor_ip))
}
