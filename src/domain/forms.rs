//! The in-chat contact form: the questions a project asks, and which of them
//! a contact still has to answer.

use chrono::Utc;
use entity::{contact, form_question};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::access::{ProjectAccess, Role};
use crate::domain::fields::ContactField;
use crate::domain::ids::new_id;
use crate::domain::visitors::OwnAnswers;
use crate::error::{AppError, AppResult};

/// Questions a project's form may have.
pub const MAX_QUESTIONS: usize = 50;
/// Choices a SELECT question may offer.
pub const MAX_OPTIONS: usize = 50;
const MAX_LABEL_LEN: usize = 200;
const MAX_OPTION_LEN: usize = 100;
const MAX_KEY_LEN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuestionKind {
    Text,
    Email,
    Phone,
    Number,
    Select,
    Checkbox,
}

impl QuestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionKind::Text => "TEXT",
            QuestionKind::Email => "EMAIL",
            QuestionKind::Phone => "PHONE",
            QuestionKind::Number => "NUMBER",
            QuestionKind::Select => "SELECT",
            QuestionKind::Checkbox => "CHECKBOX",
        }
    }

    pub fn parse(stored: &str) -> Option<QuestionKind> {
        [
            QuestionKind::Text,
            QuestionKind::Email,
            QuestionKind::Phone,
            QuestionKind::Number,
            QuestionKind::Select,
            QuestionKind::Checkbox,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == stored)
    }
}

/// What a question fills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Field(ContactField),
    Attribute(String),
}

impl Target {
    fn stored(&self) -> (&'static str, String) {
        match self {
            Target::Field(field) => ("FIELD", field.as_str().to_owned()),
            Target::Attribute(key) => ("ATTRIBUTE", key.clone()),
        }
    }

    pub fn of(question: &form_question::Model) -> Option<Target> {
        match question.target_kind.as_str() {
            "FIELD" => ContactField::parse(&question.target_name).map(Target::Field),
            "ATTRIBUTE" => Some(Target::Attribute(question.target_name.clone())),
            _ => None,
        }
    }

    /// The key under which `field_sources` records where the value came from.
    pub fn source_key(&self) -> String {
        match self {
            Target::Field(field) => field.as_str().to_owned(),
            Target::Attribute(key) => format!("attributes.{key}"),
        }
    }

    /// The contact's current value for this target, if it has one.
    pub fn current_value(&self, contact: &contact::Model) -> Option<Value> {
        match self {
            Target::Field(field) => field
                .value_of(contact)
                .map(|value| Value::String(value.to_owned())),
            Target::Attribute(key) => contact
                .custom_attributes
                .get(key)
                .filter(|value| !value.is_null())
                .cloned(),
        }
    }
}

/// A question as an admin defines it.
pub struct QuestionSpec {
    pub key: String,
    pub label: String,
    pub kind: QuestionKind,
    pub required: bool,
    pub target: Target,
    pub options: Vec<String>,
}

/// A key of a question or a custom attribute: a-z, 0-9 and _, starting with
/// a letter, at most `MAX_KEY_LEN` long.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_KEY_LEN
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && text.starts_with(|c: char| c.is_ascii_lowercase())
}

fn check_label(label: &str) -> AppResult<String> {
    let label = label.trim();
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_LEN
        || label.chars().any(char::is_control)
    {
        return Err(AppError::bad_input(
            "label",
            format!("must be 1 to {MAX_LABEL_LEN} printable characters"),
        ));
    }
    Ok(label.to_owned())
}

fn check_options(kind: QuestionKind, options: &[String]) -> AppResult<Vec<String>> {
    if kind != QuestionKind::Select {
        if !options.is_empty() {
            return Err(AppError::bad_input(
                "options",
                "only SELECT questions have options",
            ));
        }
        return Ok(Vec::new());
    }
    if options.is_empty() || options.len() > MAX_OPTIONS {
        return Err(AppError::bad_input(
            "options",
            format!("a SELECT question needs 1 to {MAX_OPTIONS} options"),
        ));
    }
    let mut cleaned: Vec<String> = Vec::with_capacity(options.len());
    for option in options {
        let option = option.trim();
        if option.is_empty() || option.chars().count() > MAX_OPTION_LEN {
            return Err(AppError::bad_input(
                "options",
                format!("each option must have 1 to {MAX_OPTION_LEN} characters"),
            ));
        }
        if cleaned.iter().any(|seen| seen == option) {
            return Err(AppError::bad_input(
                "options",
                format!("{option:?} is listed twice"),
            ));
        }
        cleaned.push(option.to_owned());
    }
    Ok(cleaned)
}

/// Contact fields hold one kind of value each.
fn check_target(kind: QuestionKind, target: &Target) -> AppResult<()> {
    let expected = match target {
        Target::Field(ContactField::Email) => QuestionKind::Email,
        Target::Field(ContactField::Phone) => QuestionKind::Phone,
        Target::Field(ContactField::Name | ContactField::Company) => QuestionKind::Text,
        Target::Attribute(key) => {
            if !is_identifier(key) {
                return Err(AppError::bad_input(
                    "target",
                    "an attribute key is 1 to 64 of a-z, 0-9 and _, starting with a letter",
                ));
            }
            return Ok(());
        }
    };
    if kind != expected {
        return Err(AppError::bad_input(
            "kind",
            format!(
                "a question filling this field must be {}",
                expected.as_str()
            ),
        ));
    }
    Ok(())
}

fn require_admin(access: &ProjectAccess) -> AppResult<()> {
    if access.role() == Role::Admin {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only project admins may change the contact form",
        ))
    }
}

/// The project's questions in the order they are asked.
pub async fn questions(
    db: &impl ConnectionTrait,
    project_id: Uuid,
) -> AppResult<Vec<form_question::Model>> {
    Ok(form_question::Entity::find()
        .filter(form_question::Column::ProjectId.eq(project_id))
        .order_by_asc(form_question::Column::Position)
        .order_by_asc(form_question::Column::Id)
        .all(db)
        .await?)
}

pub async fn create_question(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    spec: QuestionSpec,
) -> AppResult<form_question::Model> {
    require_admin(access)?;
    if !is_identifier(&spec.key) {
        return Err(AppError::bad_input(
            "key",
            "must be 1 to 64 of a-z, 0-9 and _, starting with a letter",
        ));
    }
    let label = check_label(&spec.label)?;
    check_target(spec.kind, &spec.target)?;
    let options = check_options(spec.kind, &spec.options)?;
    let (target_kind, target_name) = spec.target.stored();

    let txn = db.begin().await?;
    let existing = questions(&txn, access.project_id()).await?;
    if existing.len() >= MAX_QUESTIONS {
        return Err(AppError::bad_input(
            "projectId",
            format!("a form has at most {MAX_QUESTIONS} questions"),
        ));
    }
    if existing.iter().any(|q| q.key == spec.key) {
        return Err(AppError::bad_input("key", "another question has this key"));
    }
    if let Some(other) = existing
        .iter()
        .find(|q| q.target_kind == target_kind && q.target_name == target_name)
    {
        return Err(AppError::bad_input(
            "target",
            format!("question {:?} already fills this target", other.key),
        ));
    }
    let now = Utc::now();
    let position = existing.iter().map(|q| q.position).max().unwrap_or(-1) + 1;
    let question = form_question::ActiveModel {
        id: Set(new_id()),
        project_id: Set(access.project_id()),
        key: Set(spec.key),
        label: Set(label),
        kind: Set(spec.kind.as_str().to_owned()),
        required: Set(spec.required),
        target_kind: Set(target_kind.to_owned()),
        target_name: Set(target_name),
        options: Set(serde_json::json!(options)),
        position: Set(position),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(question)
}

/// Finds a question of a project the agent belongs to; another project's
/// question answers as a missing one.
pub async fn find_question(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    question_id: Uuid,
) -> AppResult<(form_question::Model, ProjectAccess)> {
    let question = form_question::Entity::find_by_id(question_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("question"))?;
    let access =
        crate::domain::access::require_role(db, agent_id, question.project_id, Role::Agent)
            .await
            .map_err(|error| match error {
                AppError::NotFound(_) => AppError::NotFound("question"),
                other => other,
            })?;
    Ok((question, access))
}

pub struct QuestionChanges {
    pub label: Option<String>,
    pub required: Option<bool>,
    pub options: Option<Vec<String>>,
}

pub async fn update_question(
    db: &impl ConnectionTrait,
    access: &ProjectAccess,
    question: form_question::Model,
    changes: QuestionChanges,
) -> AppResult<form_question::Model> {
    require_admin(access)?;
    let kind = QuestionKind::parse(&question.kind).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("stored question kind {:?}", question.kind))
    })?;
    let mut active: form_question::ActiveModel = question.into();
    if let Some(label) = changes.label {
        active.label = Set(check_label(&label)?);
    }
    if let Some(required) = changes.required {
        active.required = Set(required);
    }
    if let Some(options) = changes.options {
        active.options = Set(serde_json::json!(check_options(kind, &options)?));
    }
    active.updated_at = Set(Utc::now());
    Ok(active.update(db).await?)
}

/// Puts the questions in the given order; `ids` must name each question once.
pub async fn reorder_questions(
    db: &DatabaseConnection,
    access: &ProjectAccess,
    ids: &[Uuid],
) -> AppResult<Vec<form_question::Model>> {
    require_admin(access)?;
    let txn = db.begin().await?;
    let existing = questions(&txn, access.project_id()).await?;
    let mut given = ids.to_vec();
    given.sort();
    given.dedup();
    let mut known: Vec<Uuid> = existing.iter().map(|q| q.id).collect();
    known.sort();
    if given.len() != ids.len() || given != known {
        return Err(AppError::bad_input(
            "ids",
            "must list every question of the form exactly once",
        ));
    }
    for (position, id) in ids.iter().enumerate() {
        form_question::Entity::update_many()
            .col_expr(
                form_question::Column::Position,
                sea_orm::sea_query::Expr::value(position as i32),
            )
            .filter(form_question::Column::Id.eq(*id))
            .exec(&txn)
            .await?;
    }
    let reordered = questions(&txn, access.project_id()).await?;
    txn.commit().await?;
    Ok(reordered)
}

pub async fn delete_question(
    db: &impl ConnectionTrait,
    access: &ProjectAccess,
    question: form_question::Model,
) -> AppResult<()> {
    require_admin(access)?;
    form_question::Entity::delete_by_id(question.id)
        .exec(db)
        .await?;
    Ok(())
}

/// The questions this contact still lacks an answer for, in form order.
/// The questions a visitor has not answered yet, judged by its own answers
/// only: what an agent or another visitor stored neither hides a question
/// nor shows through one.
pub fn unanswered_questions(
    questions: Vec<form_question::Model>,
    own: &OwnAnswers,
) -> Vec<form_question::Model> {
    questions
        .into_iter()
        .filter(|question| {
            Target::of(question).is_some_and(|target| own.get(&target.source_key()).is_none())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_need_matching_kinds() {
        assert!(check_target(QuestionKind::Email, &Target::Field(ContactField::Email)).is_ok());
        assert!(check_target(QuestionKind::Text, &Target::Field(ContactField::Email)).is_err());
        assert!(check_target(QuestionKind::Phone, &Target::Field(ContactField::Phone)).is_ok());
        assert!(check_target(QuestionKind::Number, &Target::Attribute("age".into())).is_ok());
        assert!(check_target(QuestionKind::Number, &Target::Attribute("Age!".into())).is_err());
    }

    #[test]
    fn only_select_has_options_and_they_are_unique() {
        assert!(check_options(QuestionKind::Select, &[]).is_err());
        assert!(check_options(QuestionKind::Text, &["a".into()]).is_err());
        assert!(check_options(QuestionKind::Select, &["a".into(), " a ".into()]).is_err());
        assert_eq!(
            check_options(QuestionKind::Select, &[" Small ".into(), "Large".into()]).unwrap(),
            vec!["Small", "Large"]
        );
    }

    #[test]
    fn keys_are_identifiers() {
        assert!(is_identifier("plan_size2"));
        for bad in ["", "2fa", "Plan", "with space", &"k".repeat(65)] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
