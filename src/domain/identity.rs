//! Identified visitors: the site vouches for its signed-in user with an
//! HMAC-SHA256 of the user's identifier, keyed by the project's secret, so
//! that the same contact is found from any device.

use entity::{contact, visitor};
use hmac::{Hmac, Mac};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use sha2::Sha256;

use crate::domain::chats::{Sighting, fresh_contact};
use crate::domain::email::EmailAddress;
use crate::domain::events::{ContactChangeKind, ContactChanges};
use crate::domain::fields::{ContactField, FieldSource, parse_text};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::domain::ids::new_id;
use crate::domain::visitors::{self, OwnAnswers};
use crate::domain::{locks, merge};
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
    /// The visitor standing for the identity: the chat's visitor from now on.
    pub visitor: visitor::Model,
    /// What this made of the project's contacts.
    pub changes: ContactChanges,
}

/// Attaches the verified identity to the browser's contact: the contact the
/// identifier already has wins (the browser's contact merges into it), a
/// different signed-in user on the same browser gets a contact of its own,
/// and the identity's email and name fill the contact and the identity's
/// own answers.
pub async fn apply(
    txn: &impl ConnectionTrait,
    browser_contact: contact::Model,
    identity: VerifiedIdentity,
    seen: &Sighting,
    actor: Actor,
) -> AppResult<Identified> {
    let project_id = browser_contact.project_id;
    // Two first sightings of one identity (two devices at once) run one
    // after the other instead of racing on the unique external id.
    locks::lock_values(
        txn,
        vec![format!("identity:{project_id}:{}", identity.identifier)],
    )
    .await?;
    let known = contact::Entity::find()
        .filter(contact::Column::ProjectId.eq(project_id))
        .filter(contact::Column::ExternalId.eq(identity.identifier.as_str()))
        .one(txn)
        .await?;
    let mut changes = ContactChanges::default();
    let contact = match known {
        Some(known) if known.id == browser_contact.id => known,
        Some(known) if merge::may_merge(&known, &browser_contact) => {
            let merged = merge::merge(txn, known, browser_contact, Actor::System).await?;
            changes.extend(merged.changes());
            merged.survivor
        }
        Some(known) => crate::domain::chats::touch(txn, known.id, seen).await?,
        None if browser_contact.external_id.is_none() => {
            let mut active: contact::ActiveModel = browser_contact.into();
            active.external_id = Set(Some(identity.identifier.clone()));
            active.update(txn).await?
        }
        None => {
            // Another signed-in user on this browser: a contact of its own,
            // reachable through its identity rather than the browser.
            let mut fresh = fresh_contact(new_id(), seen);
            fresh.external_id = Set(Some(identity.identifier.clone()));
            let contact = fresh.insert(txn).await?;
            history::record(txn, project_id, contact.id, actor, EventKind::Created, &[]).await?;
            changes.record(project_id, contact.id, ContactChangeKind::Created);
            contact
        }
    };
    let visitor =
        visitors::identity_visitor(txn, project_id, &identity.identifier, contact.id).await?;
    let visitor = visitors::attach(txn, visitor, contact.id).await?;
    let visitor = remember_identity_answers(txn, visitor, &identity).await?;
    let (contact, filled) = fill_from_identity(txn, contact, &identity, actor).await?;
    if filled {
        changes.record(project_id, contact.id, ContactChangeKind::Updated);
    }
    Ok(Identified {
        contact,
        visitor,
        changes,
    })
}

/// The site's word about its user is the identity's own answer.
async fn remember_identity_answers(
    txn: &impl ConnectionTrait,
    visitor: visitor::Model,
    identity: &VerifiedIdentity,
) -> AppResult<visitor::Model> {
    let mut answers = OwnAnswers::of(&visitor);
    let before = answers.clone();
    if let Some(email) = &identity.email {
        answers.insert("email".to_owned(), Value::String(email.as_str().to_owned()));
    }
    if let Some(name) = &identity.name {
        answers.insert("name".to_owned(), Value::String(name.clone()));
    }
    if answers == before {
        return Ok(visitor);
    }
    visitors::save_answers(txn, visitor, answers).await
}

/// The site's word overrides what the form filled, never what an agent set.
/// Returns the contact and whether anything changed.
async fn fill_from_identity(
    txn: &impl ConnectionTrait,
    contact: contact::Model,
    identity: &VerifiedIdentity,
    actor: Actor,
) -> AppResult<(contact::Model, bool)> {
    let mut sources = contact.field_sources.clone();
    let mut changes = Vec::new();
    let mut active: contact::ActiveModel = contact.clone().into();
    let offered = [
        (
            ContactField::Email,
            identity.email.as_ref().map(|e| e.as_str().to_owned()),
        ),
        (ContactField::Name, identity.name.clone()),
    ];
    for (field, new) in offered {
        let Some(new) = new else { continue };
        let old = field.value_of(&contact);
        if FieldSource::of(&sources, field.as_str()) == Some(FieldSource::Agent)
            || old == Some(new.as_str())
        {
            continue;
        }
        changes.push(FieldChange::new(
            field.as_str(),
            old.map(|old| Value::String(old.to_owned())),
            Some(Value::String(new.clone())),
        ));
        field.set(&mut active, Some(new));
        FieldSource::Identity.set(&mut sources, field.as_str());
    }
    if changes.is_empty() {
        return Ok((contact, false));
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
    Ok((contact, true))
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
