//! A visitor's answers to the contact form: validated all together, filling
//! the gaps in the contact, and merging it with another contact of the
//! project that has the same email or phone.

use std::collections::HashSet;

use chrono::Utc;
use entity::{chat, contact, form_question};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, Set, Statement, TransactionTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::email::EmailAddress;
use crate::domain::fields::{ContactField, FieldSource, parse_phone, parse_text};
use crate::domain::forms::{self, QuestionKind, Target, missing_questions};
use crate::domain::history::{self, Actor, EventKind, FieldChange};
use crate::domain::merge::{self, Merged};
use crate::error::{AppError, AppResult};

const MAX_ANSWERS: usize = 50;
const MAX_ANSWER_LEN: usize = 1_000;

pub struct Answer {
    pub key: String,
    pub value: String,
}

pub struct SyncOutcome {
    pub contact: contact::Model,
    /// The questions the contact still lacks, in form order.
    pub remaining: Vec<form_question::Model>,
    /// The contact this one was merged with, if a merge happened.
    pub merged: Option<Uuid>,
    /// Whether any value changed.
    pub changed: bool,
}

/// The contact a chat belongs to now (merges move chats).
pub async fn contact_of_chat(
    db: &impl ConnectionTrait,
    chat_id: Uuid,
) -> AppResult<(chat::Model, contact::Model)> {
    // A merge committing between the two reads moves the chat to the
    // surviving contact and deletes the one read first: read the chat again.
    for _ in 0..3 {
        let chat = chat::Entity::find_by_id(chat_id)
            .one(db)
            .await?
            .ok_or(AppError::Unauthenticated("this chat no longer exists"))?;
        if let Some(contact) = contact::Entity::find_by_id(chat.contact_id).one(db).await? {
            return Ok((chat, contact));
        }
    }
    Err(AppError::Unauthenticated("this chat no longer exists"))
}

/// The questions the visitor of this chat should be asked now.
pub async fn pending_questions(
    db: &impl ConnectionTrait,
    chat_id: Uuid,
) -> AppResult<Vec<form_question::Model>> {
    let (_, contact) = contact_of_chat(db, chat_id).await?;
    let questions = forms::questions(db, contact.project_id).await?;
    Ok(missing_questions(questions, &contact))
}

/// Checks one answer against its question; `input` names it in errors.
fn parse_answer(
    question: &form_question::Model,
    raw: &str,
    country: Option<&str>,
) -> AppResult<Value> {
    let input = format!("answers.{}", question.key);
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
        QuestionKind::Text => json!(parse_text(raw, &input)?),
        QuestionKind::Email => json!(EmailAddress::parse(raw, &input)?.into_string()),
        QuestionKind::Phone => json!(parse_phone(raw, &input, country)?),
        QuestionKind::Number => {
            let number: f64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| AppError::bad_input(&input, "must be a number"))?;
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
        parsed.push((target, parse_answer(question, &answer.value, country)?));
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

/// Serialises merges around one email or phone on PostgreSQL, so that two
/// chats submitting the same address at once end with one contact. SQLite
/// runs one writer at a time already.
async fn lock_identity(
    txn: &impl ConnectionTrait,
    project_id: Uuid,
    what: &str,
    value: &str,
) -> AppResult<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("contact:{project_id}:{what}:{value}").into()],
        ))
        .await?;
    }
    Ok(())
}

/// Another contact of the project with this email or phone, oldest first.
async fn other_with(
    txn: &impl ConnectionTrait,
    contact: &contact::Model,
    field: ContactField,
    value: &str,
) -> AppResult<Option<contact::Model>> {
    let column = match field {
        ContactField::Email => contact::Column::Email,
        ContactField::Phone => contact::Column::Phone,
        _ => return Ok(None),
    };
    let others = contact::Entity::find()
        .filter(contact::Column::ProjectId.eq(contact.project_id))
        .filter(column.eq(value))
        .filter(contact::Column::Id.ne(contact.id))
        .limit(10)
        .all(txn)
        .await?;
    let mut mergeable: Vec<_> = others
        .into_iter()
        .filter(|other| merge::may_merge(contact, other))
        .collect();
    mergeable.sort_by_key(|other| (other.created_at, other.id));
    Ok(mergeable.into_iter().next())
}

pub async fn submit(
    db: &DatabaseConnection,
    chat_id: Uuid,
    answers: Vec<Answer>,
) -> AppResult<SyncOutcome> {
    let txn = db.begin().await?;
    let (_, contact) = contact_of_chat(&txn, chat_id).await?;
    let questions = forms::questions(&txn, contact.project_id).await?;
    let pending = missing_questions(questions.clone(), &contact);
    let parsed = validate(
        &questions,
        &pending,
        &answers,
        contact.country_code.as_deref(),
    )?;

    // Identity values are locked before they are written, see lock_identity.
    for (target, value) in &parsed {
        if let (Target::Field(field @ (ContactField::Email | ContactField::Phone)), Some(text)) =
            (target, value.as_str())
        {
            lock_identity(&txn, contact.project_id, field.as_str(), text).await?;
        }
    }
    // Re-read under the locks: a merge may have moved this chat meanwhile.
    let (_, contact) = contact_of_chat(&txn, chat_id).await?;

    let mut sources = contact.field_sources.clone();
    let mut attributes = contact.custom_attributes.clone();
    let mut active: contact::ActiveModel = contact.clone().into();
    let mut changes = Vec::new();
    let mut identity_values = Vec::new();
    for (target, value) in parsed {
        let source_key = target.source_key();
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
                match field {
                    ContactField::Name => active.name = Set(text),
                    ContactField::Email => active.email = Set(text),
                    ContactField::Phone => active.phone = Set(text),
                    ContactField::Company => active.company = Set(text),
                }
                if matches!(field, ContactField::Email | ContactField::Phone)
                    && let Some(text) = value.as_str()
                {
                    identity_values.push((*field, text.to_owned()));
                }
            }
            Target::Attribute(key) => {
                if let Some(map) = attributes.as_object_mut() {
                    map.insert(key.clone(), value.clone());
                }
            }
        }
        FieldSource::Form.set(&mut sources, &source_key);
        changes.push(FieldChange::new(source_key, current, Some(value)));
    }

    let changed = !changes.is_empty();
    let mut contact = contact;
    let mut merged = None;
    if changed {
        active.custom_attributes = Set(attributes);
        active.field_sources = Set(sources);
        active.updated_at = Set(Utc::now());
        contact = active.update(&txn).await?;
        let actor = Actor::Visitor { chat_id };
        history::record(
            &txn,
            contact.project_id,
            contact.id,
            actor,
            EventKind::FormSync,
            &changes,
        )
        .await?;
        for (field, value) in identity_values {
            if let Some(other) = other_with(&txn, &contact, field, &value).await?
                && let Some(Merged {
                    survivor,
                    absorbed_id,
                }) = merge::merge(&txn, contact.clone(), other.clone(), actor).await?
            {
                merged = Some(if absorbed_id == contact.id {
                    other.id
                } else {
                    absorbed_id
                });
                contact = survivor;
            }
        }
    }
    txn.commit().await?;
    let remaining = missing_questions(questions, &contact);
    Ok(SyncOutcome {
        contact,
        remaining,
        merged,
        changed,
    })
}
