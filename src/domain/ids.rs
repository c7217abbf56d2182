//! Identifiers: time-ordered UUIDs, and random keys and tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AppError;

/// A new time-ordered id: rows inserted later sort later, which keeps
/// primary-key indexes compact.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Parses an id a client sent. A malformed id is bad input; a well-formed
/// one that matches nothing is left to the caller to report as not found.
pub fn parse_id(raw: &str, field: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim()).map_err(|_| AppError::bad_input(field, "is not a valid id"))
}

/// A random secret with a readable prefix saying what it is for, e.g.
/// `pk_...` for a project's public key. 32 random bytes, URL-safe.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The form in which secrets handed to clients are stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered() {
        let first = new_id();
        let second = new_id();
        assert!(first < second);
    }

    #[test]
    fn secrets_are_random_prefixed_and_hash_stably() {
        let a = random_secret("tok");
        let b = random_secret("tok");
        assert!(a.starts_with("tok_") && a.len() > 40);
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_ne!(secret_hash(&a), secret_hash(&b));
        assert_eq!(secret_hash(&a).len(), 64);
    }

    #[test]
    fn malformed_ids_are_bad_input() {
        assert_eq!(parse_id("nope", "id").unwrap_err().code(), "BAD_USER_INPUT");
        let id = new_id();
        assert_eq!(parse_id(&id.to_string(), "id").unwrap(), id);
    }
}
