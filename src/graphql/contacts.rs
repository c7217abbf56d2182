//! The contacts section: a project's contacts listed, searched, filtered,
//! sorted and paged; one contact's detail; agents' edits and deletions.

use async_graphql::connection::PageInfo;
use async_graphql::{
    Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use entity::{contact, contact_event};

use crate::domain::access::Role;
use crate::domain::contact_list::{
    ContactFilter, ContactList, ContactOrder, ContactPage, Direction, FilterInput, ListedParts,
    PageArgs, PageRequest, SortField,
};
use crate::domain::contacts::{self, ChatCursor, ContactEdit, MAX_NESTED_PAGE, location_of};
use crate::domain::dates::{self, Side};
use crate::domain::events::{ContactChangeKind, ContactChanges, Event};
use crate::domain::form_sync::AttributeEdit;
use crate::domain::history;
use crate::domain::ids::parse_id;
use crate::domain::{duplicates, merge};
use crate::error::{AppError, AppResult};
use crate::graphql::chats::Chat;
use crate::graphql::context::{project_access, require_agent, services};
use crate::graphql::listed_contacts::{EdgeList, NodeList};
use crate::graphql::loaders::{FirstOf, Loaders};
use crate::graphql::location::{LocationInput, LocationView};

pub struct Contact(pub contact::Model);

/// A person who chatted with a project: one record per visitor, or per verified
/// identity, with what the form, the site and agents filled in.
#[Object]
impl Contact {
    /// The contact's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The project the contact belongs to.
    async fn project_id(&self) -> ID {
        ID(self.0.project_id.to_string())
    }

    /// The person's name, as the form, the site or an agent gave it.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The email address, lower-cased.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// The phone number in E.164 form (`+34612345678`).
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    /// The company the person works for.
    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }

    /// Answers to the project's custom form questions, by question key.
    async fn custom_attributes(&self) -> Json<serde_json::Value> {
        Json(self.0.custom_attributes.clone())
    }

    /// The address of the latest chat, as kept by the IP retention setting.
    async fn last_ip(&self) -> Option<&str> {
        self.0.last_ip.as_deref()
    }

    /// Where the contact is: located from the latest chat's address, or as an
    /// agent corrected it.
    async fn location(&self) -> Option<LocationView> {
        location_of(&self.0).map(LocationView::from)
    }

    /// Whether an agent corrected the location; lookups then leave it alone.
    async fn location_corrected(&self) -> bool {
        self.0.location_corrected
    }

    /// When the contact's first chat started.
    async fn first_seen_at(&self) -> DateTime<Utc> {
        self.0.first_seen_at
    }

    /// When the contact's latest chat started.
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.0.last_seen_at
    }

    /// When the contact was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When any of the contact's values last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The contact's chats, newest first, a page at a time (at most 100).
    /// For the next page, pass the `endCursor` of this one as `after`.
    async fn chats(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many chats, from 1 to 100.",
            default = 20,
            validator(minimum = 1, maximum = 100)
        )]
        first: u64,
        #[graphql(desc = "The `endCursor` of the previous page; the first page without it.")] after: Option<String>,
    ) -> Result<ChatConnection> {
        let (chats, has_next_page) = match after {
            None => first_chats(ctx, self.0.id, first).await?,
            Some(after) => {
                let after = ChatCursor::decode(&after, "after")?;
                contacts::chats_page(&services(ctx).db, self.0.id, first, after).await?
            }
        };
        Ok(ChatConnection::new(chats, has_next_page))
    }

    /// The chat the contact started last.
    async fn latest_chat(&self, ctx: &Context<'_>) -> Result<Option<Chat>> {
        let (chats, _) = first_chats(ctx, self.0.id, 1).await?;
        Ok(chats.into_iter().next().map(Chat))
    }

    /// Other contacts of the project with the same email or phone, which
    /// may be the same person: merge them (`mergeContacts`) or dismiss the
    /// pair (`dismissDuplicate`). At most 20.
    async fn possible_duplicates(&self, ctx: &Context<'_>) -> Result<Vec<Contact>> {
        let duplicates = ctx
            .data::<Loaders>()?
            .duplicates
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(duplicates.into_iter().map(Contact).collect())
    }

    /// Every recorded change to the contact, newest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many events, from 1 to 100.",
            default = 20,
            validator(minimum = 1, maximum = 100)
        )]
        first: u64,
        #[graphql(desc = "The `endCursor` of the previous page; the first page without it.")] after: Option<ID>,
    ) -> Result<ContactHistory> {
        let (events, has_next_page) = match after {
            None => {
                let key = FirstOf {
                    contact_id: self.0.id,
                    first,
                };
                ctx.data::<Loaders>()?
                    .history
                    .load_one(key)
                    .await?
                    .unwrap_or_default()
            }
            Some(after) => {
                let after = parse_id(&after, "after")?;
                let first = first.min(MAX_NESTED_PAGE);
                history::page(&services(ctx).db, self.0.id, first, Some(after)).await?
            }
        };
        Ok(ContactHistory {
            end_cursor: events.last().map(|event| ID(event.id.to_string())),
            events: events
                .into_iter()
                .map(ContactEvent::try_from)
                .collect::<AppResult<_>>()?,
            has_next_page,
        })
    }
}

async fn first_chats(
    ctx: &Context<'_>,
    contact_id: uuid::Uuid,
    first: u64,
) -> Result<(Vec<entity::chat::Model>, bool)> {
    let key = FirstOf { contact_id, first };
    Ok(ctx
        .data::<Loaders>()?
        .chats
        .load_one(key)
        .await?
        .unwrap_or_default())
}

/// A page of a contact's chats (a Relay connection).
#[derive(SimpleObject)]
pub struct ChatConnection {
    /// The chats of the page, newest first, each with its cursor.
    pub edges: Vec<ChatEdge>,
    /// Whether more chats follow, and the cursor to continue from.
    pub page_info: PageInfo,
}

impl ChatConnection {
    fn new(chats: Vec<entity::chat::Model>, has_next_page: bool) -> Self {
        let edges: Vec<ChatEdge> = chats
            .into_iter()
            .map(|chat| ChatEdge {
                cursor: ChatCursor::of(&chat).encode(),
                node: Chat(chat),
            })
            .collect();
        ChatConnection {
            page_info: PageInfo {
                // Pages are read forwards from the newest chat only.
                has_previous_page: false,
                has_next_page,
                start_cursor: edges.first().map(|edge| edge.cursor.clone()),
                end_cursor: edges.last().map(|edge| edge.cursor.clone()),
            },
            edges,
        }
    }
}

/// One chat of a page, with the cursor to continue after it.
#[derive(SimpleObject)]
pub struct ChatEdge {
    /// Pass as `after` to continue after this chat.
    pub cursor: String,
    /// The chat.
    pub node: Chat,
}

/// A page of a contact's history.
#[derive(SimpleObject)]
pub struct ContactHistory {
    /// The events of the page, newest first.
    pub events: Vec<ContactEvent>,
    /// Whether older events follow.
    pub has_next_page: bool,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<ID>,
}

/// One recorded change: who or what made it, when, and the field's old and
/// new value (none for a creation or deletion).
#[derive(SimpleObject)]
pub struct ContactEvent {
    /// The event's id.
    pub id: ID,
    /// What happened to the contact.
    pub kind: ContactEventKind,
    /// Who or what made the change.
    pub actor_type: ActorType,
    /// The agent, or the chat of the visitor, that made the change; null
    /// for the service itself.
    pub actor_id: Option<ID>,
    /// The changed field (`name`, `email`, `phone`, `company`, `location`,
    /// or a custom attribute's key); null for a creation or deletion.
    pub field: Option<String>,
    /// The value before the change; null when the field was empty.
    pub old_value: Option<Json<serde_json::Value>>,
    /// The value after the change; null when the field was cleared.
    pub new_value: Option<Json<serde_json::Value>>,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<contact_event::Model> for ContactEvent {
    type Error = AppError;

    fn try_from(event: contact_event::Model) -> AppResult<Self> {
        let (kind, actor_type) = history::kinds_of(&event)?;
        Ok(ContactEvent {
            id: ID(event.id.to_string()),
            kind: kind.into(),
            actor_type: actor_type.into(),
            actor_id: event.actor_id.map(|id| ID(id.to_string())),
            field: event.field,
            old_value: event.old_value.map(Json),
            new_value: event.new_value.map(Json),
            created_at: event.created_at,
        })
    }
}

/// What happened to a contact in one event of its history.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "history::EventKind")]
pub enum ContactEventKind {
    /// The contact was created, by a visitor's first chat.
    Created,
    /// A visitor's answer to the contact form filled a field.
    FormSync,
    /// An agent changed a field.
    AgentEdit,
    /// Another contact was merged into this one.
    Merge,
    /// The location changed: an IP lookup, or an agent's correction.
    LocationChange,
    /// The site's verified identity of the visitor filled fields.
    Identified,
    /// The contact was deleted.
    Deleted,
}

/// Who or what made a change to a contact.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "history::ActorType")]
pub enum ActorType {
    /// The visitor, through the chat's contact form (`actorId` is the chat).
    Visitor,
    /// An agent of the project (`actorId` is the agent).
    Agent,
    /// The service itself: IP lookups, merges by verified identity.
    System,
}

/// What the contacts list is sorted by.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ContactOrderField {
    /// When the contact was created.
    CreatedAt,
    /// When the contact's latest chat started.
    LastSeenAt,
    /// Contacts without a name come last, whichever the direction.
    Name,
    /// Contacts without an email come last, whichever the direction.
    Email,
}

/// Which way a sort goes.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderDirection {
    /// Smallest first: oldest, or A to Z.
    Asc,
    /// Largest first: newest, or Z to A.
    Desc,
}

/// How the list is sorted; the newest contacts first unless said otherwise.
#[derive(InputObject)]
pub struct ContactOrderInput {
    /// What to sort by; CREATED_AT unless given.
    #[graphql(default_with = "ContactOrderField::CreatedAt")]
    pub field: ContactOrderField,
    /// Which way; DESC (newest first) unless given.
    #[graphql(default_with = "OrderDirection::Desc")]
    pub direction: OrderDirection,
}

impl From<ContactOrderInput> for ContactOrder {
    fn from(input: ContactOrderInput) -> Self {
        ContactOrder {
            field: match input.field {
                ContactOrderField::CreatedAt => SortField::CreatedAt,
                ContactOrderField::LastSeenAt => SortField::LastSeenAt,
                ContactOrderField::Name => SortField::Name,
                ContactOrderField::Email => SortField::Email,
            },
            direction: match input.direction {
                OrderDirection::Asc => Direction::Asc,
                OrderDirection::Desc => Direction::Desc,
            },
        }
    }
}

/// Which contacts to list; every given condition must hold.
#[derive(InputObject, Default)]
pub struct ContactFilterInput {
    /// Part of the name, email or phone, in any case.
    pub search: Option<String>,
    /// Created at or after this RFC 3339 time, or from the start of this
    /// date (YYYY-MM-DD) in `timeZone`.
    pub created_from: Option<String>,
    /// Created before this RFC 3339 time, or up to the end of this date
    /// (the day is included) in `timeZone`.
    pub created_to: Option<String>,
    /// The IANA time zone plain dates are read in; UTC when absent.
    pub time_zone: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. ES.
    pub country_code: Option<String>,
    /// The state's name or code, e.g. Andalusia or AN.
    pub state: Option<String>,
    /// True for contacts with an email, false for those without.
    pub has_email: Option<bool>,
    /// True for contacts with a phone, false for those without.
    pub has_phone: Option<bool>,
}

impl ContactFilterInput {
    /// The filter with its dates read by the one date rule.
    pub(crate) fn into_filter(self) -> AppResult<FilterInput> {
        let zone = dates::parse_zone(self.time_zone.as_deref(), "filter.timeZone")?;
        let bound = |raw: Option<String>, field: &str, side: Side| {
            raw.map(|raw| dates::parse_bound(&raw, field, zone, side))
                .transpose()
        };
        Ok(FilterInput {
            search: self.search,
            created_from: bound(self.created_from, "filter.createdFrom", Side::Start)?,
            created_to: bound(self.created_to, "filter.createdTo", Side::End)?,
            country_code: self.country_code,
            state: self.state,
            has_email: self.has_email,
            has_phone: self.has_phone,
        })
    }
}

pub struct ContactConnection {
    list: ContactList,
    request: PageRequest,
    edges: Vec<ContactEdge>,
    has_next_page: bool,
    has_previous_page: bool,
}

impl ContactConnection {
    fn new(list: ContactList, request: PageRequest, page: ContactPage) -> Self {
        ContactConnection {
            list,
            request,
            edges: page
                .contacts
                .into_iter()
                .map(|(contact, cursor)| ContactEdge {
                    cursor: cursor.encode(),
                    node: Contact(contact),
                })
                .collect(),
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
        }
    }
}

/// One contact of a page, with the cursor to continue from it.
#[derive(SimpleObject)]
pub struct ContactEdge {
    /// Pass as `after` (or `before`) to continue from this contact.
    pub cursor: String,
    /// The contact.
    pub node: Contact,
}

/// A page of a project's contacts (a Relay connection).
#[Object]
impl ContactConnection {
    /// The contacts of the page, in the list's order, each with its cursor.
    async fn edges(&self) -> EdgeList<'_> {
        EdgeList(&self.edges)
    }

    /// The contacts of the page, without cursors.
    async fn nodes(&self) -> NodeList<'_> {
        NodeList(&self.edges)
    }

    /// Whether more contacts lie ahead (and behind), and the cursors to go on
    /// from.
    async fn page_info(&self, ctx: &Context<'_>) -> Result<PageInfo> {
        // The page tells what lies ahead of it; what lies behind costs one
        // more (indexed) statement, spent only when asked for.
        let forwards = matches!(self.request, PageRequest::Forward { .. });
        let wanted = if forwards {
            "hasPreviousPage"
        } else {
            "hasNextPage"
        };
        let behind = ctx.look_ahead().field(wanted).exists()
            && self
                .list
                .has_more_behind(&services(ctx).reads, &self.request)
                .await?;
        Ok(PageInfo {
            has_previous_page: self.has_previous_page || (forwards && behind),
            has_next_page: self.has_next_page || (!forwards && behind),
            start_cursor: self.edges.first().map(|edge| edge.cursor.clone()),
            end_cursor: self.edges.last().map(|edge| edge.cursor.clone()),
        })
    }

    /// How many contacts match the filter, over all pages. Counting costs
    /// a statement of its own, run only when this field is asked for.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(self.list.count(&services(ctx).reads).await?)
    }
}

/// The parts of each contact that the page's selection shows, through
/// `edges { node }` and `nodes`, fragments included. A field not known
/// here reads everything.
fn listed_parts(ctx: &Context<'_>) -> ListedParts {
    let connection = ctx.look_ahead();
    let mut parts = ListedParts {
        location: false,
        rest: false,
    };
    let nodes = [
        connection.field("edges").field("node"),
        connection.field("nodes"),
    ];
    for node in nodes.iter().flat_map(|node| node.selection_fields()) {
        for field in node.selection_set() {
            match field.name() {
                // The list's own columns, or the id alone (the nested
                // lists load by contact id).
                "__typename" | "id" | "projectId" | "name" | "email" | "phone" | "createdAt"
                | "lastSeenAt" | "chats" | "latestChat" | "possibleDuplicates" | "history" => {}
                "location" => parts.location = true,
                _ => parts.rest = true,
            }
        }
    }
    parts
}

#[derive(Default)]
pub struct ContactQuery;

#[Object]
impl ContactQuery {
    /// The contacts of a project the caller is a member of. Page forwards
    /// with `first`/`after` or backwards with `last`/`before` (at most 100).
    #[allow(clippy::too_many_arguments)]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project, which the caller must be a member of.")] project_id: ID,
        #[graphql(
            desc = "How many contacts forwards, from 0 to 100; 20 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(desc = "The cursor of the contact to continue after (an `endCursor`).")]
        after: Option<String>,
        #[graphql(desc = "How many contacts backwards, from 0 to 100.")] last: Option<i32>,
        #[graphql(desc = "The cursor of the contact to continue before (a `startCursor`).")] before: Option<String>,
        #[graphql(desc = "Which contacts to list; all of the project's without it.")]
        filter: Option<ContactFilterInput>,
        #[graphql(desc = "How to sort; newest first without it.")] order_by: Option<
            ContactOrderInput,
        >,
    ) -> Result<ContactConnection> {
        let access = project_access(ctx, &project_id, Role::Agent).await?;
        let order = order_by.map(ContactOrder::from).unwrap_or_default();
        let args = PageArgs {
            first,
            after: after.as_deref(),
            last,
            before: before.as_deref(),
        };
        let request = PageRequest::parse(args, order)?;
        let filter = ContactFilter::parse(filter.unwrap_or_default().into_filter()?)?;
        let list = ContactList::new(&access, filter, order).reading(listed_parts(ctx));
        let page = list.page(&services(ctx).reads, &request).await?;
        Ok(ContactConnection::new(list, request, page))
    }

    /// One contact of a project the caller is a member of.
    async fn contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact's id.")] id: ID,
    ) -> Result<Contact> {
        let agent = require_agent(ctx)?;
        let contact_id = parse_id(&id, "id")?;
        let (contact, _) =
            contacts::find_for_agent(&services(ctx).db, agent.id, contact_id, Role::Agent).await?;
        Ok(Contact(contact))
    }
}

/// An agent's changes to a contact. A field left out stays as it is; a
/// field set to null is cleared.
#[derive(InputObject)]
pub struct UpdateContactInput {
    /// The person's name.
    pub name: MaybeUndefined<String>,
    /// Stored lower-cased. Another contact with the same email becomes a
    /// possible duplicate.
    pub email: MaybeUndefined<String>,
    /// Stored in E.164; a national number is read in the contact's country.
    pub phone: MaybeUndefined<String>,
    /// The company the person works for.
    pub company: MaybeUndefined<String>,
    /// A corrected location; later IP lookups will not overwrite it.
    pub location: Option<LocationInput>,
    /// Corrected custom attributes, each validated like the answer to the
    /// form question that fills it; attributes left out stay as they are.
    /// Like the other fields, a value set here is the agent's: the form
    /// never overwrites it.
    pub custom_attributes: Option<Vec<CustomAttributeInput>>,
}

/// One custom attribute's new value.
#[derive(InputObject)]
pub struct CustomAttributeInput {
    /// The attribute's key, as a form question fills it (`plan`).
    pub key: String,
    /// The value as a visitor would answer the question (`"pro"`, `"3"`,
    /// `"true"`); null clears the attribute.
    pub value: Option<String>,
}

fn edit_of(value: MaybeUndefined<String>) -> Option<Option<String>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(value) => Some(Some(value)),
    }
}

impl From<UpdateContactInput> for ContactEdit {
    fn from(input: UpdateContactInput) -> Self {
        ContactEdit {
            name: edit_of(input.name),
            email: edit_of(input.email),
            phone: edit_of(input.phone),
            company: edit_of(input.company),
            location: input.location.map(Into::into),
            custom_attributes: input
                .custom_attributes
                .unwrap_or_default()
                .into_iter()
                .map(|attribute| AttributeEdit {
                    key: attribute.key,
                    value: attribute.value,
                })
                .collect(),
        }
    }
}

/// What `deleteContact` removed.
#[derive(SimpleObject)]
pub struct DeleteContactPayload {
    /// The id the deleted contact had.
    pub deleted_contact_id: ID,
    /// The project it belonged to.
    pub project_id: ID,
}

#[derive(Default)]
pub struct ContactMutation;

#[Object]
impl ContactMutation {
    /// Changes a contact's fields or location; recorded in its history.
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to change.")] id: ID,
        #[graphql(desc = "The changes.")] input: UpdateContactInput,
    ) -> Result<Contact> {
        let agent = require_agent(ctx)?;
        let services = services(ctx);
        let contact_id = parse_id(&id, "id")?;
        let (_, access) =
            contacts::find_for_agent(&services.db, agent.id, contact_id, Role::Agent).await?;
        let edited =
            contacts::update_contact(&services.db, &access, contact_id, input.into()).await?;
        services.bus.publish_contact_changes(edited.changes);
        Ok(Contact(edited.contact))
    }

    /// Merges `sourceId` into `targetId`: the target's values win where
    /// set, the source fills the gaps, chats and history move over, and the
    /// source is removed. Two contacts with different verified identities
    /// cannot be merged.
    async fn merge_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact that stays.")] target_id: ID,
        #[graphql(desc = "The contact merged into the target and removed.")] source_id: ID,
    ) -> Result<Contact> {
        let agent = require_agent(ctx)?;
        let services = services(ctx);
        let target_id = parse_id(&target_id, "targetId")?;
        let source_id = parse_id(&source_id, "sourceId")?;
        let merged = merge::merge_contacts(&services.db, agent.id, target_id, source_id).await?;
        services.bus.publish_contact_changes(merged.changes());
        Ok(Contact(merged.survivor))
    }

    /// Says that two possible duplicates are different people; the pair is
    /// no longer shown. Returns the first contact.
    async fn dismiss_duplicate(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One contact of the pair.")] contact_id: ID,
        #[graphql(desc = "The other contact of the pair.")] other_id: ID,
    ) -> Result<Contact> {
        let agent = require_agent(ctx)?;
        let services = services(ctx);
        let contact_id = parse_id(&contact_id, "contactId")?;
        let other_id = parse_id(&other_id, "otherId")?;
        let (contact, access) =
            contacts::find_for_agent(&services.db, agent.id, contact_id, Role::Agent).await?;
        duplicates::dismiss(&services.db, &access, contact_id, other_id).await?;
        let mut changes = ContactChanges::default();
        changes.record(access.project_id(), contact_id, ContactChangeKind::Updated);
        changes.record(access.project_id(), other_id, ContactChangeKind::Updated);
        services.bus.publish_contact_changes(changes);
        Ok(Contact(contact))
    }

    /// Deletes a contact and its chats; the deletion is recorded.
    async fn delete_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to delete.")] id: ID,
    ) -> Result<DeleteContactPayload> {
        let agent = require_agent(ctx)?;
        let services = services(ctx);
        let contact_id = parse_id(&id, "id")?;
        let (_, access) =
            contacts::find_for_agent(&services.db, agent.id, contact_id, Role::Agent).await?;
        let change = contacts::delete_contact(&services.db, &access, contact_id).await?;
        let payload = DeleteContactPayload {
            deleted_contact_id: ID(change.contact_id.to_string()),
            project_id: ID(change.project_id.to_string()),
        };
        services.bus.publish(Event::ContactChanged(change));
        Ok(payload)
    }
}
