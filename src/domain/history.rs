//! The record of every change to a contact: who or what made it, when, and
//! the old and new value of each field.

use chrono::Utc;
use entity::contact_event;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::ids::new_id;
use crate::error::{AppError, AppResult};

/// Who or what changed a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The visitor, through the form of this chat.
    Visitor {
        chat_id: Uuid,
    },
    Agent {
        agent_id: Uuid,
    },
    /// The service itself: IP lookups, merges by identity.
    System,
}

impl Actor {
    fn parts(self) -> (ActorType, Option<Uuid>) {
        match self {
            Actor::Visitor { chat_id } => (ActorType::Visitor, Some(chat_id)),
            Actor::Agent { agent_id } => (ActorType::Agent, Some(agent_id)),
            Actor::System => (ActorType::System, None),
        }
    }
}

/// The kind of an [`Actor`], as the history stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorType {
    Visitor,
    Agent,
    System,
}

/// Each actor type with its stored name: the one mapping both ways.
const ACTOR_TYPES: [(ActorType, &str); 3] = [
    (ActorType::Visitor, "VISITOR"),
    (ActorType::Agent, "AGENT"),
    (ActorType::System, "SYSTEM"),
];

impl ActorType {
    pub fn as_str(self) -> &'static str {
        stored_name(&ACTOR_TYPES, self)
    }

    /// The actor type of a stored name; `None` for a name this version
    /// never wrote.
    pub fn parse(stored: &str) -> Option<ActorType> {
        parse_stored(&ACTOR_TYPES, stored)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    FormSync,
    AgentEdit,
    Merge,
    LocationChange,
    /// The site's verified identity filled fields.
    Identified,
    Deleted,
}

/// Each event kind with its stored name: the one mapping both ways.
const EVENT_KINDS: [(EventKind, &str); 7] = [
    (EventKind::Created, "CREATED"),
    (EventKind::FormSync, "FORM_SYNC"),
    (EventKind::AgentEdit, "AGENT_EDIT"),
    (EventKind::Merge, "MERGE"),
    (EventKind::LocationChange, "LOCATION_CHANGE"),
    (EventKind::Identified, "IDENTIFIED"),
    (EventKind::Deleted, "DELETED"),
];

impl EventKind {
    pub fn as_str(self) -> &'static str {
        stored_name(&EVENT_KINDS, self)
    }

    /// The event kind of a stored name; `None` for a name this version
    /// never wrote.
    pub fn parse(stored: &str) -> Option<EventKind> {
        parse_stored(&EVENT_KINDS, stored)
    }
}

fn stored_name<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(known, _)| *known == value)
        .map_or("", |(_, name)| name)
}

fn parse_stored<T: Copy>(table: &[(T, &str)], stored: &str) -> Option<T> {
    table
        .iter()
        .find(|(_, name)| *name == stored)
        .map(|(value, _)| *value)
}

/// A stored event read back: its kind and actor type as the domain's
/// types. A name that no version wrote is a corrupted row.
pub fn kinds_of(event: &contact_event::Model) -> AppResult<(EventKind, ActorType)> {
    let corrupted = |what: &str, stored: &str| {
        AppError::internal(anyhow::anyhow!("stored contact event {what} {stored:?}"))
    };
    let kind = EventKind::parse(&event.kind).ok_or_else(|| corrupted("kind", &event.kind))?;
    let actor_type = ActorType::parse(&event.actor_type)
        .ok_or_else(|| corrupted("actor type", &event.actor_type))?;
    Ok((kind, actor_type))
}

/// One field's change; `old` or `new` is `None` when the field was empty.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl FieldChange {
    pub fn new(field: impl Into<String>, old: Option<Value>, new: Option<Value>) -> Self {
        FieldChange {
            field: field.into(),
            old,
            new,
        }
    }
}

/// Records one event per changed field, or a single event without a field
/// when `changes` is empty (a creation, a deletion).
pub async fn record(
    db: &impl ConnectionTrait,
    project_id: Uuid,
    contact_id: Uuid,
    actor: Actor,
    kind: EventKind,
    changes: &[FieldChange],
) -> AppResult<()> {
    let (actor_type, actor_id) = actor.parts();
    let now = Utc::now();
    let row = |change: Option<&FieldChange>| contact_event::ActiveModel {
        id: Set(new_id()),
        project_id: Set(project_id),
        contact_id: Set(contact_id),
        kind: Set(kind.as_str().to_owned()),
        actor_type: Set(actor_type.as_str().to_owned()),
        actor_id: Set(actor_id),
        field: Set(change.map(|c| c.field.clone())),
        old_value: Set(change.and_then(|c| c.old.clone())),
        new_value: Set(change.and_then(|c| c.new.clone())),
        created_at: Set(now),
    };
    let rows: Vec<_> = if changes.is_empty() {
        vec![row(None)]
    } else {
        changes.iter().map(|change| row(Some(change))).collect()
    };
    contact_event::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

/// A page of a contact's history, newest first, after the event `after`.
/// Returns the events and whether more follow.
pub async fn page(
    db: &impl ConnectionTrait,
    contact_id: Uuid,
    first: u64,
    after: Option<Uuid>,
) -> AppResult<(Vec<contact_event::Model>, bool)> {
    let mut query = contact_event::Entity::find()
        .filter(contact_event::Column::ContactId.eq(contact_id))
        .order_by_desc(contact_event::Column::Id)
        .limit(first + 1);
    if let Some(after) = after {
        query = query.filter(contact_event::Column::Id.lt(after));
    }
    let mut events = query.all(db).await?;
    let has_next = events.len() as u64 > first;
    events.truncate(first as usize);
    Ok((events, has_next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_actor_type_reads_back_from_its_stored_name() {
        for (kind, name) in EVENT_KINDS {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind), "{name}");
        }
        for (actor_type, name) in ACTOR_TYPES {
            assert_eq!(
                ActorType::parse(actor_type.as_str()),
                Some(actor_type),
                "{name}"
            );
        }
        assert_eq!(EventKind::parse("created"), None);
        assert_eq!(ActorType::parse(""), None);
    }
}
