//! A visitor's answers to the contact form: validated all together, kept as
//! the visitor's own, and filling the gaps in the contact. An email or phone
//! that another contact has makes the two possible duplicates; a typed value
//! never merges contacts.

use std::collections::HashSet;

use chrono::Utc;
use entity::{chat, contact, form_question, visitor};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::duplicates;
use crate::domain::email::EmailAddress;
use crate::domain::events::{ContactChangeKind, ContactChanges};
use crate::domain::fields::{ContactField, FieldSource, parse_phone, parse_text};
use crate::domain::forms::{self, QuestionKind, Target, unanswered_questions};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::domain::locks;
use crate::domain::visitors::{self, OwnAnswers};
use crate::error::{AppError, AppResult};
use crate::geo::Location;

const MAX_ANSWERS: usize = 50;
const MAX_ANSWER_LEN: usize = 1_000;

pub struct Answer {
    pub key: String,
    pub value: String,
}

pub struct SyncOutcome {
    /// What this visitor has given, this answer included.
    pub own_answers: OwnAnswers,
    /// The questions this visitor has not answered, in form order.
    pub remaining: Vec<form_question::Model>,
    /// What the answers made of the project's contacts.
    pub changes: ContactChanges,
}

/// The visitor of a chat and its contact as they are now (merges move
/// visitors to the surviving contact).
pub async fn visitor_of_chat(
    db: &impl ConnectionTrait,
    chat_id: Uuid,
) -> AppResult<(visitor::Model, contact::Model)> {
    let gone = || AppError::Unauthenticated("this chat no longer exists");
    let chat = chat::Entity::find_by_id(chat_id)
        .one(db)
        .await?
        .ok_or_else(gone)?;
    let visitor = visitor::Entity::find_by_id(chat.visitor_id.ok_or_else(gone)?)
        .one(db)
        .await?
        .ok_or_else(gone)?;
    let contact = contact::Entity::find_by_id(visitor.contact_id)
        .one(db)
        .await?
        .ok_or_else(gone)?;
    Ok((visitor, contact))
}

/// The country this chat's address was located in, if any.
async fn chat_country(db: &impl ConnectionTrait, chat_id: Uuid) -> AppResult<Option<String>> {
    let location = chat::Entity::find_by_id(chat_id)
        .one(db)
        .await?
        .and_then(|chat| chat.location)
        .and_then(|location| serde_json::from_value::<Location>(location).ok());
    Ok(location.and_then(|location| location.country_code))
}

/// What the visitor of this chat has given, and the questions it should be
/// asked now: worked out from its own answers alone, so that nothing
/// another visitor or an agent stored shows through.
pub async fn visitor_form(
    db: &impl ConnectionTrait,
    chat_id: Uuid,
) -> AppResult<(OwnAnswers, Vec<form_question::Model>)> {
    let (visitor, contact) = visitor_of_chat(db, chat_id).await?;
    let questions = forms::questions(db, contact.project_id).await?;
    let own = OwnAnswers::of(&visitor);
    let pending = unanswered_questions(questions, &own);
    Ok((own, pending))
}

/// Checks one answer against its question; `input` names it in errors.
fn parse_answer(
    question: &form_question::Model,
    raw: &str,
    input: &str,
    country: Option<&str>,
) -> AppResult<Value> {
    if raw.chars().count() > MAX_ANSWER_LEN {
        return Err(AppError::bad_input(
            input,
            format!("must have at most {MAX_ANSWER_LEN} characters"),
        ));
    }
    let kind = QuestionKind::parse(&question.kind).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("stored question kind {:?}", question.kind))
    })?;
    let value = match kind {
        QuestionKind::Text => json!(parse_text(raw, input)?),
        QuestionKind::Email => json!(EmailAddress::parse(raw, input)?.into_string()),
        QuestionKind::Phone => json!(parse_phone(raw, input, country)?),
        QuestionKind::Number => {
            let number: f64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| AppError::bad_input(input, "must be a number"))?;
            json!(number)
        }
        QuestionKind::Select => {
            let choice = raw.trim();
            let allowed = question
                .options
                .as_array()
                .is_some_and(|options| options.iter().any(|o| o.as_str() == Some(choice)));
            if !allowed {
                return Err(AppError::bad_input(
                    input,
                    "must be one of the question's options",
                ));
            }
            json!(choice)
        }
        QuestionKind::Checkbox => match raw.trim() {
            "true" => json!(true),
            "false" => json!(false),
            _ => return Err(AppError::bad_input(input, "must be true or false")),
        },
    };
    Ok(value)
}

/// Validates every answer before anything is written: one bad answer and
/// nothing changes.
fn validate(
    questions: &[form_question::Model],
    pending: &[form_question::Model],
    answers: &[Answer],
    country: Option<&str>,
) -> AppResult<Vec<(Target, Value)>> {
    if answers.len() > MAX_ANSWERS {
        return Err(AppError::bad_input(
            "answers",
            format!("at most {MAX_ANSWERS} answers"),
        ));
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(answers.len());
    for answer in answers {
        let input = format!(
            "answers.{}",
            answer.key.chars().take(64).collect::<String>()
        );
        let question = questions
            .iter()
            .find(|q| q.key == answer.key)
            .ok_or_else(|| AppError::bad_input(&input, "no such question in this form"))?;
        if !seen.insert(answer.key.as_str()) {
            return Err(AppError::bad_input(input, "answered twice"));
        }
        let target = Target::of(question).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("question {} has no target", question.id))
        })?;
        let input = format!("answers.{}", question.key);
        parsed.push((
            target,
            parse_answer(question, &answer.value, &input, country)?,
        ));
    }
    if let Some(unanswered) = pending
        .iter()
        .find(|q| q.required && !seen.contains(q.key.as_str()))
    {
        return Err(AppError::bad_input(
            format!("answers.{}", unanswered.key),
            "is required",
        ));
    }
    Ok(parsed)
}

/// An agent's value for a custom attribute: `None` clears it.
#[derive(Clone, Debug)]
pub struct AttributeEdit {
    pub key: String,
    pub value: Option<String>,
}

/// Validates an agent's custom attribute values exactly as the form
/// validates a visitor's answers to the question that fills each
/// attribute; an attribute no question fills can only be cleared. Returns
/// each key with its parsed value, or `None` to clear it.
pub fn parse_attribute_edits(
    questions: &[form_question::Model],
    edits: &[AttributeEdit],
    country: Option<&str>,
) -> AppResult<Vec<(String, Option<Value>)>> {
    if edits.len() > MAX_ANSWERS {
        return Err(AppError::bad_input(
            "customAttributes",
            format!("at most {MAX_ANSWERS} attributes"),
        ));
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(edits.len());
    for edit in edits {
        let input = format!(
            "customAttributes.{}",
            edit.key.chars().take(64).collect::<String>()
        );
        if !seen.insert(edit.key.as_str()) {
            return Err(AppError::bad_input(input, "given twice"));
        }
        let question = questions
            .iter()
            .find(|q| Target::of(q) == Some(Target::Attribute(edit.key.clone())));
        let value = match (question, &edit.value) {
            (_, None) => None,
            (Some(question), Some(raw)) => Some(parse_answer(question, raw, &input, country)?),
            (None, Some(_)) => {
                return Err(AppError::bad_input(
                    input,
                    "no question of the form fills this attribute",
                ));
            }
        };
        parsed.push((edit.key.clone(), value));
    }
    Ok(parsed)
}

pub async fn submit(
    db: &DatabaseConnection,
    chat_id: Uuid,
    answers: Vec<Answer>,
) -> AppResult<SyncOutcome> {
    let txn = db.begin().await?;
    let (visitor, contact) = visitor_of_chat(&txn, chat_id).await?;
    let questions = forms::questions(&txn, contact.project_id).await?;
    let pending = unanswered_questions(questions.clone(), &OwnAnswers::of(&visitor));
    // A national phone number is read in the country this chat came from:
    // the visitor's own, not a location an agent corrected.
    let country = chat_country(&txn, chat_id).await?;
    let parsed = validate(&questions, &pending, &answers, country.as_deref())?;

    // Two chats typing the same email at once: the second waits for the
    // first, and sees its contact to pair with.
    let identity_keys = parsed
        .iter()
        .filter_map(|(target, value)| match (target, value.as_str()) {
            (Target::Field(field @ (ContactField::Email | ContactField::Phone)), Some(text)) => {
                Some(format!(
                    "contact:{}:{}:{text}",
                    contact.project_id,
                    field.as_str()
                ))
            }
            _ => None,
        })
        .collect();
    locks::lock_values(&txn, identity_keys).await?;
    // Re-read under the locks: a merge may have moved this visitor meanwhile.
    let (visitor, contact) = visitor_of_chat(&txn, chat_id).await?;

    let mut own = OwnAnswers::of(&visitor);
    let mut sources = contact.field_sources.clone();
    let mut attributes = contact.custom_attributes.clone();
    let mut active: contact::ActiveModel = contact.clone().into();
    let mut history_changes = Vec::new();
    let mut typed_identifiers = Vec::new();
    for (target, value) in parsed {
        let source_key = target.source_key();
        own.insert(source_key.clone(), value.clone());
        let current = target.current_value(&contact);
        let may_write = match FieldSource::of(&sources, &source_key) {
            // A visitor may correct what the form filled earlier.
            None | Some(FieldSource::Form) => true,
            Some(FieldSource::Agent | FieldSource::Identity) => current.is_none(),
        };
        if !may_write || current.as_ref() == Some(&value) {
            continue;
        }
        match &target {
            Target::Field(field) => {
                let text = value.as_str().map(str::to_owned);
                if matches!(field, ContactField::Email | ContactField::Phone)
                    && let Some(text) = &text
                {
                    typed_identifiers.push((*field, text.clone()));
                }
                field.set(&mut active, text);
            }
            Target::Attribute(key) => {
                if let Some(map) = attributes.as_object_mut() {
                    map.insert(key.clone(), value.clone());
                }
            }
        }
        FieldSource::Form.set(&mut sources, &source_key);
        history_changes.push(FieldChange::new(source_key, current, Some(value)));
    }
    let visitor = visitors::save_answers(&txn, visitor, own).await?;

    let mut changes = ContactChanges::default();
    let mut contact = contact;
    if !history_changes.is_empty() {
        active.custom_attributes = Set(attributes);
        active.field_sources = Set(sources);
        active.updated_at = Set(Utc::now());
        contact = active.update(&txn).await?;
        history::record(
            &txn,
            contact.project_id,
            contact.id,
            Actor::Visitor { chat_id },
            EventKind::FormSync,
            &history_changes,
        )
        .await?;
        changes.record(contact.project_id, contact.id, ContactChangeKind::Updated);
    }
    for (field, value) in typed_identifiers {
        for other in duplicates::pair_with_matches(&txn, &contact, field, &value).await? {
            changes.record(contact.project_id, other, ContactChangeKind::Updated);
        }
    }
    txn.commit().await?;
    let own_answers = OwnAnswers::of(&visitor);
    let remaining = unanswered_questions(questions, &own_answers);
    Ok(SyncOutcome {
        own_answers,
        remaining,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(key: &str, kind: &str, attribute: &str, options: Value) -> form_question::Model {
        form_question::Model {
            id: Uuid::now_v7(),
            project_id: Uuid::nil(),
            key: key.to_owned(),
            label: key.to_owned(),
            kind: kind.to_owned(),
            required: false,
            target_kind: "ATTRIBUTE".to_owned(),
            target_name: attribute.to_owned(),
            options,
            position: 0,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn edit(key: &str, value: Option<&str>) -> AttributeEdit {
        AttributeEdit {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn agents_attribute_values_are_parsed_like_the_forms_answers() {
        let questions = [
            question("your_plan", "SELECT", "plan", json!(["free", "pro"])),
            question("seats", "NUMBER", "seats", json!([])),
        ];
        let parsed = parse_attribute_edits(
            &questions,
            &[
                edit("plan", Some(" pro ")),
                edit("seats", Some("3")),
                edit("old", None),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("plan".to_owned(), Some(json!("pro"))),
                ("seats".to_owned(), Some(json!(3.0))),
                ("old".to_owned(), None),
            ]
        );
        let field_of =
            |edits: &[AttributeEdit]| match parse_attribute_edits(&questions, edits, None) {
                Err(AppError::BadInput { field, .. }) => field,
                other => panic!("expected bad input, got {:?}", other.map(|_| ())),
            };
        assert_eq!(
            field_of(&[edit("plan", Some("gold"))]),
            "customAttributes.plan"
        );
        assert_eq!(
            field_of(&[edit("seats", Some("many"))]),
            "customAttributes.seats"
        );
        assert_eq!(
            field_of(&[edit("nickname", Some("x"))]),
            "customAttributes.nickname"
        );
        assert_eq!(
            field_of(&[edit("plan", None), edit("plan", Some("pro"))]),
            "customAttributes.plan"
        );
    }
}
