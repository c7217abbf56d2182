//! What an export writes, in GraphQL: the format, the columns and the
//! filter an agent chooses, and the same read back from the job.

use async_graphql::{Enum, OneofObject, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::contact_list::FilterInput;
use crate::domain::export_choices::{ExportColumn, ExportField, ExportFormat};

/// The kind of file an export writes.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(name = "ExportFormat")]
pub enum ExportFormatView {
    /// RFC 4180, UTF-8 without a byte-order mark.
    #[default]
    Csv,
    /// A workbook with typed cells: text, dates and numbers, never formulas.
    Xlsx,
}

impl From<ExportFormatView> for ExportFormat {
    fn from(view: ExportFormatView) -> Self {
        match view {
            ExportFormatView::Csv => ExportFormat::Csv,
            ExportFormatView::Xlsx => ExportFormat::Xlsx,
        }
    }
}

impl From<ExportFormat> for ExportFormatView {
    fn from(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Csv => ExportFormatView::Csv,
            ExportFormat::Xlsx => ExportFormatView::Xlsx,
        }
    }
}

/// A contact field an export can write; the header of its column is the
/// name in the README's export section (`POSTAL_CODE` is `postal_code`).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ExportField")]
pub enum ExportFieldView {
    /// The contact's id.
    Id,
    /// The contact's name.
    Name,
    /// The contact's email.
    Email,
    /// The contact's phone, in E.164 form.
    Phone,
    /// The contact's company.
    Company,
    /// ISO 3166-1 alpha-2 code.
    Country,
    /// The first subdivision's name.
    State,
    /// The second subdivision's name.
    Province,
    /// The city.
    City,
    /// The postal code.
    PostalCode,
    /// The contact's own IANA zone, from its location.
    TimeZone,
    /// When the contact was created, in the export's time zone.
    CreatedAt,
    /// When the contact's latest chat started, in the export's time zone.
    LastSeenAt,
}

impl From<ExportFieldView> for ExportField {
    fn from(view: ExportFieldView) -> Self {
        match view {
            ExportFieldView::Id => ExportField::Id,
            ExportFieldView::Name => ExportField::Name,
            ExportFieldView::Email => ExportField::Email,
            ExportFieldView::Phone => ExportField::Phone,
            ExportFieldView::Company => ExportField::Company,
            ExportFieldView::Country => ExportField::Country,
            ExportFieldView::State => ExportField::State,
            ExportFieldView::Province => ExportField::Province,
            ExportFieldView::City => ExportField::City,
            ExportFieldView::PostalCode => ExportField::PostalCode,
            ExportFieldView::TimeZone => ExportField::TimeZone,
            ExportFieldView::CreatedAt => ExportField::CreatedAt,
            ExportFieldView::LastSeenAt => ExportField::LastSeenAt,
        }
    }
}

impl From<ExportField> for ExportFieldView {
    fn from(field: ExportField) -> Self {
        ExportFieldView::ALL
            .iter()
            .copied()
            .find(|view| ExportField::from(*view) == field)
            .unwrap_or(ExportFieldView::Id)
    }
}

impl ExportFieldView {
    const ALL: [ExportFieldView; 13] = [
        ExportFieldView::Id,
        ExportFieldView::Name,
        ExportFieldView::Email,
        ExportFieldView::Phone,
        ExportFieldView::Company,
        ExportFieldView::Country,
        ExportFieldView::State,
        ExportFieldView::Province,
        ExportFieldView::City,
        ExportFieldView::PostalCode,
        ExportFieldView::TimeZone,
        ExportFieldView::CreatedAt,
        ExportFieldView::LastSeenAt,
    ];
}

/// One column of an export: a contact field or a custom attribute.
#[derive(OneofObject)]
#[graphql(name = "ExportColumn")]
pub enum ExportColumnInput {
    /// A contact field.
    Field(ExportFieldView),
    /// A custom attribute's key (a-z, 0-9 and _, starting with a letter).
    Attribute(String),
}

impl From<ExportColumnInput> for ExportColumn {
    fn from(input: ExportColumnInput) -> Self {
        match input {
            ExportColumnInput::Field(field) => ExportColumn::Field(field.into()),
            ExportColumnInput::Attribute(key) => ExportColumn::Attribute(key),
        }
    }
}

/// A column of an export file, as chosen.
#[derive(SimpleObject)]
pub struct ExportedColumn {
    /// The contact field, for a field's column.
    field: Option<ExportFieldView>,
    /// The custom attribute's key, for an attribute's column.
    attribute: Option<String>,
    /// The column's name in the file's header row.
    header: String,
}

impl From<&ExportColumn> for ExportedColumn {
    fn from(column: &ExportColumn) -> Self {
        let (field, attribute) = match column {
            ExportColumn::Field(field) => (Some((*field).into()), None),
            ExportColumn::Attribute(key) => (None, Some(key.clone())),
        };
        ExportedColumn {
            field,
            attribute,
            header: column.header(),
        }
    }
}

/// The contacts list filter an export applied, as checked: dates are
/// instants, the search term is trimmed and the country code upper-cased.
#[derive(SimpleObject)]
pub struct ExportFilter {
    /// Part of the name, email or phone.
    search: Option<String>,
    /// Contacts created at or after this instant.
    created_from: Option<DateTime<Utc>>,
    /// Contacts created before this instant.
    created_to: Option<DateTime<Utc>>,
    /// ISO 3166-1 alpha-2 country code.
    country_code: Option<String>,
    /// The state's name or code.
    state: Option<String>,
    /// Whether the contacts have an email.
    has_email: Option<bool>,
    /// Whether the contacts have a phone.
    has_phone: Option<bool>,
}

impl From<FilterInput> for ExportFilter {
    fn from(input: FilterInput) -> Self {
        ExportFilter {
            search: input.search,
            created_from: input.created_from,
            created_to: input.created_to,
            country_code: input.country_code,
            state: input.state,
            has_email: input.has_email,
            has_phone: input.has_phone,
        }
    }
}
