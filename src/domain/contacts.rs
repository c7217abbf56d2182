//! Contacts as agents see them: lookup behind the project check, their
//! chats and history in pages, and the edits and deletion agents make.

use std::collections::HashMap;

use chrono::Utc;
use entity::{chat, contact, contact_event, visitor};
use sea_orm::sea_query::{Asterisk, Expr, Query, WindowStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    Order, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::access::{self, ProjectAccess, Role};
use crate::domain::duplicates;
use crate::domain::events::{ContactChangeKind, ContactChanged, ContactChanges};
use crate::domain::fields::{ContactField, FieldSource};
use crate::domain::form_sync::{self, AttributeEdit};
use crate::domain::forms::{self, Target};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::error::{AppError, AppResult};
use crate::geo::Location;

/// A contact of a project the agent belongs to. A contact of another
/// project answers exactly as a missing one.
pub async fn find_for_agent(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    contact_id: Uuid,
    needed: Role,
) -> AppResult<(contact::Model, ProjectAccess)> {
    let contact = contact::Entity::find_by_id(contact_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("contact"))?;
    let access = access::require_role(db, agent_id, contact.project_id, needed)
        .await
        .map_err(|error| match error {
            AppError::NotFound(_) => AppError::NotFound("contact"),
            other => other,
        })?;
    Ok((contact, access))
}

/// Largest page of a contact's chats or history.
pub const MAX_NESTED_PAGE: u64 = 100;
const MAX_CHATS_PER_PAGE: u64 = MAX_NESTED_PAGE;

/// A contact's latest chats, newest first.
pub async fn recent_chats(
    db: &impl ConnectionTrait,
    contact_id: Uuid,
    limit: u64,
) -> AppResult<Vec<chat::Model>> {
    Ok(chat::Entity::find()
        .filter(chat::Column::ContactId.eq(contact_id))
        .order_by_desc(chat::Column::StartedAt)
        .limit(limit.min(MAX_CHATS_PER_PAGE))
        .all(db)
        .await?)
}

/// Where a page of a contact's chats resumes: after this chat, in the
/// chats' order (newest first). Opaque to clients; it carries the start
/// time so that the next page needs no statement to find the chat again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatCursor {
    started_at: chrono::DateTime<Utc>,
    id: Uuid,
}

/// Chat cursors are small; anything longer is not one of ours.
const MAX_CHAT_CURSOR_LEN: usize = 100;

impl ChatCursor {
    pub fn of(chat: &chat::Model) -> ChatCursor {
        ChatCursor {
            started_at: chat.started_at,
            id: chat.id,
        }
    }

    pub fn encode(&self) -> String {
        use base64::Engine;
        // Nanoseconds: SQLite keeps them, and the cursor must compare equal
        // to the stored value to resume exactly after it.
        let raw = serde_json::json!(["chat", self.started_at.timestamp_nanos_opt(), self.id]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
    }

    /// Reads a cursor made by `encode`; `input` names the argument.
    pub fn decode(raw: &str, input: &str) -> AppResult<ChatCursor> {
        use base64::Engine;
        let invalid = || AppError::bad_input(input, "is not a cursor of this contact's chats");
        if raw.len() > MAX_CHAT_CURSOR_LEN {
            return Err(invalid());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| invalid())?;
        let (tag, nanos, id): (String, i64, Uuid) =
            serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if tag != "chat" {
            return Err(invalid());
        }
        Ok(ChatCursor {
            started_at: chrono::DateTime::from_timestamp_nanos(nanos),
            id,
        })
    }
}

/// A page of a contact's chats, newest first, after the cursor `after`.
/// Returns the chats and whether more follow.
pub async fn chats_page(
    db: &impl ConnectionTrait,
    contact_id: Uuid,
    first: u64,
    after: ChatCursor,
) -> AppResult<(Vec<chat::Model>, bool)> {
    // Scoped: its `min` and `max` would shadow those of integers.
    use sea_orm::sea_query::ExprTrait;
    let first = Ord::min(first, MAX_CHATS_PER_PAGE);
    let mut chats = chat::Entity::find()
        .filter(chat::Column::ContactId.eq(contact_id))
        .filter(
            Expr::tuple([
                Expr::col((chat::Entity, chat::Column::StartedAt)),
                Expr::col((chat::Entity, chat::Column::Id)),
            ])
            .lt(Expr::tuple([
                Expr::val(after.started_at),
                Expr::val(after.id),
            ])),
        )
        .order_by_desc(chat::Column::StartedAt)
        .order_by_desc(chat::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = chats.len() as u64 > first;
    chats.truncate(first as usize);
    Ok((chats, has_next))
}

/// The first `per_contact` rows of each contact, in one statement however
/// many contacts are asked for (a window function numbers each contact's
/// rows; SQLite has them since 3.25). The parent column may be another
/// one: a project's invitations are read the same way.
pub(crate) async fn first_rows_per_contact<E>(
    db: &impl ConnectionTrait,
    contact_column: E::Column,
    order: &[(E::Column, Order)],
    contact_ids: &[Uuid],
    per_contact: u64,
) -> AppResult<Vec<E::Model>>
where
    E: EntityTrait,
{
    use sea_orm::sea_query::ExprTrait;
    if contact_ids.is_empty() || per_contact == 0 {
        return Ok(Vec::new());
    }
    let mut window = WindowStatement::partition_by(contact_column);
    for (column, direction) in order {
        window.order_by(*column, direction.clone());
    }
    let ranked = Query::select()
        .column(Asterisk)
        .expr_window_as(Expr::cust("ROW_NUMBER()"), window, "row_number")
        .from(E::default())
        .and_where(Expr::col(contact_column).is_in(contact_ids.iter().copied()))
        .to_owned();
    let mut outer = Query::select();
    outer
        .column(Asterisk)
        .from_subquery(ranked, "ranked")
        .and_where(Expr::col("row_number").lte(per_contact as i64))
        .order_by(contact_column, Order::Asc);
    for (column, direction) in order {
        outer.order_by(*column, direction.clone());
    }
    let statement = db.get_database_backend().build(&outer);
    Ok(E::find().from_raw_sql(statement).all(db).await?)
}

/// The latest `first` chats of each contact, newest first, and whether
/// each has more.
pub async fn first_chats_of_many(
    db: &impl ConnectionTrait,
    contact_ids: &[Uuid],
    first: u64,
) -> AppResult<HashMap<Uuid, (Vec<chat::Model>, bool)>> {
    let first = first.min(MAX_CHATS_PER_PAGE);
    let chats = first_rows_per_contact::<chat::Entity>(
        db,
        chat::Column::ContactId,
        &[
            (chat::Column::StartedAt, Order::Desc),
            (chat::Column::Id, Order::Desc),
        ],
        contact_ids,
        first + 1,
    )
    .await?;
    Ok(group_pages(
        chats,
        |chat| chat.contact_id,
        contact_ids,
        first,
    ))
}

/// The first page (newest first) of each contact's history, and whether
/// each has more.
pub async fn first_history_of_many(
    db: &impl ConnectionTrait,
    contact_ids: &[Uuid],
    first: u64,
) -> AppResult<HashMap<Uuid, (Vec<contact_event::Model>, bool)>> {
    let first = first.min(MAX_NESTED_PAGE);
    let events = first_rows_per_contact::<contact_event::Entity>(
        db,
        contact_event::Column::ContactId,
        // Ids are time-ordered: they order the history alone.
        &[(contact_event::Column::Id, Order::Desc)],
        contact_ids,
        first + 1,
    )
    .await?;
    Ok(group_pages(
        events,
        |event| event.contact_id,
        contact_ids,
        first,
    ))
}

/// Groups rows by contact into pages of `first`, with whether more follow;
/// every asked contact gets an entry, empty when it has no rows.
fn group_pages<T>(
    rows: Vec<T>,
    contact_of: impl Fn(&T) -> Uuid,
    contact_ids: &[Uuid],
    first: u64,
) -> HashMap<Uuid, (Vec<T>, bool)> {
    let mut pages: HashMap<Uuid, (Vec<T>, bool)> = contact_ids
        .iter()
        .map(|id| (*id, (Vec::new(), false)))
        .collect();
    for row in rows {
        let page = pages.entry(contact_of(&row)).or_default();
        if page.0.len() as u64 >= first {
            page.1 = true;
        } else {
            page.0.push(row);
        }
    }
    pages
}

/// What an agent changes. `None` leaves a field as it is; `Some(None)`
/// clears it.
#[derive(Clone, Debug, Default)]
pub struct ContactEdit {
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub location: Option<Location>,
    /// Custom attribute values, validated like the form's answers.
    pub custom_attributes: Vec<AttributeEdit>,
}

impl ContactEdit {
    fn field(&self, field: ContactField) -> Option<Option<&str>> {
        let value = match field {
            ContactField::Name => &self.name,
            ContactField::Email => &self.email,
            ContactField::Phone => &self.phone,
            ContactField::Company => &self.company,
        };
        value.as_ref().map(|value| value.as_deref())
    }
}

/// The result of an edit: the contact as stored, and what changed (an
/// edit that repeats the stored values records nothing).
pub struct EditedContact {
    pub contact: contact::Model,
    pub changes: ContactChanges,
}

/// An agent's edit of a contact's fields and location, validated as the
/// form validates answers, recorded in the history with the agent as actor,
/// all or nothing. Edited fields are marked as the agent's, so the form
/// never overwrites them.
pub async fn update_contact(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    contact_id: Uuid,
    edit: ContactEdit,
) -> AppResult<EditedContact> {
    let location = edit.location.clone().map(parse_location).transpose()?;
    let txn = db.begin().await?;
    let mut lookup = contact::Entity::find_by_id(contact_id)
        .filter(contact::Column::ProjectId.eq(access.project_id()));
    if txn.get_database_backend() == DbBackend::Postgres {
        // Two agents editing at once: the second waits and sees the first's
        // field sources instead of overwriting them. SQLite has one writer.
        lookup = lookup.lock_exclusive();
    }
    let contact = lookup
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("contact"))?;

    // A national phone number is read in the country the contact is in
    // after this edit.
    let country = location
        .as_ref()
        .map_or(contact.country_code.as_deref(), |location| {
            location.country_code.as_deref()
        })
        .map(str::to_owned);
    let mut changes = Vec::new();
    let mut values = Vec::new();
    for field in ContactField::ALL {
        let Some(raw) = edit.field(field) else {
            continue;
        };
        let value = raw
            .map(|raw| field.parse_value(raw, field.as_str(), country.as_deref()))
            .transpose()?;
        let old = field.value_of(&contact);
        if value.as_deref() != old {
            changes.push(FieldChange::new(
                field.as_str(),
                old.map(|old| Value::from(old.to_owned())),
                value.clone().map(Value::from),
            ));
            values.push((field, value));
        }
    }
    // Attributes are validated by the questions that fill them, read only
    // when the edit has any.
    let attribute_values = if edit.custom_attributes.is_empty() {
        Vec::new()
    } else {
        let questions = forms::questions(&txn, contact.project_id).await?;
        form_sync::parse_attribute_edits(&questions, &edit.custom_attributes, country.as_deref())?
    };
    let mut attributes = contact.custom_attributes.clone();
    let mut attribute_sources = Vec::new();
    for (key, value) in attribute_values {
        let target = Target::Attribute(key.clone());
        let old = target.current_value(&contact);
        if value == old {
            continue;
        }
        changes.push(FieldChange::new(target.source_key(), old, value.clone()));
        if let Some(map) = attributes.as_object_mut() {
            match &value {
                Some(value) => map.insert(key, value.clone()),
                None => map.remove(&key),
            };
        }
        attribute_sources.push((target.source_key(), value.is_some()));
    }
    let location_change = location
        .as_ref()
        .filter(|location| location_changes(&contact, location))
        .map(|location| {
            FieldChange::new(
                "location",
                location_of(&contact).map(|old| serde_json::json!(old)),
                Some(serde_json::json!(location)),
            )
        });
    let corrects_location = location.is_some() && !contact.location_corrected;
    if changes.is_empty() && location_change.is_none() && !corrects_location {
        txn.commit().await?;
        return Ok(EditedContact {
            contact,
            changes: ContactChanges::default(),
        });
    }

    let mut sources = contact.field_sources.clone();
    let mut active: contact::ActiveModel = contact.into();
    let identifiers: Vec<(ContactField, String)> = values
        .iter()
        .filter(|(field, _)| matches!(field, ContactField::Email | ContactField::Phone))
        .filter_map(|(field, value)| Some((*field, value.clone()?)))
        .collect();
    for (field, value) in values {
        match value {
            Some(_) => FieldSource::Agent.set(&mut sources, field.as_str()),
            // A value the agent removed is a gap again, which the form may
            // ask the visitor to fill.
            None => {
                if let Some(map) = sources.as_object_mut() {
                    map.remove(field.as_str());
                }
            }
        }
        field.set(&mut active, value);
    }
    for (source_key, set) in attribute_sources {
        if set {
            FieldSource::Agent.set(&mut sources, &source_key);
        } else if let Some(map) = sources.as_object_mut() {
            // Cleared, the attribute is a gap the form may fill again.
            map.remove(&source_key);
        }
    }
    active.custom_attributes = Set(attributes);
    active.field_sources = Set(sources);
    if let Some(location) = &location {
        set_location(&mut active, Some(location));
        active.location_corrected = Set(true);
    }
    active.updated_at = Set(Utc::now());
    let contact = active.update(&txn).await?;
    let actor = Actor::Agent {
        agent_id: access.agent_id(),
    };
    if !changes.is_empty() {
        history::record(
            &txn,
            contact.project_id,
            contact.id,
            actor,
            EventKind::AgentEdit,
            &changes,
        )
        .await?;
    }
    if let Some(change) = location_change {
        history::record(
            &txn,
            contact.project_id,
            contact.id,
            actor,
            EventKind::LocationChange,
            &[change],
        )
        .await?;
    }
    let mut changes = ContactChanges::default();
    changes.record(contact.project_id, contact.id, ContactChangeKind::Updated);
    // Another contact with the same email or phone is now a possible
    // duplicate, shown on both.
    for (field, value) in identifiers {
        for other in duplicates::pair_with_matches(&txn, &contact, field, &value).await? {
            changes.record(contact.project_id, other, ContactChangeKind::Updated);
        }
    }
    txn.commit().await?;
    Ok(EditedContact { contact, changes })
}

/// Deletes a contact and erases the person from the service: its chats
/// (with their IP and user agent), its visitors and their answers, its
/// possible duplicates, and every value its history held. What stays is
/// the fact of the deletion: who and when.
pub async fn delete_contact(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    contact_id: Uuid,
) -> AppResult<ContactChanged> {
    let txn = db.begin().await?;
    let contact = contact::Entity::find_by_id(contact_id)
        .filter(contact::Column::ProjectId.eq(access.project_id()))
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("contact"))?;
    // Explicit rather than left to ON DELETE CASCADE: SQLite enforces
    // foreign keys only on connections that enabled them.
    chat::Entity::delete_many()
        .filter(chat::Column::ContactId.eq(contact.id))
        .exec(&txn)
        .await?;
    visitor::Entity::delete_many()
        .filter(visitor::Column::ContactId.eq(contact.id))
        .exec(&txn)
        .await?;
    duplicates::forget(&txn, contact.id).await?;
    contact_event::Entity::delete_many()
        .filter(contact_event::Column::ContactId.eq(contact.id))
        .exec(&txn)
        .await?;
    contact::Entity::delete_by_id(contact.id).exec(&txn).await?;
    history::record(
        &txn,
        contact.project_id,
        contact.id,
        Actor::Agent {
            agent_id: access.agent_id(),
        },
        EventKind::Deleted,
        &[],
    )
    .await?;
    txn.commit().await?;
    Ok(ContactChanged {
        project_id: contact.project_id,
        contact_id: contact.id,
        kind: ContactChangeKind::Deleted,
    })
}

/// The contact's location, or `None` when nothing is known.
pub fn location_of(contact: &contact::Model) -> Option<Location> {
    let location = Location {
        country_code: contact.country_code.clone(),
        country_name: contact.country_name.clone(),
        state_name: contact.state_name.clone(),
        state_code: contact.state_code.clone(),
        province_name: contact.province_name.clone(),
        province_code: contact.province_code.clone(),
        city: contact.city.clone(),
        postal_code: contact.postal_code.clone(),
        time_zone: contact.time_zone.clone(),
        latitude: contact.latitude,
        longitude: contact.longitude,
        accuracy_radius_km: contact
            .accuracy_radius_km
            .and_then(|radius| u16::try_from(radius).ok()),
    };
    (location != Location::default()).then_some(location)
}

pub fn set_location(active: &mut contact::ActiveModel, location: Option<&Location>) {
    let empty = Location::default();
    let location = location.unwrap_or(&empty);
    active.country_code = Set(location.country_code.clone());
    active.country_name = Set(location.country_name.clone());
    active.state_name = Set(location.state_name.clone());
    active.state_code = Set(location.state_code.clone());
    active.province_name = Set(location.province_name.clone());
    active.province_code = Set(location.province_code.clone());
    active.city = Set(location.city.clone());
    active.postal_code = Set(location.postal_code.clone());
    active.time_zone = Set(location.time_zone.clone());
    active.latitude = Set(location.latitude);
    active.longitude = Set(location.longitude);
    active.accuracy_radius_km = Set(location.accuracy_radius_km.map(i32::from));
}

/// Whether storing `location` would change what the contact holds.
pub fn location_changes(contact: &contact::Model, location: &Location) -> bool {
    location_of(contact).as_ref() != Some(location)
}

const MAX_PLACE_LEN: usize = 100;

/// Checks a location an agent typed in.
pub fn parse_location(mut location: Location) -> AppResult<Location> {
    let trim = |value: &mut Option<String>, field: &str| -> AppResult<()> {
        if let Some(text) = value.take() {
            let text = text.trim().to_owned();
            if text.chars().count() > MAX_PLACE_LEN || text.chars().any(char::is_control) {
                return Err(AppError::bad_input(
                    format!("location.{field}"),
                    format!("must be at most {MAX_PLACE_LEN} printable characters"),
                ));
            }
            *value = (!text.is_empty()).then_some(text);
        }
        Ok(())
    };
    trim(&mut location.country_name, "countryName")?;
    trim(&mut location.state_name, "stateName")?;
    trim(&mut location.state_code, "stateCode")?;
    trim(&mut location.province_name, "provinceName")?;
    trim(&mut location.province_code, "provinceCode")?;
    trim(&mut location.city, "city")?;
    trim(&mut location.postal_code, "postalCode")?;
    trim(&mut location.time_zone, "timeZone")?;
    trim(&mut location.country_code, "countryCode")?;
    if let Some(code) = &mut location.country_code {
        if code.len() != 2 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(AppError::bad_input(
                "location.countryCode",
                "must be a two-letter ISO 3166-1 code",
            ));
        }
        *code = code.to_ascii_uppercase();
    }
    if location
        .latitude
        .is_some_and(|lat| !(-90.0..=90.0).contains(&lat))
    {
        return Err(AppError::bad_input(
            "location.latitude",
            "must be within -90 and 90",
        ));
    }
    if location
        .longitude
        .is_some_and(|lon| !(-180.0..=180.0).contains(&lon))
    {
        return Err(AppError::bad_input(
            "location.longitude",
            "must be within -180 and 180",
        ));
    }
    Ok(location)
}

/// An agent's correction; later lookups leave the location alone.
pub async fn correct_location(
    db: &DatabaseConnection,
    agent_id: Uuid,
    contact: contact::Model,
    location: Location,
) -> AppResult<contact::Model> {
    let location = parse_location(location)?;
    let change = FieldChange::new(
        "location",
        location_of(&contact).map(|old| serde_json::json!(old)),
        Some(serde_json::json!(location)),
    );
    let txn = db.begin().await?;
    let mut active: contact::ActiveModel = contact.into();
    set_location(&mut active, Some(&location));
    active.location_corrected = Set(true);
    active.updated_at = Set(Utc::now());
    let contact = active.update(&txn).await?;
    history::record(
        &txn,
        contact.project_id,
        contact.id,
        Actor::Agent { agent_id },
        EventKind::LocationChange,
        &[change],
    )
    .await?;
    txn.commit().await?;
    Ok(contact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_locations_are_checked_and_normalised() {
        let location = parse_location(Location {
            country_code: Some(" es ".into()),
            city: Some("  Málaga ".into()),
            state_name: Some("   ".into()),
            latitude: Some(36.7),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(location.country_code.as_deref(), Some("ES"));
        assert_eq!(location.city.as_deref(), Some("Málaga"));
        assert_eq!(location.state_name, None);

        for bad in [
            Location {
                country_code: Some("ESP".into()),
                ..Default::default()
            },
            Location {
                latitude: Some(91.0),
                ..Default::default()
            },
            Location {
                longitude: Some(-181.0),
                ..Default::default()
            },
            Location {
                city: Some("x".repeat(101)),
                ..Default::default()
            },
        ] {
            assert_eq!(parse_location(bad).unwrap_err().code(), "BAD_USER_INPUT");
        }
    }

    #[test]
    fn chat_cursors_round_trip_to_the_nanosecond_and_refuse_anything_else() {
        let cursor = ChatCursor {
            started_at: chrono::DateTime::from_timestamp_nanos(1_780_000_000_123_456_789),
            id: Uuid::now_v7(),
        };
        assert_eq!(
            ChatCursor::decode(&cursor.encode(), "after").unwrap(),
            cursor
        );
        for raw in ["", "garbage", &cursor.id.to_string(), &"a".repeat(500)] {
            let error = ChatCursor::decode(raw, "after").unwrap_err();
            assert_eq!(error.code(), "BAD_USER_INPUT", "{raw}");
        }
    }
}
