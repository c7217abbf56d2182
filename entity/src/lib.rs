//! Database entities of the contacts service, one module per table.

pub mod access_token;
pub mod agent;
pub mod chat;
pub mod contact;
pub mod contact_duplicate;
pub mod contact_event;
pub mod export_job;
pub mod form_question;
pub mod invitation;
pub mod membership;
pub mod notification;
pub mod password_reset;
pub mod project;
pub mod project_allowed_origin;
pub mod server_secret;
pub mod visitor;
