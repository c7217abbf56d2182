//! Merging two contacts of one project that are one person: on a verified
//! identity, or when an agent merges a pair of possible duplicates.

use chrono::Utc;
use entity::{chat, contact, contact_event};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::access::{ProjectAccess, Role};
use crate::domain::contacts::{find_for_agent, location_of, set_location};
use crate::domain::duplicates;
use crate::domain::events::{ContactChangeKind, ContactChanges};
use crate::domain::fields::{ContactField, FieldSource};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::domain::visitors;
use crate::error::{AppError, AppResult};

/// The outcome of a merge.
pub struct Merged {
    pub survivor: contact::Model,
    pub absorbed_id: Uuid,
}

impl Merged {
    /// What subscribers are told: the survivor merged, the other removed.
    pub fn changes(&self) -> ContactChanges {
        let mut changes = ContactChanges::default();
        let project_id = self.survivor.project_id;
        changes.record(project_id, self.survivor.id, ContactChangeKind::Merged);
        changes.record(project_id, self.absorbed_id, ContactChangeKind::Deleted);
        changes
    }
}

/// Whether two contacts may be merged: never two different verified people.
pub fn may_merge(a: &contact::Model, b: &contact::Model) -> bool {
    a.id != b.id
        && a.project_id == b.project_id
        && match (&a.external_id, &b.external_id) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

/// Merges `source` into `target` inside the caller's transaction: the
/// target's values win where set and the source fills the gaps, custom
/// attributes join with the target winning, chats, visitors, history and
/// possible duplicates move over, the source is removed, and both
/// histories record the merge.
pub async fn merge(
    txn: &impl ConnectionTrait,
    target: contact::Model,
    source: contact::Model,
    actor: Actor,
) -> AppResult<Merged> {
    if target.id == source.id {
        return Err(AppError::bad_input(
            "sourceId",
            "a contact cannot be merged with itself",
        ));
    }
    if !may_merge(&target, &source) {
        return Err(AppError::bad_input(
            "sourceId",
            "the two contacts are different verified people",
        ));
    }

    chat::Entity::update_many()
        .col_expr(chat::Column::ContactId, Expr::value(target.id))
        .filter(chat::Column::ContactId.eq(source.id))
        .exec(txn)
        .await?;
    visitors::move_to(txn, source.id, target.id).await?;
    contact_event::Entity::update_many()
        .col_expr(contact_event::Column::ContactId, Expr::value(target.id))
        .filter(contact_event::Column::ContactId.eq(source.id))
        .exec(txn)
        .await?;
    duplicates::hand_over(txn, source.id, target.id).await?;
    // Removed before the target takes over its identity: the external id
    // is unique within the project.
    contact::Entity::delete_by_id(source.id).exec(txn).await?;

    let mut changes = vec![FieldChange::new(
        "mergedContact",
        None,
        Some(json!(source.id.to_string())),
    )];
    let mut sources = target.field_sources.clone();
    let mut active: contact::ActiveModel = target.clone().into();
    for field in ContactField::ALL {
        let offered = field.value_of(&source);
        if field.value_of(&target).is_some() || offered.is_none() {
            continue;
        }
        field.set(&mut active, offered.map(str::to_owned));
        if let Some(origin) = FieldSource::of(&source.field_sources, field.as_str()) {
            origin.set(&mut sources, field.as_str());
        }
        changes.push(FieldChange::new(
            field.as_str(),
            None,
            offered.map(|value| Value::String(value.to_owned())),
        ));
    }
    let mut attributes = target.custom_attributes.clone();
    if let (Some(kept), Some(offered)) = (
        attributes.as_object_mut(),
        source.custom_attributes.as_object(),
    ) {
        for (key, value) in offered {
            if !kept.contains_key(key) {
                kept.insert(key.clone(), value.clone());
                let source_key = format!("attributes.{key}");
                if let Some(origin) = FieldSource::of(&source.field_sources, &source_key) {
                    origin.set(&mut sources, &source_key);
                }
                changes.push(FieldChange::new(source_key, None, Some(value.clone())));
            }
        }
    }
    if location_of(&target).is_none()
        && let Some(location) = location_of(&source)
    {
        set_location(&mut active, Some(&location));
        active.location_corrected = Set(source.location_corrected);
        changes.push(FieldChange::new("location", None, Some(json!(location))));
    }
    if target.external_id.is_none() && source.external_id.is_some() {
        active.external_id = Set(source.external_id.clone());
    }
    if source.last_seen_at > target.last_seen_at {
        active.last_seen_at = Set(source.last_seen_at);
        active.last_ip = Set(source.last_ip.clone());
    }
    active.first_seen_at = Set(target.first_seen_at.min(source.first_seen_at));
    active.custom_attributes = Set(attributes);
    active.field_sources = Set(sources);
    active.updated_at = Set(Utc::now());
    let survivor = active.update(txn).await?;

    history::record(
        txn,
        survivor.project_id,
        survivor.id,
        actor,
        EventKind::Merge,
        &changes,
    )
    .await?;
    history::record(
        txn,
        source.project_id,
        source.id,
        actor,
        EventKind::Merge,
        &[FieldChange::new(
            "mergedInto",
            None,
            Some(json!(survivor.id.to_string())),
        )],
    )
    .await?;
    Ok(Merged {
        absorbed_id: source.id,
        survivor,
    })
}

/// An agent merges `source_id` into `target_id`, two contacts of one of
/// its projects.
pub async fn merge_contacts(
    db: &DatabaseConnection,
    agent_id: Uuid,
    target_id: Uuid,
    source_id: Uuid,
) -> AppResult<Merged> {
    let (_, access) = find_for_agent(db, agent_id, target_id, Role::Agent).await?;
    if target_id == source_id {
        return Err(AppError::bad_input(
            "sourceId",
            "a contact cannot be merged with itself",
        ));
    }
    let txn = db.begin().await?;
    let (target, source) = lock_pair(&txn, &access, target_id, source_id).await?;
    let merged = merge(&txn, target, source, Actor::Agent { agent_id }).await?;
    txn.commit().await?;
    Ok(merged)
}

/// Reads both contacts of the access's project, locked in id order on
/// PostgreSQL so that two merges of the same contacts wait for each other.
async fn lock_pair(
    txn: &impl ConnectionTrait,
    access: &ProjectAccess,
    target_id: Uuid,
    source_id: Uuid,
) -> AppResult<(contact::Model, contact::Model)> {
    let mut query = contact::Entity::find()
        .filter(contact::Column::ProjectId.eq(access.project_id()))
        .filter(contact::Column::Id.is_in([target_id, source_id]))
        .order_by_asc(contact::Column::Id);
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let mut found = query.all(txn).await?;
    let position = |id| found.iter().position(|c: &contact::Model| c.id == id);
    let target = position(target_id)
        .map(|at| found.remove(at))
        .ok_or(AppError::NotFound("contact"))?;
    let source = found
        .into_iter()
        .find(|c| c.id == source_id)
        .ok_or(AppError::NotFound("contact"))?;
    Ok((target, source))
}
