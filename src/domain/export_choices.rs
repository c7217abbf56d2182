//! What an export writes, as the agent chose it: the file format, the
//! columns, and the zone its times are written in; checked once here and
//! stored on the job in this shape.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::forms::is_identifier;
use crate::error::{AppError, AppResult};

/// More columns than a contact has fields and a project has attributes in
/// practice; beyond it an export is a mistake or an attack.
pub const MAX_EXPORT_COLUMNS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Csv,
    Xlsx,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "CSV",
            ExportFormat::Xlsx => "XLSX",
        }
    }

    /// The stored name; a name this version does not know reads as CSV, the
    /// format of every job stored before there was a choice.
    pub fn from_stored(stored: &str) -> ExportFormat {
        match stored {
            "XLSX" => ExportFormat::Xlsx,
            _ => ExportFormat::Csv,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }

    /// The format of a stored export file, by the extension of its key.
    pub fn of_key(key: &str) -> ExportFormat {
        if key.ends_with(".xlsx") {
            ExportFormat::Xlsx
        } else {
            ExportFormat::Csv
        }
    }
}

/// The contact fields an export can write. Credentials (visitor ids and
/// tokens) and internal bookkeeping are not among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportField {
    Id,
    Name,
    Email,
    Phone,
    Company,
    Country,
    State,
    Province,
    City,
    PostalCode,
    TimeZone,
    CreatedAt,
    LastSeenAt,
}

impl ExportField {
    /// Every field, in the order of a default export.
    pub const ALL: [ExportField; 13] = [
        ExportField::Id,
        ExportField::Name,
        ExportField::Email,
        ExportField::Phone,
        ExportField::Company,
        ExportField::Country,
        ExportField::State,
        ExportField::Province,
        ExportField::City,
        ExportField::PostalCode,
        ExportField::TimeZone,
        ExportField::CreatedAt,
        ExportField::LastSeenAt,
    ];

    /// The column's name in the file's header row.
    pub fn header(self) -> &'static str {
        match self {
            ExportField::Id => "id",
            ExportField::Name => "name",
            ExportField::Email => "email",
            ExportField::Phone => "phone",
            ExportField::Company => "company",
            ExportField::Country => "country",
            ExportField::State => "state",
            ExportField::Province => "province",
            ExportField::City => "city",
            ExportField::PostalCode => "postal_code",
            ExportField::TimeZone => "time_zone",
            ExportField::CreatedAt => "created_at",
            ExportField::LastSeenAt => "last_seen_at",
        }
    }

    fn is_header(name: &str) -> bool {
        ExportField::ALL.iter().any(|field| field.header() == name)
    }
}

/// One column of an export file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportColumn {
    Field(ExportField),
    /// A custom attribute, by key.
    Attribute(String),
}

impl ExportColumn {
    /// The header: a field's name, or the attribute's key, prefixed with
    /// `attribute_` where it would read as a field's.
    pub fn header(&self) -> String {
        match self {
            ExportColumn::Field(field) => field.header().to_owned(),
            ExportColumn::Attribute(key) if ExportField::is_header(key) => {
                format!("attribute_{key}")
            }
            ExportColumn::Attribute(key) => key.clone(),
        }
    }
}

/// The columns an export writes: the agent's list, or every field and every
/// custom attribute found (`Default`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ColumnChoice(Option<Vec<ExportColumn>>);

impl ColumnChoice {
    /// Checks the agent's list; `None` is the default.
    pub fn parse(columns: Option<Vec<ExportColumn>>) -> AppResult<ColumnChoice> {
        let Some(columns) = columns else {
            return Ok(ColumnChoice(None));
        };
        if columns.is_empty() {
            return Err(AppError::bad_input(
                "columns",
                "must name at least one column; leave it out for all of them",
            ));
        }
        if columns.len() > MAX_EXPORT_COLUMNS {
            return Err(AppError::bad_input(
                "columns",
                format!("must have at most {MAX_EXPORT_COLUMNS} columns"),
            ));
        }
        for (index, column) in columns.iter().enumerate() {
            if let ExportColumn::Attribute(key) = column
                && !is_identifier(key)
            {
                return Err(AppError::bad_input(
                    format!("columns[{index}].attribute"),
                    "an attribute key is 1 to 64 of a-z, 0-9 and _, starting with a letter",
                ));
            }
            if columns[..index].contains(column) {
                return Err(AppError::bad_input(
                    format!("columns[{index}]"),
                    format!("repeats the column {}", column.header()),
                ));
            }
        }
        Ok(ColumnChoice(Some(columns)))
    }

    /// The agent's list, or `None` for every column.
    pub fn chosen(&self) -> Option<&[ExportColumn]> {
        self.0.as_deref()
    }

    /// The columns in file order, the default ones with the attribute keys
    /// found (sorted).
    pub fn resolve(&self, mut found_keys: Vec<String>) -> Vec<ExportColumn> {
        match &self.0 {
            Some(columns) => columns.clone(),
            None => {
                found_keys.sort();
                found_keys.dedup();
                ExportField::ALL
                    .into_iter()
                    .map(ExportColumn::Field)
                    .chain(found_keys.into_iter().map(ExportColumn::Attribute))
                    .collect()
            }
        }
    }

    pub fn to_stored(&self) -> Option<serde_json::Value> {
        self.0
            .as_ref()
            .map(|columns| serde_json::to_value(columns).unwrap_or_default())
    }

    /// Reads what `to_stored` wrote; anything else is the default.
    pub fn from_stored(stored: Option<&serde_json::Value>) -> ColumnChoice {
        ColumnChoice(stored.and_then(|value| serde_json::from_value(value.clone()).ok()))
    }
}

/// The zone an export writes its times in, stored by IANA name.
pub fn zone_from_stored(stored: Option<&str>) -> Tz {
    stored.and_then(|name| name.parse().ok()).unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(field: ExportField) -> ExportColumn {
        ExportColumn::Field(field)
    }

    fn attribute(key: &str) -> ExportColumn {
        ExportColumn::Attribute(key.to_owned())
    }

    #[test]
    fn bad_column_lists_name_the_input() {
        let cases = [
            (Vec::new(), "columns"),
            (
                vec![field(ExportField::Email); MAX_EXPORT_COLUMNS + 1],
                "columns",
            ),
            (
                vec![field(ExportField::Email), field(ExportField::Email)],
                "columns[1]",
            ),
            (
                vec![
                    field(ExportField::Name),
                    attribute("plan"),
                    attribute("plan"),
                ],
                "columns[2]",
            ),
            (vec![attribute("Plan!")], "columns[0].attribute"),
            (vec![attribute("")], "columns[0].attribute"),
        ];
        for (columns, input) in cases {
            match ColumnChoice::parse(Some(columns.clone())) {
                Err(AppError::BadInput { field, .. }) => assert_eq!(field, input, "{columns:?}"),
                other => panic!("{columns:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_choice_is_kept_in_its_order_and_round_trips() {
        let columns = vec![
            attribute("plan"),
            field(ExportField::Phone),
            attribute("city"),
        ];
        let choice = ColumnChoice::parse(Some(columns.clone())).unwrap();
        assert_eq!(choice.resolve(vec!["ignored".into()]), columns);
        assert_eq!(
            ColumnChoice::from_stored(choice.to_stored().as_ref()),
            choice
        );
        let headers: Vec<_> = columns.iter().map(ExportColumn::header).collect();
        assert_eq!(headers, ["plan", "phone", "attribute_city"]);
    }

    #[test]
    fn the_default_is_every_field_then_the_keys_found_in_order() {
        let choice = ColumnChoice::parse(None).unwrap();
        assert_eq!(choice.to_stored(), None);
        let columns = choice.resolve(vec!["seats".into(), "plan".into(), "seats".into()]);
        assert_eq!(columns.len(), ExportField::ALL.len() + 2);
        assert_eq!(columns[0], field(ExportField::Id));
        assert_eq!(&columns[13..], [attribute("plan"), attribute("seats")]);
    }

    #[test]
    fn formats_name_their_files() {
        assert_eq!(ExportFormat::of_key("p/e.xlsx"), ExportFormat::Xlsx);
        assert_eq!(ExportFormat::of_key("p/e.csv"), ExportFormat::Csv);
        assert_eq!(ExportFormat::from_stored("XLSX"), ExportFormat::Xlsx);
        assert_eq!(ExportFormat::from_stored("CSV"), ExportFormat::Csv);
    }
}
