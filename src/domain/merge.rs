//! Merging two contacts of one project that turned out to be one person.

use chrono::Utc;
use entity::{chat, contact, visitor_alias};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::domain::contacts::{location_of, set_location};
use crate::domain::fields::{ContactField, FieldSource};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::error::AppResult;

/// The outcome of a merge that happened.
pub struct Merged {
    pub survivor: contact::Model,
    pub absorbed_id: uuid::Uuid,
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

/// Merges the newer of `a` and `b` into the older, inside the caller's
/// transaction: chats and visitor ids move over, gaps in the older contact
/// are filled from the newer, the newer is removed, and both sides are
/// recorded. Returns `None` when the two may not be merged.
pub async fn merge(
    txn: &impl ConnectionTrait,
    a: contact::Model,
    b: contact::Model,
    actor: Actor,
) -> AppResult<Option<Merged>> {
    if !may_merge(&a, &b) {
        return Ok(None);
    }
    let (survivor, absorbed) = if (a.created_at, a.id) <= (b.created_at, b.id) {
        (a, b)
    } else {
        (b, a)
    };

    // Chats and visitor ids first: deleting the absorbed contact cascades.
    chat::Entity::update_many()
        .col_expr(chat::Column::ContactId, Expr::value(survivor.id))
        .filter(chat::Column::ContactId.eq(absorbed.id))
        .exec(txn)
        .await?;
    visitor_alias::Entity::update_many()
        .col_expr(visitor_alias::Column::ContactId, Expr::value(survivor.id))
        .filter(visitor_alias::Column::ContactId.eq(absorbed.id))
        .exec(txn)
        .await?;
    visitor_alias::ActiveModel {
        project_id: Set(absorbed.project_id),
        visitor_id: Set(absorbed.visitor_id.clone()),
        contact_id: Set(survivor.id),
        created_at: Set(Utc::now()),
    }
    .insert(txn)
    .await?;
    contact::Entity::delete_by_id(absorbed.id).exec(txn).await?;

    let mut changes = vec![FieldChange::new(
        "mergedContact",
        None,
        Some(json!(absorbed.id.to_string())),
    )];
    let mut sources = survivor.field_sources.clone();
    let mut active: contact::ActiveModel = survivor.clone().into();
    for field in ContactField::ALL {
        let (kept, offered) = match field {
            ContactField::Name => (&survivor.name, &absorbed.name),
            ContactField::Email => (&survivor.email, &absorbed.email),
            ContactField::Phone => (&survivor.phone, &absorbed.phone),
            ContactField::Company => (&survivor.company, &absorbed.company),
        };
        if kept.is_some() || offered.is_none() {
            continue;
        }
        match field {
            ContactField::Name => active.name = Set(offered.clone()),
            ContactField::Email => active.email = Set(offered.clone()),
            ContactField::Phone => active.phone = Set(offered.clone()),
            ContactField::Company => active.company = Set(offered.clone()),
        }
        if let Some(source) = FieldSource::of(&absorbed.field_sources, field.as_str()) {
            source.set(&mut sources, field.as_str());
        }
        changes.push(FieldChange::new(
            field.as_str(),
            None,
            offered.clone().map(Value::String),
        ));
    }
    let mut attributes = survivor.custom_attributes.clone();
    if let (Some(kept), Some(offered)) = (
        attributes.as_object_mut(),
        absorbed.custom_attributes.as_object(),
    ) {
        for (key, value) in offered {
            if !kept.contains_key(key) {
                kept.insert(key.clone(), value.clone());
                changes.push(FieldChange::new(
                    format!("attributes.{key}"),
                    None,
                    Some(value.clone()),
                ));
            }
        }
    }
    if location_of(&survivor).is_none()
        && let Some(location) = location_of(&absorbed)
    {
        set_location(&mut active, Some(&location));
        active.location_corrected = Set(absorbed.location_corrected);
        changes.push(FieldChange::new("location", None, Some(json!(location))));
    }
    if survivor.external_id.is_none() && absorbed.external_id.is_some() {
        active.external_id = Set(absorbed.external_id.clone());
    }
    if absorbed.last_seen_at > survivor.last_seen_at {
        active.last_seen_at = Set(absorbed.last_seen_at);
        active.last_ip = Set(absorbed.last_ip.clone());
    }
    active.first_seen_at = Set(survivor.first_seen_at.min(absorbed.first_seen_at));
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
        absorbed.project_id,
        absorbed.id,
        actor,
        EventKind::Merge,
        &[FieldChange::new(
            "mergedInto",
            None,
            Some(json!(survivor.id.to_string())),
        )],
    )
    .await?;
    Ok(Some(Merged {
        absorbed_id: absorbed.id,
        survivor,
    }))
}
