//! The server driven over HTTP and websockets, as its clients drive it.
//! Runs on SQLite, or on PostgreSQL when TEST_DATABASE_URL is set.

mod access_cache;
mod accounts;
mod arguments;
mod auth;
mod authorization;
mod batching;
mod chats;
mod contacts;
mod cost;
mod export_files;
mod export_jobs;
mod exports;
mod forms;
mod fuzz;
mod graphql_over_http;
mod hardening;
mod health;
mod helpers;
mod limits;
mod log_format;
mod metrics;
mod operator_settings;
mod parse_bombs;
mod playground;
mod projects;
mod read_connections;
mod request_logs;
mod response_shape;
mod retention;
mod schema;
mod server_process;
mod sessions;
mod shared_limits;
mod spreadsheet_engine;
mod statements;
mod subscriptions;
mod traces;
mod visitor_trust;
mod websocket_protocol;

#[allow(dead_code)]
#[path = "../support/geo_fixture.rs"]
mod geo_fixture;

#[allow(dead_code)]
#[path = "../support/s3_server.rs"]
mod s3_server;

#[allow(dead_code)]
#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
