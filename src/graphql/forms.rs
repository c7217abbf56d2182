//! The contact form: admins configure its questions; a visitor, with the
//! token from startChat, reads what is still to answer and submits answers.

use async_graphql::{Context, Enum, ID, InputObject, Object, OneofObject, Result, SimpleObject};
use entity::form_question;

use crate::domain::access::Role;
use crate::domain::fields::ContactField;
use crate::domain::form_sync::{self, Answer};
use crate::domain::forms::{self, QuestionChanges, QuestionKind, QuestionSpec, Target};
use crate::domain::ids::parse_id;
use crate::graphql::chats::VisitorContact;
use crate::graphql::context::{project_access, require_agent, require_visitor, services};
use crate::graphql::guards;

/// What kind of answer a question takes, and how it is checked.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "QuestionKind")]
pub enum QuestionKindView {
    /// Free text, at most 1,000 characters.
    Text,
    /// An email address; stored lower-cased.
    Email,
    /// A phone number; stored in E.164, a national number read in the chat's
    /// country.
    Phone,
    /// A decimal number.
    Number,
    /// One of the question's options.
    Select,
    /// `true` or `false`.
    Checkbox,
}

impl From<QuestionKindView> for QuestionKind {
    fn from(kind: QuestionKindView) -> Self {
        match kind {
            QuestionKindView::Text => QuestionKind::Text,
            QuestionKindView::Email => QuestionKind::Email,
            QuestionKindView::Phone => QuestionKind::Phone,
            QuestionKindView::Number => QuestionKind::Number,
            QuestionKindView::Select => QuestionKind::Select,
            QuestionKindView::Checkbox => QuestionKind::Checkbox,
        }
    }
}

impl From<QuestionKind> for QuestionKindView {
    fn from(kind: QuestionKind) -> Self {
        match kind {
            QuestionKind::Text => QuestionKindView::Text,
            QuestionKind::Email => QuestionKindView::Email,
            QuestionKind::Phone => QuestionKindView::Phone,
            QuestionKind::Number => QuestionKindView::Number,
            QuestionKind::Select => QuestionKindView::Select,
            QuestionKind::Checkbox => QuestionKindView::Checkbox,
        }
    }
}

/// A contact field a form question can fill.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ContactFieldName")]
pub enum ContactFieldView {
    /// The contact's name.
    Name,
    /// The contact's email.
    Email,
    /// The contact's phone.
    Phone,
    /// The contact's company.
    Company,
}

impl From<ContactFieldView> for ContactField {
    fn from(field: ContactFieldView) -> Self {
        match field {
            ContactFieldView::Name => ContactField::Name,
            ContactFieldView::Email => ContactField::Email,
            ContactFieldView::Phone => ContactField::Phone,
            ContactFieldView::Company => ContactField::Company,
        }
    }
}

impl From<ContactField> for ContactFieldView {
    fn from(field: ContactField) -> Self {
        match field {
            ContactField::Name => ContactFieldView::Name,
            ContactField::Email => ContactFieldView::Email,
            ContactField::Phone => ContactFieldView::Phone,
            ContactField::Company => ContactFieldView::Company,
        }
    }
}

/// A question as the project's members see it.
#[derive(SimpleObject)]
pub struct FormQuestion {
    /// The question's id.
    pub id: ID,
    /// The question's stable key, unique in the project.
    pub key: String,
    /// The question as the visitor reads it.
    pub label: String,
    /// What kind of answer it takes.
    pub kind: QuestionKindView,
    /// Whether the form is incomplete without an answer.
    pub required: bool,
    /// The contact field the answer fills, or null for a custom attribute.
    pub target_field: Option<ContactFieldView>,
    /// The custom attribute the answer fills, or null for a contact field.
    pub target_attribute: Option<String>,
    /// The choices of a SELECT question; empty otherwise.
    pub options: Vec<String>,
    /// The question's place in the form, from 0.
    pub position: i32,
}

fn options_of(question: &form_question::Model) -> Vec<String> {
    question
        .options
        .as_array()
        .map(|options| {
            options
                .iter()
                .filter_map(|o| o.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn kind_of(question: &form_question::Model) -> QuestionKindView {
    QuestionKind::parse(&question.kind)
        .unwrap_or(QuestionKind::Text)
        .into()
}

impl From<form_question::Model> for FormQuestion {
    fn from(question: form_question::Model) -> Self {
        let target = Target::of(&question);
        FormQuestion {
            id: ID(question.id.to_string()),
            kind: kind_of(&question),
            options: options_of(&question),
            target_field: match &target {
                Some(Target::Field(field)) => Some((*field).into()),
                _ => None,
            },
            target_attribute: match target {
                Some(Target::Attribute(key)) => Some(key),
                _ => None,
            },
            key: question.key,
            label: question.label,
            required: question.required,
            position: question.position,
        }
    }
}

/// A question as the visitor is asked it.
#[derive(SimpleObject)]
pub struct VisitorQuestion {
    /// The key to answer it under in `submitContactForm`.
    pub key: String,
    /// The question to show.
    pub label: String,
    /// What kind of answer it takes.
    pub kind: QuestionKindView,
    /// Whether the form is incomplete without an answer.
    pub required: bool,
    /// The choices of a SELECT question; empty otherwise.
    pub options: Vec<String>,
}

impl From<form_question::Model> for VisitorQuestion {
    fn from(question: form_question::Model) -> Self {
        VisitorQuestion {
            kind: kind_of(&question),
            options: options_of(&question),
            key: question.key,
            label: question.label,
            required: question.required,
        }
    }
}

/// What a question fills: exactly one of a contact field or a custom attribute.
#[derive(OneofObject)]
pub enum FormTargetInput {
    /// A contact field.
    Field(ContactFieldView),
    /// A custom attribute's key (a-z, 0-9 and _, starting with a letter).
    Attribute(String),
}

/// A new question of the contact form.
#[derive(InputObject)]
pub struct FormQuestionInput {
    /// Stable name: a-z, 0-9 and _, starting with a letter.
    pub key: String,
    /// The question as the visitor reads it, at most 200 characters.
    pub label: String,
    /// What kind of answer it takes; must suit the target (an EMAIL question
    /// fills the email).
    pub kind: QuestionKindView,
    /// Whether the form is incomplete without an answer.
    #[graphql(default)]
    pub required: bool,
    /// What the answer fills.
    pub target: FormTargetInput,
    /// The choices of a SELECT question.
    #[graphql(default)]
    pub options: Vec<String>,
}

/// Changes to a question; what is left out stays as it is.
#[derive(InputObject)]
pub struct FormQuestionChangesInput {
    /// A new label.
    pub label: Option<String>,
    /// Whether an answer is now required.
    pub required: Option<bool>,
    /// The new choices of a SELECT question.
    pub options: Option<Vec<String>>,
}

/// A visitor's answer to one question.
#[derive(InputObject)]
pub struct FormAnswerInput {
    /// The question's key.
    pub key: String,
    /// The answer as typed; numbers as decimal text, checkboxes as true/false.
    pub value: String,
}

/// The contact form as the chat widget shows it to this visitor.
#[derive(SimpleObject)]
pub struct ContactForm {
    /// Only the questions this visitor has not answered yet.
    pub questions: Vec<VisitorQuestion>,
    /// Whether every required question is answered.
    pub complete: bool,
    /// What this visitor has given so far.
    pub contact: VisitorContact,
}

/// What the answers left to ask.
#[derive(SimpleObject)]
pub struct SubmitContactFormPayload {
    /// What this visitor has given, these answers included.
    pub contact: VisitorContact,
    /// The questions still to answer.
    pub remaining: Vec<VisitorQuestion>,
    /// Whether every required question is now answered.
    pub complete: bool,
}

#[derive(Default)]
pub struct FormQuery;

#[Object]
impl FormQuery {
    /// The project's form questions, in order. Members only.
    async fn form_questions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be a member.")] project_id: ID,
    ) -> Result<Vec<FormQuestion>> {
        let access = project_access(ctx, &project_id, Role::Agent).await?;
        let questions = forms::questions(&services(ctx).db, access.project_id()).await?;
        Ok(questions.into_iter().map(FormQuestion::from).collect())
    }

    /// For the visitor of a chat: the questions still to answer.
    async fn contact_form(&self, ctx: &Context<'_>) -> Result<ContactForm> {
        let visitor = require_visitor(ctx)?;
        let (own, pending) = form_sync::visitor_form(&services(ctx).db, visitor.chat_id).await?;
        Ok(ContactForm {
            complete: pending.is_empty(),
            questions: pending.into_iter().map(VisitorQuestion::from).collect(),
            contact: VisitorContact::from(&own),
        })
    }
}

#[derive(Default)]
pub struct FormMutation;

#[Object]
impl FormMutation {
    /// Adds a question at the end of the form. Admins only.
    async fn create_form_question(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be its admin.")] project_id: ID,
        #[graphql(desc = "The question.")] input: FormQuestionInput,
    ) -> Result<FormQuestion> {
        let access = project_access(ctx, &project_id, Role::Admin).await?;
        let spec = QuestionSpec {
            key: input.key,
            label: input.label,
            kind: input.kind.into(),
            required: input.required,
            target: match input.target {
                FormTargetInput::Field(field) => Target::Field(field.into()),
                FormTargetInput::Attribute(key) => Target::Attribute(key),
            },
            options: input.options,
        };
        let question = forms::create_question(&services(ctx).db, &access, spec).await?;
        Ok(question.into())
    }

    /// Changes a question's label, required flag or options. Admins only.
    async fn update_form_question(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The question to change.")] id: ID,
        #[graphql(desc = "The changes.")] input: FormQuestionChangesInput,
    ) -> Result<FormQuestion> {
        let agent = require_agent(ctx)?;
        let db = &services(ctx).db;
        let (question, access) = forms::find_question(db, agent.id, parse_id(&id, "id")?).await?;
        let changes = QuestionChanges {
            label: input.label,
            required: input.required,
            options: input.options,
        };
        Ok(forms::update_question(db, &access, question, changes)
            .await?
            .into())
    }

    /// Puts the questions in this order; every question once. Admins only.
    async fn reorder_form_questions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be its admin.")] project_id: ID,
        #[graphql(desc = "Every question's id, in the new order.")] ids: Vec<ID>,
    ) -> Result<Vec<FormQuestion>> {
        let access = project_access(ctx, &project_id, Role::Admin).await?;
        let ids = ids
            .iter()
            .map(|id| parse_id(id, "ids"))
            .collect::<Result<Vec<_>, _>>()?;
        let questions = forms::reorder_questions(&services(ctx).db, &access, &ids).await?;
        Ok(questions.into_iter().map(FormQuestion::from).collect())
    }

    /// Removes a question; answers already given stay on the contacts.
    async fn delete_form_question(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The question to delete.")] id: ID,
    ) -> Result<ID> {
        let agent = require_agent(ctx)?;
        let db = &services(ctx).db;
        let (question, access) = forms::find_question(db, agent.id, parse_id(&id, "id")?).await?;
        forms::delete_question(db, &access, question).await?;
        Ok(id)
    }

    /// For the visitor of a chat: validates every answer (all or nothing)
    /// and fills the gaps in the contact.
    async fn submit_contact_form(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The answers, all validated before any is stored.")] answers: Vec<
            FormAnswerInput,
        >,
    ) -> Result<SubmitContactFormPayload> {
        let visitor = require_visitor(ctx)?;
        guards::admit_form_submission(ctx, visitor).await?;
        let services = services(ctx);
        let answers = answers
            .into_iter()
            .map(|answer| Answer {
                key: answer.key,
                value: answer.value,
            })
            .collect();
        let outcome = form_sync::submit(&services.db, visitor.chat_id, answers).await?;
        services.bus.publish_contact_changes(outcome.changes);
        Ok(SubmitContactFormPayload {
            contact: VisitorContact::from(&outcome.own_answers),
            complete: outcome.remaining.is_empty(),
            remaining: outcome
                .remaining
                .into_iter()
                .map(VisitorQuestion::from)
                .collect(),
        })
    }
}
