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
use crate::error::AppResult;

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
    fn parts(self) -> (&'static str, Option<Uuid>) {
        match self {
            Actor::Visitor { chat_id } => ("VISITOR", Some(chat_id)),
            Actor::Agent { agent_id } => ("AGENT", Some(agent_id)),
            Actor::System => ("SYSTEM", None),
        }
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

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "CREATED",
            EventKind::FormSync => "FORM_SYNC",
            EventKind::AgentEdit => "AGENT_EDIT",
            EventKind::Merge => "MERGE",
            EventKind::LocationChange => "LOCATION_CHANGE",
            EventKind::Identified => "IDENTIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
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
        actor_type: Set(actor_type.to_owned()),
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
