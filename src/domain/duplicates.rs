//! Possible duplicates: two contacts of a project that share an email or a
//! phone that a visitor typed or an agent entered. A typed value proves
//! nothing, so nothing merges on it: agents dismiss the pair or merge it.

use std::collections::HashMap;

use chrono::Utc;
use entity::contact;
use entity::contact_duplicate::{self, DuplicateReason};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::access::ProjectAccess;
use crate::domain::fields::ContactField;
use crate::error::{AppError, AppResult};

/// How many other contacts one value pairs a contact with, and how many
/// possible duplicates a contact shows.
pub const MAX_DUPLICATES: u64 = 20;

/// A pair is stored once, the smaller id first.
fn ordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Pairs `contact` with the other contacts of its project holding `value` in
/// `field` (email or phone). Returns those others; a pair an agent
/// dismissed stays dismissed.
pub async fn pair_with_matches(
    txn: &impl ConnectionTrait,
    contact: &contact::Model,
    field: ContactField,
    value: &str,
) -> AppResult<Vec<Uuid>> {
    let (column, reason) = match field {
        ContactField::Email => (contact::Column::Email, DuplicateReason::Email),
        ContactField::Phone => (contact::Column::Phone, DuplicateReason::Phone),
        ContactField::Name | ContactField::Company => return Ok(Vec::new()),
    };
    let others: Vec<Uuid> = contact::Entity::find()
        .select_only()
        .column(contact::Column::Id)
        .filter(contact::Column::ProjectId.eq(contact.project_id))
        .filter(column.eq(value))
        .filter(contact::Column::Id.ne(contact.id))
        .limit(MAX_DUPLICATES)
        .into_tuple()
        .all(txn)
        .await?;
    if others.is_empty() {
        return Ok(others);
    }
    let now = Utc::now();
    let pairs = others.iter().map(|other| {
        let (first, second) = ordered(contact.id, *other);
        contact_duplicate::ActiveModel {
            project_id: Set(contact.project_id),
            contact_id: Set(first),
            other_id: Set(second),
            reason: Set(reason),
            created_at: Set(now),
            dismissed_at: Set(None),
        }
    });
    contact_duplicate::Entity::insert_many(pairs)
        .on_conflict_do_nothing_on([
            contact_duplicate::Column::ContactId,
            contact_duplicate::Column::OtherId,
        ])
        .exec_without_returning(txn)
        .await?;
    Ok(others)
}

/// The possible duplicates of each contact asked for (not dismissed).
pub async fn of_contacts(
    db: &impl ConnectionTrait,
    contact_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
    let pairs = contact_duplicate::Entity::find()
        .filter(
            Condition::any()
                .add(contact_duplicate::Column::ContactId.is_in(contact_ids.iter().copied()))
                .add(contact_duplicate::Column::OtherId.is_in(contact_ids.iter().copied())),
        )
        .filter(contact_duplicate::Column::DismissedAt.is_null())
        .all(db)
        .await?;
    let mut found: HashMap<Uuid, Vec<Uuid>> =
        contact_ids.iter().map(|id| (*id, Vec::new())).collect();
    for pair in pairs {
        for (of, other) in [
            (pair.contact_id, pair.other_id),
            (pair.other_id, pair.contact_id),
        ] {
            if let Some(list) = found.get_mut(&of)
                && (list.len() as u64) < MAX_DUPLICATES
            {
                list.push(other);
            }
        }
    }
    Ok(found)
}

/// The possible duplicates of each contact asked for, as contacts: two
/// statements for any number of contacts.
pub async fn contacts_of_many(
    db: &impl ConnectionTrait,
    contact_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<contact::Model>>> {
    let pairs = of_contacts(db, contact_ids).await?;
    let wanted: Vec<Uuid> = pairs.values().flatten().copied().collect();
    if wanted.is_empty() {
        return Ok(pairs.into_keys().map(|id| (id, Vec::new())).collect());
    }
    let found: HashMap<Uuid, contact::Model> = contact::Entity::find()
        .filter(contact::Column::Id.is_in(wanted))
        .all(db)
        .await?
        .into_iter()
        .map(|contact| (contact.id, contact))
        .collect();
    Ok(pairs
        .into_iter()
        .map(|(id, others)| {
            let contacts = others
                .iter()
                .filter_map(|other| found.get(other).cloned())
                .collect();
            (id, contacts)
        })
        .collect())
}

/// An agent says the two contacts are different people.
pub async fn dismiss(
    db: &impl ConnectionTrait,
    access: &ProjectAccess,
    a: Uuid,
    b: Uuid,
) -> AppResult<()> {
    let (first, second) = ordered(a, b);
    let pair = contact_duplicate::Entity::find_by_id((first, second))
        .filter(contact_duplicate::Column::ProjectId.eq(access.project_id()))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("possible duplicate"))?;
    if pair.dismissed_at.is_none() {
        let mut active: contact_duplicate::ActiveModel = pair.into();
        active.dismissed_at = Set(Some(Utc::now()));
        active.update(db).await?;
    }
    Ok(())
}

/// After `source` merged into `target`: the pairs of `source` become pairs
/// of `target` (dismissals kept), and the pair of the two goes.
pub async fn hand_over(txn: &impl ConnectionTrait, source: Uuid, target: Uuid) -> AppResult<()> {
    let pairs = contact_duplicate::Entity::find()
        .filter(
            Condition::any()
                .add(contact_duplicate::Column::ContactId.eq(source))
                .add(contact_duplicate::Column::OtherId.eq(source)),
        )
        .all(txn)
        .await?;
    for pair in &pairs {
        let other = if pair.contact_id == source {
            pair.other_id
        } else {
            pair.contact_id
        };
        if other == target {
            continue;
        }
        let (first, second) = ordered(target, other);
        contact_duplicate::Entity::insert(contact_duplicate::ActiveModel {
            project_id: Set(pair.project_id),
            contact_id: Set(first),
            other_id: Set(second),
            reason: Set(pair.reason),
            created_at: Set(pair.created_at),
            dismissed_at: Set(pair.dismissed_at),
        })
        .on_conflict_do_nothing_on([
            contact_duplicate::Column::ContactId,
            contact_duplicate::Column::OtherId,
        ])
        .exec_without_returning(txn)
        .await?;
    }
    forget(txn, source).await
}

/// Removes every pair of a contact that is going away.
pub async fn forget(txn: &impl ConnectionTrait, contact_id: Uuid) -> AppResult<()> {
    contact_duplicate::Entity::delete_many()
        .filter(
            Condition::any()
                .add(contact_duplicate::Column::ContactId.eq(contact_id))
                .add(contact_duplicate::Column::OtherId.eq(contact_id)),
        )
        .exec(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_have_one_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(ordered(a, b), ordered(b, a));
        assert_eq!(ordered(a, b).0, a.min(b));
    }
}
