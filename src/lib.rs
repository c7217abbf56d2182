//! The contacts service of a live-chat support product: a GraphQL API over
//! projects, agents and the contacts their visitors become.

pub mod access_cache;
pub mod bootstrap;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod file_modes;
pub mod geo;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod protection;
pub mod public_url;
pub mod pubsub;
pub mod read_connections;
pub mod readiness;
pub mod retention;
pub mod seed;
pub mod services;
pub mod startup;
pub mod storage;
pub mod telemetry;
