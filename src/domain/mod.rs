//! The rules of the service, free of GraphQL and HTTP.

pub mod access;
pub mod agents;
pub mod auth;
pub mod chats;
pub mod contact_list;
pub mod contact_updates;
pub mod contacts;
pub mod dates;
pub mod duplicates;
pub mod email;
pub mod events;
pub mod exports;
pub mod fields;
pub mod form_sync;
pub mod forms;
pub mod history;
pub mod identity;
pub mod ids;
pub mod locks;
pub mod merge;
pub mod notifications;
pub mod projects;
pub mod visitors;
