//! The contacts list of a project: filters, search, sort orders, and keyset
//! pagination whose cost does not grow with the depth of the page.
//!
//! A list is walked in *segments*. Sorting by a column that may be empty
//! (name, email) has two: the contacts that have a value, ordered by
//! `(value, id)`, then the contacts without one, ordered by `id`. Empty
//! values thus come last in both directions on SQLite and PostgreSQL alike
//! (the engines disagree on where NULL sorts), and every segment is a plain
//! range of one index, so a page a million rows deep costs what the first
//! page costs. A cursor is a position in that walk: segment, key and id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use entity::contact;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LikeExpr, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Value,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::domain::access::ProjectAccess;
use crate::domain::row_columns::RowColumns;
use crate::error::{AppError, AppResult};

/// Largest page a client may ask for; larger asks are refused, not trimmed,
/// so that a client never mistakes a short page for the end of the list.
pub const MAX_PAGE_SIZE: u64 = 100;
pub const DEFAULT_PAGE_SIZE: u64 = 20;
const MAX_SEARCH_LEN: usize = 100;
/// Cursors are small; anything longer is not one of ours.
const MAX_CURSOR_LEN: usize = 600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    LastSeenAt,
    Name,
    Email,
}

impl SortField {
    fn tag(self) -> &'static str {
        match self {
            SortField::CreatedAt => "created_at",
            SortField::LastSeenAt => "last_seen_at",
            SortField::Name => "name",
            SortField::Email => "email",
        }
    }

    fn column(self) -> contact::Column {
        match self {
            SortField::CreatedAt => contact::Column::CreatedAt,
            SortField::LastSeenAt => contact::Column::LastSeenAt,
            SortField::Name => contact::Column::Name,
            SortField::Email => contact::Column::Email,
        }
    }

    fn is_optional(self) -> bool {
        matches!(self, SortField::Name | SortField::Email)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    fn reversed(self) -> Direction {
        match self {
            Direction::Asc => Direction::Desc,
            Direction::Desc => Direction::Asc,
        }
    }

    fn order(self) -> Order {
        match self {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactOrder {
    pub field: SortField,
    pub direction: Direction,
}

impl Default for ContactOrder {
    /// Newest contacts first.
    fn default() -> Self {
        ContactOrder {
            field: SortField::CreatedAt,
            direction: Direction::Desc,
        }
    }
}

/// A filter as the agent typed it; `ContactFilter::parse` checks it. An
/// export stores its checked filter in this shape (`ContactFilter::input`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterInput {
    pub search: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub country_code: Option<String>,
    pub state: Option<String>,
    pub has_email: Option<bool>,
    pub has_phone: Option<bool>,
}

/// PostgreSQL's generated search column (migration 13), which the entity
/// does not carry: nothing writes it.
const SEARCH_TEXT: &str = "search_text";

/// LIKE patterns for a search term, escaped so that `%` and `_` in the
/// term match themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Search {
    /// As typed, trimmed.
    term: String,
    text: String,
    /// The text pattern with accents folded, for PostgreSQL's search column.
    folded: String,
    /// Phones are stored in E.164; a term that looks like a phone number
    /// is matched by its digits, so `612 34` finds `+3461234…`.
    phone: String,
}

/// A checked filter; only `parse` makes one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactFilter {
    search: Option<Search>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    country_code: Option<String>,
    state: Option<String>,
    has_email: Option<bool>,
    has_phone: Option<bool>,
}

fn like_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Search {
    fn parse(raw: &str) -> AppResult<Option<Search>> {
        let term = raw.trim();
        if term.is_empty() {
            return Ok(None);
        }
        if term.chars().count() > MAX_SEARCH_LEN || term.chars().any(char::is_control) {
            return Err(AppError::bad_input(
                "filter.search",
                format!("must be at most {MAX_SEARCH_LEN} printable characters"),
            ));
        }
        let term = term.to_lowercase();
        let digits: String = term.chars().filter(char::is_ascii_digit).collect();
        let phone_like = digits.len() >= 3
            && term
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        let phone = if phone_like { &digits } else { &term };
        let typed = raw.trim().to_owned();
        Ok(Some(Search {
            term: typed,
            text: like_pattern(&term),
            folded: like_pattern(&migration::search_folding::fold(&term)),
            phone: like_pattern(phone),
        }))
    }
}

impl ContactFilter {
    pub fn parse(input: FilterInput) -> AppResult<ContactFilter> {
        let search = match input.search.as_deref() {
            Some(raw) => Search::parse(raw)?,
            None => None,
        };
        if let (Some(from), Some(to)) = (input.created_from, input.created_to)
            && from >= to
        {
            return Err(AppError::bad_input(
                "filter.createdTo",
                "must be later than createdFrom",
            ));
        }
        let country_code = match input.country_code.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) if code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic()) => {
                Some(code.to_ascii_uppercase())
            }
            Some(_) => {
                return Err(AppError::bad_input(
                    "filter.countryCode",
                    "must be a two-letter ISO 3166-1 code",
                ));
            }
        };
        let state = match input.state.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(state) if state.chars().count() <= 100 => Some(state.to_owned()),
            Some(_) => {
                return Err(AppError::bad_input(
                    "filter.state",
                    "must be at most 100 characters",
                ));
            }
        };
        Ok(ContactFilter {
            search,
            created_from: input.created_from,
            created_to: input.created_to,
            country_code,
            state,
            has_email: input.has_email,
            has_phone: input.has_phone,
        })
    }

    /// The filter in the shape it was typed, normalised: parsing it again
    /// gives this filter back.
    pub fn input(&self) -> FilterInput {
        FilterInput {
            search: self.search.as_ref().map(|search| search.term.clone()),
            created_from: self.created_from,
            created_to: self.created_to,
            country_code: self.country_code.clone(),
            state: self.state.clone(),
            has_email: self.has_email,
            has_phone: self.has_phone,
        }
    }

    /// The SQL condition on `contacts` rows: the one translation of a
    /// filter, used by the list and by exports alike.
    pub fn condition(&self, backend: DbBackend) -> Condition {
        let mut condition = Condition::all();
        if let Some(search) = &self.search {
            let like = |column: SimpleExpr, pattern: &str| -> SimpleExpr {
                column.like(LikeExpr::new(pattern).escape('\\'))
            };
            let column = |column: contact::Column| Expr::col((contact::Entity, column));
            condition = condition.add(match backend {
                // One generated column holds the folded name, the email
                // and the phone (migration 13).
                DbBackend::Postgres => {
                    let text = || Expr::col((contact::Entity, Alias::new(SEARCH_TEXT)));
                    let mut any = Condition::any().add(like(text(), &search.folded));
                    if search.phone != search.text {
                        any = any.add(like(text(), &search.phone));
                    }
                    any
                }
                // SQLite's LIKE ignores the case of ASCII letters; emails
                // are stored lower-cased and phones hold digits only.
                _ => Condition::any()
                    .add(like(column(contact::Column::Name), &search.text))
                    .add(like(column(contact::Column::Email), &search.text))
                    .add(like(column(contact::Column::Phone), &search.phone)),
            });
        }
        if let Some(from) = self.created_from {
            condition = condition.add(contact::Column::CreatedAt.gte(from));
        }
        if let Some(to) = self.created_to {
            condition = condition.add(contact::Column::CreatedAt.lt(to));
        }
        if let Some(code) = &self.country_code {
            condition = condition.add(contact::Column::CountryCode.eq(code.as_str()));
        }
        if let Some(state) = &self.state {
            condition = condition.add(
                Condition::any()
                    .add(contact::Column::StateCode.eq(state.as_str()))
                    .add(contact::Column::StateName.eq(state.as_str())),
            );
        }
        for (wanted, column) in [
            (self.has_email, contact::Column::Email),
            (self.has_phone, contact::Column::Phone),
        ] {
            match wanted {
                Some(true) => condition = condition.add(column.is_not_null()),
                Some(false) => condition = condition.add(column.is_null()),
                None => {}
            }
        }
        condition
    }
}

/// The sort key of one contact in one sort order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Time(DateTime<Utc>),
    Text(String),
    /// In the segment of contacts without a value: ordered by id alone.
    Missing,
}

impl Key {
    fn value(&self) -> Value {
        match self {
            Key::Time(time) => Value::from(*time),
            Key::Text(text) => Value::from(text.clone()),
            Key::Missing => Value::String(None),
        }
    }
}

/// A position in a sorted list: opaque to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    field: SortField,
    key: Key,
    id: Uuid,
}

impl Cursor {
    /// The position of `contact` in lists sorted by `field`.
    pub fn of(contact: &contact::Model, field: SortField) -> Cursor {
        let text = |value: &Option<String>| match value {
            Some(text) => Key::Text(text.clone()),
            None => Key::Missing,
        };
        let key = match field {
            SortField::CreatedAt => Key::Time(contact.created_at),
            SortField::LastSeenAt => Key::Time(contact.last_seen_at),
            SortField::Name => text(&contact.name),
            SortField::Email => text(&contact.email),
        };
        Cursor {
            field,
            key,
            id: contact.id,
        }
    }

    pub fn encode(&self) -> String {
        let tag = self.field.tag();
        // Written straight from the key (every edge of a page has a cursor):
        // `[tag, key, id]`, the JSON that `decode` reads.
        let raw = match &self.key {
            // Nanoseconds: SQLite keeps them, and a cursor must compare equal
            // to the stored value to resume exactly after it.
            Key::Time(time) => serde_json::to_vec(&(tag, time.timestamp_nanos_opt(), self.id)),
            Key::Text(text) => serde_json::to_vec(&(tag, text, self.id)),
            Key::Missing => serde_json::to_vec(&(tag, (), self.id)),
        }
        .unwrap_or_default();
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Reads a cursor made by `encode` for a list sorted by `field`.
    pub fn decode(raw: &str, field: SortField, input: &str) -> AppResult<Cursor> {
        let invalid = || AppError::bad_input(input, "is not a cursor of this list");
        if raw.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let (tag, key, id): (String, serde_json::Value, Uuid) =
            serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if tag != field.tag() {
            return Err(AppError::bad_input(
                input,
                "was made for another sort order; start again without a cursor",
            ));
        }
        let key = match (field.is_optional(), key) {
            (_, serde_json::Value::Null) if field.is_optional() => Key::Missing,
            (true, serde_json::Value::String(text)) => Key::Text(text),
            (false, serde_json::Value::Number(nanos)) => Key::Time(DateTime::from_timestamp_nanos(
                nanos.as_i64().ok_or_else(invalid)?,
            )),
            _ => return Err(invalid()),
        };
        Ok(Cursor { field, key, id })
    }
}

/// Which page: the first `n` after a cursor, or the last `n` before one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageRequest {
    Forward { first: u64, after: Option<Cursor> },
    Backward { last: u64, before: Option<Cursor> },
}

/// The Relay arguments as a client sent them.
#[derive(Clone, Debug, Default)]
pub struct PageArgs<'a> {
    pub first: Option<i32>,
    pub after: Option<&'a str>,
    pub last: Option<i32>,
    pub before: Option<&'a str>,
}

fn page_size(value: i32, input: &str) -> AppResult<u64> {
    let size =
        u64::try_from(value).map_err(|_| AppError::bad_input(input, "must not be negative"))?;
    if size > MAX_PAGE_SIZE {
        return Err(AppError::bad_input(
            input,
            format!("must be at most {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(size)
}

impl PageRequest {
    pub fn parse(args: PageArgs<'_>, order: ContactOrder) -> AppResult<PageRequest> {
        let mixed = || {
            AppError::bad_input(
                "last",
                "page forwards with first/after or backwards with last/before, not both",
            )
        };
        let cursor = |raw: Option<&str>, input: &str| {
            raw.map(|raw| Cursor::decode(raw, order.field, input))
                .transpose()
        };
        match (args.first, args.last) {
            (Some(_), Some(_)) => Err(mixed()),
            (None, Some(last)) => {
                if args.after.is_some() {
                    return Err(mixed());
                }
                Ok(PageRequest::Backward {
                    last: page_size(last, "last")?,
                    before: cursor(args.before, "before")?,
                })
            }
            (first, None) => {
                if args.before.is_some() {
                    return Err(mixed());
                }
                Ok(PageRequest::Forward {
                    first: match first {
                        Some(first) => page_size(first, "first")?,
                        None => DEFAULT_PAGE_SIZE,
                    },
                    after: cursor(args.after, "after")?,
                })
            }
        }
    }
}

/// One page, in the list's order, each contact with its cursor.
#[derive(Debug)]
pub struct ContactPage {
    pub contacts: Vec<(contact::Model, Cursor)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// One segment of a walk: the contacts with a value for the sort column
/// (`keyed`), or those without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment {
    Keyed,
    Missing,
}

impl Key {
    fn segment(&self) -> Segment {
        match self {
            Key::Missing => Segment::Missing,
            _ => Segment::Keyed,
        }
    }
}

/// The contacts of one project that match one filter, in one order. Made
/// from a `ProjectAccess`, so that no list skips the membership check.
pub struct ContactList {
    project_id: Uuid,
    filter: ContactFilter,
    order: ContactOrder,
    parts: ListedParts,
}

/// Which columns a page reads beyond the list's own (ids, name, email,
/// phone and the sort keys): a page whose client shows a few fields reads
/// neither the location nor the rest, which halves what the database sends
/// and what the server decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedParts {
    pub location: bool,
    /// Company, custom attributes, last IP, the location flag, the
    /// external id, the field sources, first seen and updated times.
    pub rest: bool,
}

impl ListedParts {
    pub const ALL: ListedParts = ListedParts {
        location: true,
        rest: true,
    };

    fn columns(self) -> Vec<contact::Column> {
        let mut columns = CORE_COLUMNS.to_vec();
        if self.location {
            columns.extend(LOCATION_COLUMNS);
        }
        if self.rest {
            columns.extend(REST_COLUMNS);
        }
        columns
    }
}

impl ContactList {
    pub fn new(access: &ProjectAccess, filter: ContactFilter, order: ContactOrder) -> Self {
        ContactList {
            project_id: access.project_id(),
            filter,
            order,
            parts: ListedParts::ALL,
        }
    }

    /// The list reading only `parts` of each contact; the columns left out
    /// hold empty values.
    pub fn reading(mut self, parts: ListedParts) -> Self {
        self.parts = parts;
        self
    }

    pub fn order(&self) -> ContactOrder {
        self.order
    }

    /// How many contacts match; a separate statement, run only when asked.
    pub async fn count(&self, db: &impl ConnectionTrait) -> AppResult<u64> {
        let backend = db.get_database_backend();
        Ok(contact::Entity::find()
            .filter(contact::Column::ProjectId.eq(self.project_id))
            .filter(self.filter.condition(backend))
            .count(db)
            .await?)
    }

    pub async fn page(
        &self,
        db: &impl ConnectionTrait,
        request: &PageRequest,
    ) -> AppResult<ContactPage> {
        let direction = self.order.direction;
        match request {
            PageRequest::Forward { first, after } => {
                let mut contacts = self.walk(db, direction, after.as_ref(), *first).await?;
                let has_next_page = contacts.len() as u64 > *first;
                contacts.truncate(*first as usize);
                Ok(ContactPage {
                    contacts: self.with_cursors(contacts),
                    has_next_page,
                    has_previous_page: false,
                })
            }
            PageRequest::Backward { last, before } => {
                let mut contacts = self
                    .walk(db, direction.reversed(), before.as_ref(), *last)
                    .await?;
                let has_previous_page = contacts.len() as u64 > *last;
                contacts.truncate(*last as usize);
                contacts.reverse();
                Ok(ContactPage {
                    contacts: self.with_cursors(contacts),
                    has_next_page: false,
                    has_previous_page,
                })
            }
        }
    }

    /// Whether any contact lies before the page that `request` asked for
    /// (paging forwards) or after it (paging backwards): the side the page
    /// itself cannot tell. Costs one indexed probe, so it runs only when a
    /// client asks.
    pub async fn has_more_behind(
        &self,
        db: &impl ConnectionTrait,
        request: &PageRequest,
    ) -> AppResult<bool> {
        let direction = self.order.direction;
        let (walk_direction, cursor) = match request {
            PageRequest::Forward { after, .. } => (direction.reversed(), after),
            PageRequest::Backward { before, .. } => (direction, before),
        };
        // The cursor contact itself lies behind the page, unless it has
        // been deleted or no longer matches: the probe includes it.
        let Some(cursor) = cursor else {
            return Ok(false);
        };
        Ok(!self
            .walk_from(db, walk_direction, Some(cursor), 1, true)
            .await?
            .is_empty())
    }

    fn with_cursors(&self, contacts: Vec<contact::Model>) -> Vec<(contact::Model, Cursor)> {
        contacts
            .into_iter()
            .map(|contact| {
                let cursor = Cursor::of(&contact, self.order.field);
                (contact, cursor)
            })
            .collect()
    }

    /// Up to `limit + 1` contacts strictly after `from`, walking in
    /// `direction`; the extra one tells whether more follow.
    async fn walk(
        &self,
        db: &impl ConnectionTrait,
        direction: Direction,
        from: Option<&Cursor>,
        limit: u64,
    ) -> AppResult<Vec<contact::Model>> {
        self.walk_from(db, direction, from, limit + 1, false).await
    }

    /// Up to `wanted` contacts from `from` (included when `inclusive`),
    /// segment by segment in walking order.
    async fn walk_from(
        &self,
        db: &impl ConnectionTrait,
        direction: Direction,
        from: Option<&Cursor>,
        wanted: u64,
        inclusive: bool,
    ) -> AppResult<Vec<contact::Model>> {
        // Contacts without a value come last in the list's own direction,
        // so a walk against it visits them first.
        let mut segments = match self.order.field.is_optional() {
            true => vec![Segment::Keyed, Segment::Missing],
            false => vec![Segment::Keyed],
        };
        if direction != self.order.direction {
            segments.reverse();
        }
        let start = from.map(|cursor| cursor.key.segment());
        let mut started = start.is_none();
        let mut found = Vec::new();
        for segment in segments {
            let bound = if started {
                None
            } else if Some(segment) == start {
                started = true;
                from
            } else {
                continue;
            };
            let remaining = wanted - found.len() as u64;
            if remaining == 0 {
                break;
            }
            if !self.may_hold(segment) {
                continue;
            }
            let rows = self
                .segment_rows(db, segment, direction, bound, remaining, inclusive)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Whether the filter leaves anything in `segment`: asking for contacts
    /// with an email leaves nothing without one, and no statement is spent
    /// on it.
    fn may_hold(&self, segment: Segment) -> bool {
        match (self.order.field, self.filter.has_email) {
            (SortField::Email, Some(has_email)) => has_email == (segment == Segment::Keyed),
            _ => true,
        }
    }

    async fn segment_rows(
        &self,
        db: &impl ConnectionTrait,
        segment: Segment,
        direction: Direction,
        bound: Option<&Cursor>,
        limit: u64,
        inclusive: bool,
    ) -> AppResult<Vec<contact::Model>> {
        let column = self.order.field.column();
        let order = direction.order();
        let mut query = contact::Entity::find()
            .filter(contact::Column::ProjectId.eq(self.project_id))
            .filter(self.filter.condition(db.get_database_backend()));
        let beyond = |left: SimpleExpr, right: SimpleExpr| match (direction, inclusive) {
            (Direction::Asc, false) => left.gt(right),
            (Direction::Asc, true) => left.gte(right),
            (Direction::Desc, false) => left.lt(right),
            (Direction::Desc, true) => left.lte(right),
        };
        let id = || Expr::col((contact::Entity, contact::Column::Id));
        let keyed = segment == Segment::Keyed;
        match segment {
            Segment::Keyed => {
                if self.order.field.is_optional() {
                    query = query.filter(column.is_not_null());
                }
                if let Some(cursor) = bound {
                    // A row comparison is one range of the (key, id) index
                    // on both engines.
                    query = query.filter(beyond(
                        Expr::tuple([Expr::col((contact::Entity, column)), id()]),
                        Expr::tuple([Expr::val(cursor.key.value()), Expr::val(cursor.id)]),
                    ));
                }
                query = query.order_by(column, order.clone());
            }
            Segment::Missing => {
                query = query.filter(column.is_null());
                if let Some(cursor) = bound {
                    query = query.filter(beyond(id(), Expr::val(cursor.id)));
                }
            }
        }
        let backend = db.get_database_backend();
        let query = query
            .order_by(contact::Column::Id, order.clone())
            .limit(limit);
        let statement = if self.filter.search.is_some() && backend == DbBackend::Postgres {
            // The page's ids first, from the list's index alone (it carries
            // the search column), then only those rows: the contacts the
            // search skips are never read.
            let ids = query.select_only().column(contact::Column::Id).into_query();
            let mut page = contact::Entity::find()
                .select_only()
                .columns(self.parts.columns())
                .filter(contact::Column::Id.in_subquery(ids));
            if keyed {
                page = page.order_by(column, order.clone());
            }
            page.order_by(contact::Column::Id, order).build(backend)
        } else {
            query
                .select_only()
                .columns(self.parts.columns())
                .build(backend)
        };
        let rows = db.query_all_raw(statement).await?;
        Ok(rows
            .iter()
            .enumerate()
            .map(|(at, row)| contact_of_row(row, at, self.parts))
            .collect::<Result<_, _>>()?)
    }
}

/// The columns every page reads, in the order `contact_of_row` decodes
/// them: then the location's, then the rest, when read.
const CORE_COLUMNS: [contact::Column; 7] = [
    contact::Column::Id,
    contact::Column::ProjectId,
    contact::Column::Name,
    contact::Column::Email,
    contact::Column::Phone,
    contact::Column::CreatedAt,
    contact::Column::LastSeenAt,
];

const LOCATION_COLUMNS: [contact::Column; 12] = [
    contact::Column::CountryCode,
    contact::Column::CountryName,
    contact::Column::StateName,
    contact::Column::StateCode,
    contact::Column::ProvinceName,
    contact::Column::ProvinceCode,
    contact::Column::City,
    contact::Column::PostalCode,
    contact::Column::TimeZone,
    contact::Column::Latitude,
    contact::Column::Longitude,
    contact::Column::AccuracyRadiusKm,
];

const REST_COLUMNS: [contact::Column; 8] = [
    contact::Column::Company,
    contact::Column::CustomAttributes,
    contact::Column::LastIp,
    contact::Column::LocationCorrected,
    contact::Column::ExternalId,
    contact::Column::FieldSources,
    contact::Column::FirstSeenAt,
    contact::Column::UpdatedAt,
];

/// Decodes a row of `parts.columns()` by position. A page is thousands of
/// values; reading them by name costs a formatted name and a lookup each,
/// which made decoding the largest part of a list request's CPU time.
fn contact_of_row(
    row: &QueryResult,
    at: usize,
    parts: ListedParts,
) -> Result<contact::Model, DbErr> {
    let mut columns = RowColumns::of(row, at);
    let id = columns.read()?;
    let project_id = columns.read()?;
    let name = columns.read()?;
    let email = columns.read()?;
    let phone = columns.read()?;
    let created_at: DateTime<Utc> = columns.read()?;
    let last_seen_at = columns.read()?;
    // Struct fields are evaluated in the order written: the location's
    // columns, then the rest, as `ListedParts::columns` lists them.
    macro_rules! read {
        ($part:expr, $empty:expr) => {
            if $part { columns.read()? } else { $empty }
        };
    }
    let location = parts.location;
    let rest = parts.rest;
    Ok(contact::Model {
        id,
        project_id,
        name,
        email,
        phone,
        country_code: read!(location, None),
        country_name: read!(location, None),
        state_name: read!(location, None),
        state_code: read!(location, None),
        province_name: read!(location, None),
        province_code: read!(location, None),
        city: read!(location, None),
        postal_code: read!(location, None),
        time_zone: read!(location, None),
        latitude: read!(location, None),
        longitude: read!(location, None),
        accuracy_radius_km: read!(location, None),
        company: read!(rest, None),
        custom_attributes: read!(rest, json!({})),
        last_ip: read!(rest, None),
        location_corrected: read!(rest, false),
        external_id: read!(rest, None),
        field_sources: read!(rest, json!({})),
        first_seen_at: read!(rest, created_at),
        updated_at: read!(rest, created_at),
        created_at,
        last_seen_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: Option<&str>) -> contact::Model {
        let now = Utc::now();
        contact::Model {
            id: Uuid::now_v7(),
            project_id: Uuid::now_v7(),
            name: name.map(str::to_owned),
            email: None,
            phone: None,
            company: None,
            custom_attributes: json!({}),
            last_ip: None,
            country_code: None,
            country_name: None,
            state_name: None,
            state_code: None,
            province_name: None,
            province_code: None,
            city: None,
            postal_code: None,
            time_zone: None,
            latitude: None,
            longitude: None,
            accuracy_radius_km: None,
            location_corrected: false,
            external_id: None,
            field_sources: json!({}),
            first_seen_at: now,
            last_seen_at: now,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn cursors_round_trip_for_their_own_order_only() {
        let named = contact(Some("Ana | \"x\""));
        let nameless = contact(None);
        for (model, field) in [
            (&named, SortField::Name),
            (&nameless, SortField::Name),
            (&named, SortField::CreatedAt),
            (&named, SortField::LastSeenAt),
            (&nameless, SortField::Email),
        ] {
            let cursor = Cursor::of(model, field);
            assert_eq!(
                Cursor::decode(&cursor.encode(), field, "after").unwrap(),
                cursor
            );
        }
        let by_name = Cursor::of(&named, SortField::Name).encode();
        let error = Cursor::decode(&by_name, SortField::Email, "after").unwrap_err();
        assert_eq!(error.code(), "BAD_USER_INPUT");
        for garbage in ["", "nope", "W10", &"x".repeat(1000)] {
            assert!(Cursor::decode(garbage, SortField::Name, "after").is_err());
        }
    }

    #[test]
    fn cursors_keep_the_form_clients_already_hold() {
        let named = contact(Some("Ana | \"x\" é"));
        let nameless = contact(None);
        for (model, field, key) in [
            (&named, SortField::Name, json!("Ana | \"x\" é")),
            (&nameless, SortField::Name, serde_json::Value::Null),
            (
                &named,
                SortField::CreatedAt,
                json!(named.created_at.timestamp_nanos_opt()),
            ),
        ] {
            let raw = URL_SAFE_NO_PAD
                .decode(Cursor::of(model, field).encode())
                .unwrap();
            let earlier_form = json!([field.tag(), key, model.id]).to_string();
            assert_eq!(String::from_utf8(raw).unwrap(), earlier_form);
        }
    }

    #[test]
    fn page_sizes_are_capped_and_directions_not_mixed() {
        let order = ContactOrder::default();
        let parse = |first, last| {
            PageRequest::parse(
                PageArgs {
                    first,
                    last,
                    ..Default::default()
                },
                order,
            )
        };
        assert_eq!(
            parse(None, None).unwrap(),
            PageRequest::Forward {
                first: DEFAULT_PAGE_SIZE,
                after: None
            }
        );
        assert_eq!(
            parse(None, Some(100)).unwrap(),
            PageRequest::Backward {
                last: 100,
                before: None
            }
        );
        for (first, last) in [(Some(101), None), (None, Some(-1)), (Some(5), Some(5))] {
            assert_eq!(parse(first, last).unwrap_err().code(), "BAD_USER_INPUT");
        }
    }

    #[test]
    fn search_terms_are_escaped_and_phone_numbers_matched_by_digits() {
        let search = Search::parse(" 50%_Off\\ ").unwrap().unwrap();
        assert_eq!(search.text, "%50\\%\\_off\\\\%");
        let phone = Search::parse("+34 612-34").unwrap().unwrap();
        assert_eq!(phone.phone, "%3461234%");
        assert_eq!(phone.text, "%+34 612-34%");
        assert_eq!(Search::parse("   ").unwrap(), None);
        assert!(Search::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn filters_are_checked() {
        let now = Utc::now();
        let bad = [
            FilterInput {
                country_code: Some("ESP".into()),
                ..Default::default()
            },
            FilterInput {
                created_from: Some(now),
                created_to: Some(now),
                ..Default::default()
            },
        ];
        for input in bad {
            assert_eq!(
                ContactFilter::parse(input).unwrap_err().code(),
                "BAD_USER_INPUT"
            );
        }
        let filter = ContactFilter::parse(FilterInput {
            country_code: Some(" es ".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(filter.country_code.as_deref(), Some("ES"));
    }

    #[test]
    fn a_filter_parses_back_from_its_normalised_input() {
        let filter = ContactFilter::parse(FilterInput {
            search: Some("  Gar_cía 50% ".into()),
            created_from: Some(Utc::now()),
            country_code: Some("es".into()),
            state: Some(" Andalusia ".into()),
            has_email: Some(true),
            has_phone: Some(false),
            ..Default::default()
        })
        .unwrap();
        let input = filter.input();
        assert_eq!(input.search.as_deref(), Some("Gar_cía 50%"));
        assert_eq!(input.country_code.as_deref(), Some("ES"));
        let stored = serde_json::to_value(&input).unwrap();
        let read: FilterInput = serde_json::from_value(stored).unwrap();
        assert_eq!(ContactFilter::parse(read).unwrap(), filter);
    }
}
