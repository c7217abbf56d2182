//! The rules of the service, free of GraphQL and HTTP.

pub mod access;
pub mod agents;
pub mod auth;
pub mod chats;
pub mod contacts;
pub mod email;
pub mod events;
pub mod fields;
pub mod history;
pub mod ids;
pub mod projects;
