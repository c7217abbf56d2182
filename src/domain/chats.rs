//! Starting a chat: the visitor's contact is found or created, located from
//! its IP address, and handed a visitor token.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use entity::{chat, contact};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};
use uuid::Uuid;

use crate::client_ip::IpRetention;
use crate::domain::contacts::{location_changes, location_of, set_location};
use crate::domain::events::{ContactChangeKind, ContactChanges};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::domain::identity;
use crate::domain::ids::{new_id, random_secret, secret_hash};
use crate::domain::project_keys;
use crate::domain::visitors::{self, OwnAnswers, PresentedCredential};
use crate::error::{AppError, AppResult};
use crate::geo::{GeoLocator, Location};

const MAX_KEY_LEN: usize = 128;
const MAX_USER_AGENT_LEN: usize = 512;

/// What the widget (or a site's server) says when a chat starts.
pub struct ChatStart {
    pub project_key: String,
    /// The credential an earlier `startChat` issued to this browser.
    pub visitor_id: Option<String>,
    pub user_agent: Option<String>,
    /// The address the request came from, as the HTTP layer resolved it.
    pub client_ip: Option<IpAddr>,
    /// A site's server may name the visitor's address, proving itself with
    /// the project's secret key.
    pub forwarded_for: Option<ServerForwardedIp>,
    /// The site's signed-in user, as the widget claims it.
    pub identity: Option<identity::IdentityClaim>,
}

pub struct ServerForwardedIp {
    pub visitor_ip: String,
    pub secret_key: String,
}

pub struct StartedChat {
    pub chat: chat::Model,
    /// The browser's credential: the one presented, or a new one. The
    /// widget keeps it for the next chat.
    pub visitor_id: String,
    /// What this visitor itself gave: all the visitor is shown.
    pub own_answers: OwnAnswers,
    /// Shown once; only its hash is stored.
    pub visitor_token: String,
    /// What the start made of the project's contacts.
    pub changes: ContactChanges,
}

/// Where the policy of the deployment comes in: how to locate and what to keep.
pub struct ChatPolicy<'a> {
    pub geo: &'a dyn GeoLocator,
    pub ip_retention: IpRetention,
}

fn keys_match(given: &str, expected: &str) -> bool {
    // Comparing hashes keeps the comparison time independent of where the
    // strings first differ.
    secret_hash(given) == secret_hash(expected)
}

fn clean_user_agent(raw: Option<String>) -> Option<String> {
    raw.map(|agent| {
        agent
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT_LEN)
            .collect::<String>()
    })
    .filter(|agent| !agent.is_empty())
}

pub async fn start_chat(
    db: &DatabaseConnection,
    policy: &ChatPolicy<'_>,
    start: ChatStart,
) -> AppResult<StartedChat> {
    if start.project_key.len() > MAX_KEY_LEN {
        return Err(AppError::NotFound("project"));
    }
    let credential = PresentedCredential::parse(start.visitor_id.as_deref())?;
    let project = project_keys::find_by_public_key(db, &start.project_key)
        .await?
        .ok_or(AppError::NotFound("project"))?;
    let identity = start
        .identity
        .map(|claim| identity::verify(claim, &project.secret_key))
        .transpose()?
        .flatten();

    let ip = match &start.forwarded_for {
        Some(forwarded) => {
            if !keys_match(&forwarded.secret_key, &project.secret_key) {
                return Err(AppError::Forbidden(
                    "passing a visitor IP needs the project's secret key",
                ));
            }
            let ip: IpAddr = forwarded
                .visitor_ip
                .trim()
                .parse()
                .map_err(|_| AppError::bad_input("visitorIp", "is not an IP address"))?;
            Some(ip)
        }
        None => start.client_ip,
    };
    // Located from the full address, before retention truncates or drops it.
    let location = ip.and_then(|ip| policy.geo.locate(ip));
    let kept_ip = ip.and_then(|ip| policy.ip_retention.retain(ip));
    let seen = Sighting {
        project_id: project.id,
        at: Utc::now(),
        ip: kept_ip.clone(),
        location: location.clone(),
    };
    let chat_id = new_id();
    let actor = Actor::Visitor { chat_id };

    let txn = db.begin().await?;
    let known = match &credential {
        Some(credential) => visitors::find_browser(&txn, project.id, credential).await?,
        None => None,
    };
    let mut changes = ContactChanges::default();
    // An id the server did not issue for this project starts a new visitor,
    // never an existing contact.
    let (browser, visitor_id, mut contact) = match (known, credential) {
        (Some(browser), Some(credential)) => {
            let contact = touch(&txn, browser.contact_id, &seen).await?;
            (browser, credential.as_str().to_owned(), contact)
        }
        _ => {
            let contact = fresh_contact(new_id(), &seen).insert(&txn).await?;
            history::record(&txn, project.id, contact.id, actor, EventKind::Created, &[]).await?;
            changes.record(project.id, contact.id, ContactChangeKind::Created);
            let (browser, issued) = visitors::issue_browser(&txn, project.id, contact.id).await?;
            (browser, issued, contact)
        }
    };
    let mut chat_visitor = browser;
    if let Some(identity) = identity {
        let identified = identity::apply(&txn, contact, identity, &seen, actor).await?;
        contact = identified.contact;
        chat_visitor = identified.visitor;
        changes.extend(identified.changes);
    }
    let created = changes.kind_of(contact.id) == Some(ContactChangeKind::Created);
    if !created
        && let Some(location) = &location
        && !contact.location_corrected
        && location_changes(&contact, location)
    {
        let change = FieldChange::new(
            "location",
            location_of(&contact).map(|old| serde_json::json!(old)),
            Some(serde_json::json!(location)),
        );
        let mut active: contact::ActiveModel = contact.into();
        set_location(&mut active, Some(location));
        contact = active.update(&txn).await?;
        history::record(
            &txn,
            project.id,
            contact.id,
            Actor::System,
            EventKind::LocationChange,
            &[change],
        )
        .await?;
    }
    // A returning visitor was seen again: its contact's last sighting moved.
    changes.record(project.id, contact.id, ContactChangeKind::Updated);

    let visitor_token = random_secret("vt");
    let chat = chat::ActiveModel {
        id: Set(chat_id),
        project_id: Set(project.id),
        contact_id: Set(contact.id),
        visitor_id: Set(Some(chat_visitor.id)),
        started_at: Set(seen.at),
        ip: Set(kept_ip),
        user_agent: Set(clean_user_agent(start.user_agent)),
        location: Set(location
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(AppError::internal)?),
        visitor_token_hash: Set(secret_hash(&visitor_token)),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(StartedChat {
        chat,
        visitor_id,
        own_answers: OwnAnswers::of(&chat_visitor),
        visitor_token,
        changes,
    })
}

/// When and from where a visitor was seen.
pub struct Sighting {
    pub project_id: Uuid,
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub location: Option<Location>,
}

/// A new contact for a visitor seen now.
pub fn fresh_contact(id: Uuid, seen: &Sighting) -> contact::ActiveModel {
    let mut fresh = contact::ActiveModel {
        id: Set(id),
        project_id: Set(seen.project_id),
        name: Set(None),
        email: Set(None),
        phone: Set(None),
        company: Set(None),
        custom_attributes: Set(serde_json::json!({})),
        last_ip: Set(seen.ip.clone()),
        location_corrected: Set(false),
        external_id: Set(None),
        field_sources: Set(serde_json::json!({})),
        first_seen_at: Set(seen.at),
        last_seen_at: Set(seen.at),
        created_at: Set(seen.at),
        updated_at: Set(seen.at),
        ..Default::default()
    };
    set_location(&mut fresh, seen.location.as_ref());
    fresh
}

/// Marks a known contact as seen now.
pub async fn touch(
    txn: &impl ConnectionTrait,
    contact_id: Uuid,
    seen: &Sighting,
) -> AppResult<contact::Model> {
    let contact = contact::Entity::find_by_id(contact_id)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("contact {contact_id} vanished")))?;
    let mut active: contact::ActiveModel = contact.into();
    active.last_seen_at = Set(seen.at);
    active.last_ip = Set(seen.ip.clone());
    active.updated_at = Set(seen.at);
    Ok(active.update(txn).await?)
}

/// The chat a visitor token grants access to, if the token is valid.
pub async fn authenticate_visitor(
    db: &DatabaseConnection,
    token: &str,
) -> AppResult<Option<chat::Model>> {
    if !token.starts_with("vt_") || token.len() > MAX_KEY_LEN {
        return Ok(None);
    }
    Ok(chat::Entity::find()
        .filter(chat::Column::VisitorTokenHash.eq(secret_hash(token)))
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_bounded_and_stripped_of_control_characters() {
        assert_eq!(
            clean_user_agent(Some("Mozilla\n/5.0".into())).as_deref(),
            Some("Mozilla/5.0")
        );
        assert_eq!(
            clean_user_agent(Some("x".repeat(2000))).unwrap().len(),
            MAX_USER_AGENT_LEN
        );
        assert_eq!(clean_user_agent(Some("\u{7}".into())), None);
    }

    #[test]
    fn keys_compare_by_value() {
        assert!(keys_match("sk_abc", "sk_abc"));
        assert!(!keys_match("sk_abd", "sk_abc"));
    }
}
