//! Visitors as the server knows them: browsers holding a credential the
//! server issued (stored hashed, like tokens), and sites' verified
//! identities. Each keeps what it answered itself, which is all that the
//! visitor API ever shows it.

use chrono::Utc;
use entity::visitor::{self, VisitorKind};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::fields::ContactField;
use crate::domain::ids::{new_id, random_secret, secret_hash};
use crate::error::{AppError, AppResult};

const CREDENTIAL_PREFIX: &str = "v";
/// Longer than any credential the server issues; longer input is refused
/// rather than hashed.
pub const MAX_CREDENTIAL_LEN: usize = 128;

/// A visitor credential the widget presented, not yet known to be valid.
pub struct PresentedCredential(String);

impl PresentedCredential {
    /// `None` for an absent or empty id. Any other text is looked up as it
    /// is: an id the server never issued simply matches no visitor.
    pub fn parse(raw: Option<&str>) -> AppResult<Option<PresentedCredential>> {
        let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
            return Ok(None);
        };
        if raw.len() > MAX_CREDENTIAL_LEN {
            return Err(AppError::bad_input(
                "visitorId",
                format!("must be at most {MAX_CREDENTIAL_LEN} characters"),
            ));
        }
        Ok(Some(PresentedCredential(raw.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A browser credential, hashed within its project: the same text never
/// names a visitor of another project.
pub fn browser_key(project_id: Uuid, credential: &str) -> String {
    secret_hash(&format!("browser:{project_id}:{credential}"))
}

fn identity_key(project_id: Uuid, identifier: &str) -> String {
    secret_hash(&format!("identity:{project_id}:{identifier}"))
}

/// The browser visitor holding `credential` in this project, if the server
/// issued it.
pub async fn find_browser(
    db: &impl ConnectionTrait,
    project_id: Uuid,
    credential: &PresentedCredential,
) -> AppResult<Option<visitor::Model>> {
    Ok(visitor::Entity::find()
        .filter(visitor::Column::KeyHash.eq(browser_key(project_id, credential.as_str())))
        .filter(visitor::Column::ProjectId.eq(project_id))
        .filter(visitor::Column::Kind.eq(VisitorKind::Browser))
        .one(db)
        .await?)
}

/// A new browser visitor of `contact_id`, and the credential to hand it
/// (shown once; only its hash is stored).
pub async fn issue_browser(
    db: &impl ConnectionTrait,
    project_id: Uuid,
    contact_id: Uuid,
) -> AppResult<(visitor::Model, String)> {
    let credential = random_secret(CREDENTIAL_PREFIX);
    let visitor = visitor::ActiveModel {
        id: Set(new_id()),
        project_id: Set(project_id),
        contact_id: Set(contact_id),
        kind: Set(VisitorKind::Browser),
        key_hash: Set(browser_key(project_id, &credential)),
        answers: Set(Value::Object(Map::new())),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok((visitor, credential))
}

/// The visitor standing for a verified identity, created for `contact_id`
/// the first time the identity is seen. Two first sightings at once find
/// one row: the insert yields to the one that committed first.
pub async fn identity_visitor(
    db: &impl ConnectionTrait,
    project_id: Uuid,
    identifier: &str,
    contact_id: Uuid,
) -> AppResult<visitor::Model> {
    let key_hash = identity_key(project_id, identifier);
    visitor::Entity::insert(visitor::ActiveModel {
        id: Set(new_id()),
        project_id: Set(project_id),
        contact_id: Set(contact_id),
        kind: Set(VisitorKind::Identity),
        key_hash: Set(key_hash.clone()),
        answers: Set(Value::Object(Map::new())),
        created_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([visitor::Column::KeyHash])
    .exec_without_returning(db)
    .await?;
    visitor::Entity::find()
        .filter(visitor::Column::KeyHash.eq(key_hash))
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("identity visitor vanished")))
}

/// Points every visitor of `from` at `to`, after a merge.
pub async fn move_to(db: &impl ConnectionTrait, from: Uuid, to: Uuid) -> AppResult<()> {
    visitor::Entity::update_many()
        .col_expr(visitor::Column::ContactId, Expr::value(to))
        .filter(visitor::Column::ContactId.eq(from))
        .exec(db)
        .await?;
    Ok(())
}

/// Points one visitor at a contact.
pub async fn attach(
    db: &impl ConnectionTrait,
    visitor: visitor::Model,
    contact_id: Uuid,
) -> AppResult<visitor::Model> {
    if visitor.contact_id == contact_id {
        return Ok(visitor);
    }
    let mut active: visitor::ActiveModel = visitor.into();
    active.contact_id = Set(contact_id);
    Ok(active.update(db).await?)
}

/// What one visitor gave, keyed like `field_sources`: `email`,
/// `attributes.plan`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnAnswers(Map<String, Value>);

impl OwnAnswers {
    pub fn of(visitor: &visitor::Model) -> OwnAnswers {
        OwnAnswers(visitor.answers.as_object().cloned().unwrap_or_default())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|value| !value.is_null())
    }

    pub fn field(&self, field: ContactField) -> Option<String> {
        self.get(field.as_str())
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    pub fn insert(&mut self, key: String, value: Value) {
        self.0.insert(key, value);
    }
}

/// Stores the visitor's answers, replacing what it had.
pub async fn save_answers(
    db: &impl ConnectionTrait,
    visitor: visitor::Model,
    answers: OwnAnswers,
) -> AppResult<visitor::Model> {
    let mut active: visitor::ActiveModel = visitor.into();
    active.answers = Set(Value::Object(answers.0));
    Ok(active.update(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_bounded_and_empty_means_none() {
        assert!(PresentedCredential::parse(None).unwrap().is_none());
        assert!(PresentedCredential::parse(Some("  ")).unwrap().is_none());
        assert_eq!(
            PresentedCredential::parse(Some(" browser-123 "))
                .unwrap()
                .unwrap()
                .as_str(),
            "browser-123"
        );
        let long = "x".repeat(MAX_CREDENTIAL_LEN + 1);
        assert_eq!(
            PresentedCredential::parse(Some(&long))
                .err()
                .unwrap()
                .code(),
            "BAD_USER_INPUT"
        );
    }

    #[test]
    fn keys_differ_by_project_and_kind() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_ne!(browser_key(a, "v_x"), browser_key(b, "v_x"));
        assert_ne!(browser_key(a, "user-1"), identity_key(a, "user-1"));
        assert_eq!(browser_key(a, "v_x").len(), 64);
    }
}
