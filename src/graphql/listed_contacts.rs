//! A page's contacts written in one pass over its rows.
//!
//! async-graphql resolves every field of every contact as a future of its
//! own and joins them per object, which made resolving the largest part of
//! a page's CPU time. The `edges` and `nodes` of a contacts page plan their
//! selection once instead (the contact's own values, its location, the
//! edge's cursor, fragments on those types) and write each contact from the
//! plan as JSON text (`written_json`), with the same scalar conversions the
//! objects use. A selection the
//! plan does not cover (a nested list, a directive, a fragment on another
//! type, a response key selected twice, which the executor would merge) is
//! resolved by async-graphql as before, and so is a list on the way to
//! which a field shares its response key with another: the executor merges
//! those fields' answers object by object, which written text is not.

use std::borrow::Cow;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::resolve_list;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, QueryPathSegment, ScalarType, ServerResult,
    Value,
};
use entity::contact;
use uuid::Uuid;

use crate::domain::contacts::location_of;
use crate::geo::Location;
use crate::graphql::contacts::{Contact, ContactEdge};
use crate::graphql::written_json::{write_serialised, written};

/// About what one contact's JSON takes, to size the buffer once.
const WRITTEN_PER_CONTACT: usize = 320;

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
        written_or_resolved(ctx, field, self.0, plan, write_edge_field, |edge| edge).await
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
        let write = |field: &ContactField, edge: &ContactEdge, out: &mut Vec<u8>| {
            write_contact_field(field, &edge.node.0, out)
        };
        written_or_resolved(ctx, field, self.0, plan, write, |edge| &edge.node).await
    }
}

/// Each edge written from `plan`, or, without one, resolved by
/// async-graphql as `shown_of(edge)`.
async fn written_or_resolved<'a, F, T: OutputType + 'a>(
    ctx: &ContextSelectionSet<'_>,
    field: &Positioned<Field>,
    edges: &'a [ContactEdge],
    plan: Option<Plan<F>>,
    write_field: impl Fn(&F, &ContactEdge, &mut Vec<u8>),
    shown_of: impl Fn(&'a ContactEdge) -> T,
) -> ServerResult<Value> {
    match plan.filter(|_| !merged_on_the_way(ctx)) {
        Some(plan) => Ok(written(edges.len() * WRITTEN_PER_CONTACT, |out| {
            out.push(b'[');
            for (at, edge) in edges.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                write_object(&plan, out, |field, out| write_field(field, edge, out));
            }
            out.push(b']');
        })),
        None => resolve_list(ctx, field, edges.iter().map(shown_of), Some(edges.len())).await,
    }
}

/// Whether a field on the way from the operation to this list, the list
/// included, shares its response key with another field of its selection.
fn merged_on_the_way(ctx: &ContextSelectionSet<'_>) -> bool {
    let mut keys = Vec::new();
    let mut node = ctx.path_node.as_ref();
    while let Some(path) = node {
        if let QueryPathSegment::Name(key) = path.segment {
            keys.push(key);
        }
        node = path.parent;
    }
    let mut set = &ctx.query_env.operation.node.selection_set.node;
    for key in keys.into_iter().rev() {
        let mut fields = Vec::new();
        fields_keyed(ctx, set, key, &mut fields);
        match fields.as_slice() {
            [field] => set = &field.selection_set.node,
            _ => return true,
        }
    }
    false
}

/// The fields of `set` answered under `key`, through its fragments.
fn fields_keyed<'d>(
    ctx: &'d ContextSelectionSet<'_>,
    set: &'d SelectionSet,
    key: &str,
    found: &mut Vec<&'d Field>,
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                if field.node.response_key().node == key {
                    found.push(&field.node);
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = ctx.query_env.fragments.get(&spread.node.fragment_name.node)
                {
                    fields_keyed(ctx, &fragment.node.selection_set.node, key, found);
                }
            }
            Selection::InlineFragment(inline) => {
                fields_keyed(ctx, &inline.node.selection_set.node, key, found);
            }
        }
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

fn write_object<F>(plan: &Plan<F>, out: &mut Vec<u8>, write_field: impl Fn(&F, &mut Vec<u8>)) {
    out.push(b'{');
    for (at, item) in plan.iter().enumerate() {
        if at > 0 {
            out.push(b',');
        }
        // A response key is a GraphQL name (letters, digits and `_`, as the
        // parser accepts them): nothing in it needs escaping.
        out.push(b'"');
        out.extend_from_slice(item.key.as_bytes());
        out.extend_from_slice(b"\":");
        write_field(&item.field, out);
    }
    out.push(b'}');
}

fn write_type_name<T: OutputType>(out: &mut Vec<u8>) {
    write_serialised(T::type_name().as_ref(), out);
}

/// A scalar as its type's `to_value` makes it, for the conversions that
/// are not plain text.
fn write_scalar(value: &impl ScalarType, out: &mut Vec<u8>) {
    write_serialised(&value.to_value(), out);
}

fn write_id(id: &Uuid, out: &mut Vec<u8>) {
    let mut text = Uuid::encode_buffer();
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut text).as_bytes());
    out.push(b'"');
}

fn write_text(value: &Option<String>, out: &mut Vec<u8>) {
    match value {
        Some(text) => write_serialised(text.as_str(), out),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_optional(value: Option<&impl ScalarType>, out: &mut Vec<u8>) {
    match value {
        Some(value) => write_scalar(value, out),
        None => out.extend_from_slice(b"null"),
    }
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

fn write_edge_field(field: &EdgeField, edge: &ContactEdge, out: &mut Vec<u8>) {
    match field {
        EdgeField::Typename => write_type_name::<ContactEdge>(out),
        EdgeField::Cursor => write_serialised(edge.cursor.as_str(), out),
        EdgeField::Node(plan) => write_object(plan, out, |field, out| {
            write_contact_field(field, &edge.node.0, out)
        }),
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

fn write_contact_field(field: &ContactField, contact: &contact::Model, out: &mut Vec<u8>) {
    match field {
        ContactField::Typename => write_type_name::<Contact>(out),
        ContactField::Id => write_id(&contact.id, out),
        ContactField::ProjectId => write_id(&contact.project_id, out),
        ContactField::Name => write_text(&contact.name, out),
        ContactField::Email => write_text(&contact.email, out),
        ContactField::Phone => write_text(&contact.phone, out),
        ContactField::Company => write_text(&contact.company, out),
        ContactField::CustomAttributes => {
            // As the `Json` scalar outputs it: through `Value`.
            let value = async_graphql::to_value(&contact.custom_attributes).unwrap_or_default();
            write_serialised(&value, out)
        }
        ContactField::LastIp => write_text(&contact.last_ip, out),
        ContactField::Location(plan) => match location_of(contact) {
            Some(location) => write_object(plan, out, |field, out| {
                write_location_field(field, &location, out)
            }),
            None => out.extend_from_slice(b"null"),
        },
        ContactField::LocationCorrected => write_scalar(&contact.location_corrected, out),
        ContactField::FirstSeenAt => write_scalar(&contact.first_seen_at, out),
        ContactField::LastSeenAt => write_scalar(&contact.last_seen_at, out),
        ContactField::CreatedAt => write_scalar(&contact.created_at, out),
        ContactField::UpdatedAt => write_scalar(&contact.updated_at, out),
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

fn write_location_field(field: &LocationField, location: &Location, out: &mut Vec<u8>) {
    match field {
        LocationField::Typename => write_type_name::<crate::graphql::location::LocationView>(out),
        LocationField::CountryCode => write_text(&location.country_code, out),
        LocationField::CountryName => write_text(&location.country_name, out),
        LocationField::StateName => write_text(&location.state_name, out),
        LocationField::StateCode => write_text(&location.state_code, out),
        LocationField::ProvinceName => write_text(&location.province_name, out),
        LocationField::ProvinceCode => write_text(&location.province_code, out),
        LocationField::City => write_text(&location.city, out),
        LocationField::PostalCode => write_text(&location.postal_code, out),
        LocationField::TimeZone => write_text(&location.time_zone, out),
        LocationField::Latitude => write_optional(location.latitude.as_ref(), out),
        LocationField::Longitude => write_optional(location.longitude.as_ref(), out),
        LocationField::AccuracyRadiusKm => {
            write_optional(location.accuracy_radius_km.as_ref(), out)
        }
    }
}
