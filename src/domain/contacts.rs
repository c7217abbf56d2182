//! Contacts as agents see them: lookup behind the project check, and the
//! location an agent may correct.

use chrono::Utc;
use entity::{chat, contact};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::access::{self, ProjectAccess, Role};
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

const MAX_CHATS_PER_PAGE: u64 = 100;

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
}
