//! The GraphQL schema: one module per feature, merged into the roots here.

pub mod arguments;
pub mod auth;
pub mod chats;
pub mod contact_updates;
pub mod contacts;
pub mod context;
pub mod cost;
pub mod depth;
pub mod document_checks;
pub mod errors;
pub mod export_choices;
pub mod exports;
pub mod forms;
pub mod guards;
pub mod introspection;
pub mod invitations;
pub mod listed_contacts;
pub mod loaders;
pub mod location;
pub mod notifications;
pub mod null_propagation;
pub mod operation;
pub mod passwords;
pub mod projects;
pub mod root_field_spans;
pub mod sessions;
pub mod written_json;

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema, SchemaBuilder};

use crate::config::Limits;
use crate::services::Services;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    auth::AuthQuery,
    projects::ProjectQuery,
    contacts::ContactQuery,
    forms::FormQuery,
    exports::ExportQuery,
    notifications::NotificationQuery,
    sessions::SessionQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    auth::AuthMutation,
    projects::ProjectMutation,
    chats::ChatMutation,
    contacts::ContactMutation,
    forms::FormMutation,
    exports::ExportMutation,
    notifications::NotificationMutation,
    invitations::InvitationMutation,
    passwords::PasswordMutation,
    sessions::SessionMutation,
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    projects::ProjectSubscription,
    contact_updates::ContactSubscription,
    exports::ExportSubscription,
    notifications::NotificationSubscription,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema's types, described for the people who read them in the
/// playground's Docs panel. The scalars async-graphql provides carry texts
/// written for Rust programmers; they are replaced here, in both the served
/// schema and its SDL.
fn described_schema() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .override_output_type_description::<chrono::DateTime<chrono::Utc>>(DATE_TIME_DESCRIPTION)
    .override_output_type_description::<async_graphql::Json<serde_json::Value>>(JSON_DESCRIPTION)
}

const DATE_TIME_DESCRIPTION: &str = "A point in time, as an RFC 3339 string with its \
offset, e.g. `2026-12-01T16:40:00Z`; answers are always in UTC. Date inputs that take \
plain dates are strings, and say so.";

const JSON_DESCRIPTION: &str = "Any JSON value: an object of custom attributes by \
key, or a history event's old or new value (a string, a number, a boolean, or a \
location object).";

pub fn build_schema(services: Services, limits: &Limits) -> AppSchema {
    let mut builder = described_schema();
    if crate::telemetry::traces_enabled() {
        builder = builder.extension(root_field_spans::RootFieldSpans);
    }
    if !services.settings.introspection {
        builder = builder
            .extension(introspection::IntrospectionOff)
            .disable_introspection();
    }
    builder
        .data(loaders::Loaders::new(services.db.clone()))
        .data(services)
        // Depth, argument values and row cost: `document_checks`, in the
        // request pipeline.
        .limit_complexity(limits.max_query_complexity)
        .limit_recursive_depth(32)
        .limit_directives(20)
        .finish()
}

/// The SDL of the served schema, as checked in at `schema.graphql`. The
/// scalars' `@specifiedBy` URLs, which introspection serves, are printed
/// too, so that the file and introspection tell tools the same.
pub fn sdl() -> String {
    described_schema()
        .finish()
        .sdl_with_options(SDLExportOptions::new().include_specified_by())
}
