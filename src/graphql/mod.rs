//! The GraphQL schema: one module per feature, merged into the roots here.

pub mod arguments;
pub mod auth;
pub mod chats;
pub mod contact_updates;
pub mod contacts;
pub mod context;
pub mod cost;
pub mod depth;
pub mod errors;
pub mod export_choices;
pub mod exports;
pub mod forms;
pub mod guards;
pub mod introspection;
pub mod invitations;
pub mod loaders;
pub mod location;
pub mod notifications;
pub mod null_propagation;
pub mod passwords;
pub mod projects;
pub mod sessions;

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema};

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

pub fn build_schema(services: Services, limits: &Limits) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    );
    if !services.settings.introspection {
        builder = builder
            .extension(introspection::IntrospectionOff)
            .disable_introspection();
    }
    builder
        .data(loaders::Loaders::new(services.db.clone()))
        .data(services)
        .extension(depth::DepthLimit::new(limits.max_query_depth))
        .limit_complexity(limits.max_query_complexity)
        .extension(cost::RowCostLimit::new(
            cost::CostModel::of_served_schema(),
            limits.max_query_cost,
        ))
        // Registered after the cost limit so that it checks first: a page
        // size out of range is named as such, not as a costly document.
        .extension(arguments::ArgumentCheck::new(
            arguments::ArgumentRules::of_served_schema(),
        ))
        .limit_recursive_depth(32)
        .limit_directives(20)
        .finish()
}

/// The SDL of the served schema, as checked in at `schema.graphql`. The
/// scalars' `@specifiedBy` URLs, which introspection serves, are printed
/// too, so that the file and introspection tell tools the same.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl_with_options(SDLExportOptions::new().include_specified_by())
}
