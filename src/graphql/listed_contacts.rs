//! A page's contacts written in one pass over its rows.
//!
//! async-graphql resolves every field of every contact as a future of its
//! own and joins them per object, which made resolving the largest part of
//! a page's CPU time. The `edges` and `nodes` of a contacts page plan their
//! selection once instead (the contact's own values, its location, the
//! edge's cursor, fragments on those types) and write each contact from the
//! plan, with the same scalar conversions the objects use. A selection the
//! plan does not cover (a nested list, a directive, a fragment on another
//! type, a response key selected twice, which the executor would merge) is
//! resolved by async-graphql as before.

use std::borrow::Cow;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::resolve_list;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ScalarType, ServerResult, Value,
};
use entity::contact;

use crate::domain::contacts::location_of;
use crate::geo::Location;
use crate::graphql::contacts::{Contact, ContactEdge};

/// The `edges` of a contacts page.
pub struct EdgeList<'a>(pub &'a [ContactEdge]);

/// The `nodes` of a contacts page: its edges' contacts.
pub struct NodeList<'a>(pub &'a [ContactEdge]);

/// The type a list shows in the schema: the same as the plain list's.
macro_rules! shown_as {
    ($list:ty) => {
        fn type_name() -> Cow<'static, str> {
            <$list as OutputType>::type_name()
        }

        fn qualified_type_name() -> String {
            <$list as OutputType>::qualified_type_name()
        }

        fn create_type_info(registry: &mut Registry) -> String {
            <$list as OutputType>::create_type_info(registry)
        }
    };
}

impl OutputType for EdgeList<'_> {
    shown_as!(Vec<ContactEdge>);

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let plan = plan_of::<ContactEdge, _>(ctx, &ctx.item.node, &edge_field);
        written_or_resolved(ctx, field, self.0, plan, edge_value, |edge| edge).await
    }
}

impl OutputType for NodeList<'_> {
    shown_as!(Vec<Contact>);

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let plan = plan_of::<Contact, _>(ctx, &ctx.item.node, &contact_field);
        let value_of =
            |field: &ContactField, edge: &ContactEdge| contact_value(field, &edge.node.0);
        written_or_resolved(ctx, field, self.0, plan, value_of, |edge| &edge.node).await
    }
}

/// Each edge written from `plan`, or, without one, resolved by
/// async-graphql as `shown_of(edge)`.
async fn written_or_resolved<'a, F, T: OutputType + 'a>(
    ctx: &ContextSelectionSet<'_>,
    field: &Positioned<Field>,
    edges: &'a [ContactEdge],
    plan: Option<Plan<F>>,
    value_of: impl Fn(&F, &ContactEdge) -> Value,
    shown_of: impl Fn(&'a ContactEdge) -> T,
) -> ServerResult<Value> {
    match plan {
        Some(plan) => Ok(Value::List(
            edges
                .iter()
                .map(|edge| object(&plan, |field| value_of(field, edge)))
                .collect(),
        )),
        None => resolve_list(ctx, field, edges.iter().map(shown_of), Some(edges.len())).await,
    }
}

/// One response key of an object and what goes under it.
struct Planned<F> {
    key: Name,
    field: F,
}

type Plan<F> = Vec<Planned<F>>;

/// The plan of `set`, selected on the object type `T`; `None` when a
/// selection in it is not one the plan covers, or when `@skip` or
/// `@include` left it empty (the executor answers `null` for an object
/// without fields).
fn plan_of<T: OutputType, F>(
    ctx: &ContextSelectionSet<'_>,
    set: &SelectionSet,
    field_of: &impl Fn(&ContextSelectionSet<'_>, &Field) -> Option<F>,
) -> Option<Plan<F>> {
    let mut plan = Vec::new();
    add_selections(ctx, set, &T::type_name(), field_of, &mut plan)?;
    (!plan.is_empty()).then_some(plan)
}

fn add_selections<F>(
    ctx: &ContextSelectionSet<'_>,
    set: &SelectionSet,
    type_name: &str,
    field_of: &impl Fn(&ContextSelectionSet<'_>, &Field) -> Option<F>,
    plan: &mut Plan<F>,
) -> Option<()> {
    // async-graphql has taken `@skip` and `@include` out of the document
    // before executing it: a directive still here is one that would run.
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                let key = &field.response_key().node;
                if !field.directives.is_empty() || plan.iter().any(|item| item.key == *key) {
                    return None;
                }
                let planned = field_of(ctx, field)?;
                plan.push(Planned {
                    key: key.clone(),
                    field: planned,
                });
            }
            Selection::FragmentSpread(spread) => {
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                let fragment = &fragment.node;
                if !spread.node.directives.is_empty()
                    || !fragment.directives.is_empty()
                    || fragment.type_condition.node.on.node != type_name
                {
                    return None;
                }
                add_selections(ctx, &fragment.selection_set.node, type_name, field_of, plan)?;
            }
            Selection::InlineFragment(inline) => {
                let inline = &inline.node;
                let on_this_type = inline
                    .type_condition
                    .as_ref()
                    .is_none_or(|condition| condition.node.on.node == type_name);
                if !inline.directives.is_empty() || !on_this_type {
                    return None;
                }
                add_selections(ctx, &inline.selection_set.node, type_name, field_of, plan)?;
            }
        }
    }
    Some(())
}

fn object<F>(plan: &Plan<F>, value_of: impl Fn(&F) -> Value) -> Value {
    Value::Object(
        plan.iter()
            .map(|item| (item.key.clone(), value_of(&item.field)))
            .collect(),
    )
}

fn type_name_value<T: OutputType>() -> Value {
    Value::String(T::type_name().into_owned())
}

enum EdgeField {
    Typename,
    Cursor,
    Node(Plan<ContactField>),
}

fn edge_field(ctx: &ContextSelectionSet<'_>, field: &Field) -> Option<EdgeField> {
    Some(match field.name.node.as_str() {
        "__typename" => EdgeField::Typename,
        "cursor" => EdgeField::Cursor,
        "node" => EdgeField::Node(plan_of::<Contact, _>(
            ctx,
            &field.selection_set.node,
            &contact_field,
        )?),
        _ => return None,
    })
}

fn edge_value(field: &EdgeField, edge: &ContactEdge) -> Value {
    match field {
        EdgeField::Typename => type_name_value::<ContactEdge>(),
        EdgeField::Cursor => Value::String(edge.cursor.clone()),
        EdgeField::Node(plan) => object(plan, |field| contact_value(field, &edge.node.0)),
    }
}

/// The fields of `Contact` read from its row alone; the nested lists
/// (`chats`, `latestChat`, `possibleDuplicates`, `history`) load through
/// async-graphql.
enum ContactField {
    Typename,
    Id,
    ProjectId,
    Name,
    Email,
    Phone,
    Company,
    CustomAttributes,
    LastIp,
    Location(Plan<LocationField>),
    LocationCorrected,
    FirstSeenAt,
    LastSeenAt,
    CreatedAt,
    UpdatedAt,
}

fn contact_field(ctx: &ContextSelectionSet<'_>, field: &Field) -> Option<ContactField> {
    Some(match field.name.node.as_str() {
        "__typename" => ContactField::Typename,
        "id" => ContactField::Id,
        "projectId" => ContactField::ProjectId,
        "name" => ContactField::Name,
        "email" => ContactField::Email,
        "phone" => ContactField::Phone,
        "company" => ContactField::Company,
        "customAttributes" => ContactField::CustomAttributes,
        "lastIp" => ContactField::LastIp,
        "location" => ContactField::Location(plan_of::<crate::graphql::location::LocationView, _>(
            ctx,
            &field.selection_set.node,
            &location_field,
        )?),
        "locationCorrected" => ContactField::LocationCorrected,
        "firstSeenAt" => ContactField::FirstSeenAt,
        "lastSeenAt" => ContactField::LastSeenAt,
        "createdAt" => ContactField::CreatedAt,
        "updatedAt" => ContactField::UpdatedAt,
        _ => return None,
    })
}

fn contact_value(field: &ContactField, contact: &contact::Model) -> Value {
    match field {
        ContactField::Typename => type_name_value::<Contact>(),
        ContactField::Id => Value::String(contact.id.to_string()),
        ContactField::ProjectId => Value::String(contact.project_id.to_string()),
        ContactField::Name => text(&contact.name),
        ContactField::Email => text(&contact.email),
        ContactField::Phone => text(&contact.phone),
        ContactField::Company => text(&contact.company),
        ContactField::CustomAttributes => {
            async_graphql::to_value(&contact.custom_attributes).unwrap_or_default()
        }
        ContactField::LastIp => text(&contact.last_ip),
        ContactField::Location(plan) => match location_of(contact) {
            Some(location) => object(plan, |field| location_value(field, &location)),
            None => Value::Null,
        },
        ContactField::LocationCorrected => Value::Boolean(contact.location_corrected),
        ContactField::FirstSeenAt => contact.first_seen_at.to_value(),
        ContactField::LastSeenAt => contact.last_seen_at.to_value(),
        ContactField::CreatedAt => contact.created_at.to_value(),
        ContactField::UpdatedAt => contact.updated_at.to_value(),
    }
}

enum LocationField {
    Typename,
    CountryCode,
    CountryName,
    StateName,
    StateCode,
    ProvinceName,
    ProvinceCode,
    City,
    PostalCode,
    TimeZone,
    Latitude,
    Longitude,
    AccuracyRadiusKm,
}

fn location_field(_: &ContextSelectionSet<'_>, field: &Field) -> Option<LocationField> {
    Some(match field.name.node.as_str() {
        "__typename" => LocationField::Typename,
        "countryCode" => LocationField::CountryCode,
        "countryName" => LocationField::CountryName,
        "stateName" => LocationField::StateName,
        "stateCode" => LocationField::StateCode,
        "provinceName" => LocationField::ProvinceName,
        "provinceCode" => LocationField::ProvinceCode,
        "city" => LocationField::City,
        "postalCode" => LocationField::PostalCode,
        "timeZone" => LocationField::TimeZone,
        "latitude" => LocationField::Latitude,
        "longitude" => LocationField::Longitude,
        "accuracyRadiusKm" => LocationField::AccuracyRadiusKm,
        _ => return None,
    })
}

fn location_value(field: &LocationField, location: &Location) -> Value {
    let optional = |value: Option<Value>| value.unwrap_or(Value::Null);
    match field {
        LocationField::Typename => type_name_value::<crate::graphql::location::LocationView>(),
        LocationField::CountryCode => text(&location.country_code),
        LocationField::CountryName => text(&location.country_name),
        LocationField::StateName => text(&location.state_name),
        LocationField::StateCode => text(&location.state_code),
        LocationField::ProvinceName => text(&location.province_name),
        LocationField::ProvinceCode => text(&location.province_code),
        LocationField::City => text(&location.city),
        LocationField::PostalCode => text(&location.postal_code),
        LocationField::TimeZone => text(&location.time_zone),
        LocationField::Latitude => optional(location.latitude.map(|value| value.to_value())),
        LocationField::Longitude => optional(location.longitude.map(|value| value.to_value())),
        LocationField::AccuracyRadiusKm => {
            optional(location.accuracy_radius_km.map(|value| value.to_value()))
        }
    }
}

fn text(value: &Option<String>) -> Value {
    match value {
        Some(text) => Value::String(text.clone()),
        None => Value::Null,
    }
}
