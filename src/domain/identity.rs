//! Identified visitors: the site vouches for its signed-in user with an
//! HMAC-SHA256 of the user's identifier, keyed by the project's secret, so
//! that the same contact is found from any device.

use entity::contact;
use hmac::{Hmac, Mac};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use sha2::Sha256;

use crate::domain::chats::{Sighting, fresh_contact};
use crate::domain::email::EmailAddress;
use crate::domain::fields::{FieldSource, parse_text};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::domain::ids::{new_id, random_secret};
use crate::domain::merge;
use crate::error::{AppError, AppResult};

const MAX_IDENTIFIER_LEN: usize = 255;

/// What the widget says about the signed-in user.
pub struct IdentityClaim {
    pub identifier: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Hex HMAC-SHA256 of `identifier` keyed by the project's secret key.
    pub signature: Option<String>,
}

/// A claim whose signature checked out.
pub struct VerifiedIdentity {
    pub identifier: String,
    pub email: Option<EmailAddress>,
    pub name: Option<String>,
}

/// The signature the site computes: hex HMAC-SHA256 of the identifier.
pub fn sign(identifier: &str, secret_key: &str) -> AppResult<String> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).map_err(AppError::internal)?;
    mac.update(identifier.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Checks a claim. Without a signature the claim is ignored; with a wrong
/// one it is refused, before anything is written.
pub fn verify(claim: IdentityClaim, secret_key: &str) -> AppResult<Option<VerifiedIdentity>> {
    let Some(signature) = claim.signature.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let identifier = claim.identifier.trim().to_owned();
    if identifier.is_empty()
        || identifier.chars().count() > MAX_IDENTIFIER_LEN
        || identifier.chars().any(char::is_control)
    {
        return Err(AppError::bad_input(
            "identity.identifier",
            format!("must be 1 to {MAX_IDENTIFIER_LEN} printable characters"),
        ));
    }
    let refused = || AppError::bad_input("identity.signature", "does not match the identifier");
    let given = hex::decode(signature.trim()).map_err(|_| refused())?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).map_err(AppError::internal)?;
    mac.update(identifier.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&given).map_err(|_| refused())?;
    let email = claim
        .email
        .filter(|e| !e.trim().is_empty())
        .map(|e| EmailAddress::parse(&e, "identity.email"))
        .transpose()?;
    let name = claim
        .name
        .filter(|n| !n.trim().is_empty())
        .map(|n| parse_text(&n, "identity.name"))
        .transpose()?;
    Ok(Some(VerifiedIdentity {
        identifier,
        email,
        name,
    }))
}

pub struct Identified {
    pub contact: contact::Model,
    pub created: bool,
}

/// Attaches the verified identity to the visitor's contact: the contact the
/// identifier already has wins (merging the browser's anonymous contact into
/// it), a different signed-in user on the same browser gets a contact of its
/// own, and the identity's email and name fill the contact.
pub async fn apply(
    txn: &impl ConnectionTrait,
    visitor_contact: contact::Model,
    identity: VerifiedIdentity,
    seen: &Sighting,
    actor: Actor,
) -> AppResult<Identified> {
    let known = contact::Entity::find()
        .filter(contact::Column::ProjectId.eq(visitor_contact.project_id))
        .filter(contact::Column::ExternalId.eq(identity.identifier.as_str()))
        .one(txn)
        .await?;
    let mut created = false;
    let contact = match known {
        Some(known) if known.id == visitor_contact.id => known,
        Some(known) => {
            match merge::merge(txn, visitor_contact, known.clone(), Actor::System).await? {
                Some(merged) => merged.survivor,
                None => crate::domain::chats::touch(txn, known.id, seen).await?,
            }
        }
        None if visitor_contact.external_id.is_none() => {
            let mut active: contact::ActiveModel = visitor_contact.into();
            active.external_id = Set(Some(identity.identifier.clone()));
            active.update(txn).await?
        }
        None => {
            // Another signed-in user on this browser: a contact of its own,
            // reachable through its identifier rather than the browser's id.
            let mut fresh = fresh_contact(new_id(), &random_secret("v"), seen);
            fresh.external_id = Set(Some(identity.identifier.clone()));
            let contact = fresh.insert(txn).await?;
            history::record(
                txn,
                contact.project_id,
                contact.id,
                actor,
                EventKind::Created,
                &[],
            )
            .await?;
            created = true;
            contact
        }
    };
    fill_from_identity(txn, contact, &identity, actor)
        .await
        .map(|contact| Identified { contact, created })
}

/// The site's word overrides what the form filled, never what an agent set.
async fn fill_from_identity(
    txn: &impl ConnectionTrait,
    contact: contact::Model,
    identity: &VerifiedIdentity,
    actor: Actor,
) -> AppResult<contact::Model> {
    let mut sources = contact.field_sources.clone();
    let mut changes = Vec::new();
    let mut active: contact::ActiveModel = contact.clone().into();
    let offered = [
        (
            "email",
            identity.email.as_ref().map(|e| e.as_str().to_owned()),
            &contact.email,
        ),
        ("name", identity.name.clone(), &contact.name),
    ];
    for (field, new, old) in offered {
        let Some(new) = new else { continue };
        if FieldSource::of(&sources, field) == Some(FieldSource::Agent)
            || old.as_ref() == Some(&new)
        {
            continue;
        }
        if field == "email" {
            active.email = Set(Some(new.clone()));
        } else {
            active.name = Set(Some(new.clone()));
        }
        FieldSource::Identity.set(&mut sources, field);
        changes.push(FieldChange::new(
            field,
            old.clone().map(Value::String),
            Some(Value::String(new)),
        ));
    }
    if changes.is_empty() {
        return Ok(contact);
    }
    active.field_sources = Set(sources);
    let contact = active.update(txn).await?;
    history::record(
        txn,
        contact.project_id,
        contact.id,
        actor,
        EventKind::Identified,
        &changes,
    )
    .await?;
    Ok(contact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(signature: Option<String>) -> IdentityClaim {
        IdentityClaim {
            identifier: "user-42".into(),
            email: Some("Ana@Example.com".into()),
            name: Some("Ana".into()),
            signature,
        }
    }

    #[test]
    fn a_valid_signature_verifies_and_parses_the_claim() {
        let verified = verify(
            claim(Some(sign("user-42", "sk_secret").unwrap())),
            "sk_secret",
        )
        .unwrap()
        .unwrap();
        assert_eq!(verified.identifier, "user-42");
        assert_eq!(verified.email.unwrap().as_str(), "ana@example.com");
    }

    #[test]
    fn a_wrong_signature_is_refused_and_none_is_ignored() {
        for bad in [
            sign("user-43", "sk_secret").unwrap(),
            sign("user-42", "sk_other").unwrap(),
            "zz".into(),
        ] {
            let error = verify(claim(Some(bad)), "sk_secret").err().unwrap();
            assert_eq!(error.code(), "BAD_USER_INPUT");
        }
        assert!(verify(claim(None), "sk_secret").unwrap().is_none());
    }
}
