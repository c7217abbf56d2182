//! The columns of an export file and what each cell holds, whatever the
//! format: the one mapping from export columns to the values read.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use uuid::Uuid;

use crate::domain::export_choices::{ExportColumn, ExportField};

/// How many text columns are read for each contact.
pub const TEXT_COLUMNS: usize = 10;

/// One contact as the export reads it: every exported field, by position.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: Uuid,
    /// name, email, phone, company, country, state, province, city, postal
    /// code and time zone.
    pub text: [Option<String>; TEXT_COLUMNS],
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Read only when the file has attribute columns.
    pub attributes: Option<Value>,
}

/// A time as the file shows it: the wall clock of the export's zone, to the
/// second, and that zone's offset from UTC at that instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub wall: NaiveDateTime,
    pub offset_seconds: i32,
}

/// What one cell holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Id(Uuid),
    Text(&'a str),
    /// The stored phone, E.164 when it was validated on the way in.
    Phone(&'a str),
    Time(LocalTime),
    /// A custom attribute's JSON value (never null: that is `Empty`).
    Attribute(&'a Value),
}

/// The columns of one export, in file order, and the zone of its times.
#[derive(Clone, Debug)]
pub struct ExportLayout {
    columns: Vec<ExportColumn>,
    zone: Tz,
}

impl ExportLayout {
    pub fn new(columns: Vec<ExportColumn>, zone: Tz) -> Self {
        ExportLayout { columns, zone }
    }

    pub fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    pub fn headers(&self) -> Vec<String> {
        self.columns.iter().map(ExportColumn::header).collect()
    }

    /// Whether rows must carry their custom attributes.
    pub fn needs_attributes(&self) -> bool {
        self.columns
            .iter()
            .any(|column| matches!(column, ExportColumn::Attribute(_)))
    }

    /// The cells of one row, in file order.
    pub fn cells<'a>(&'a self, row: &'a ExportRow) -> impl Iterator<Item = Cell<'a>> + 'a {
        self.columns
            .iter()
            .map(move |column| self.cell(column, row))
    }

    fn cell<'a>(&self, column: &'a ExportColumn, row: &'a ExportRow) -> Cell<'a> {
        let text = |index: usize| match row.text[index].as_deref() {
            Some(value) => Cell::Text(value),
            None => Cell::Empty,
        };
        match column {
            ExportColumn::Field(field) => match field {
                ExportField::Id => Cell::Id(row.id),
                ExportField::Name => text(0),
                ExportField::Email => text(1),
                ExportField::Phone => match row.text[2].as_deref() {
                    Some(phone) => Cell::Phone(phone),
                    None => Cell::Empty,
                },
                ExportField::Company => text(3),
                ExportField::Country => text(4),
                ExportField::State => text(5),
                ExportField::Province => text(6),
                ExportField::City => text(7),
                ExportField::PostalCode => text(8),
                ExportField::TimeZone => text(9),
                ExportField::CreatedAt => Cell::Time(self.local(row.created_at)),
                ExportField::LastSeenAt => Cell::Time(self.local(row.last_seen_at)),
            },
            ExportColumn::Attribute(key) => {
                match row.attributes.as_ref().and_then(|all| all.get(key)) {
                    None | Some(Value::Null) => Cell::Empty,
                    Some(value) => Cell::Attribute(value),
                }
            }
        }
    }

    fn local(&self, at: DateTime<Utc>) -> LocalTime {
        let local = at.with_timezone(&self.zone);
        let wall = local.naive_local();
        LocalTime {
            // Seconds are what a person reads; the fraction is noise.
            wall: wall.with_nanosecond_truncated(),
            offset_seconds: chrono::Offset::fix(local.offset()).local_minus_utc(),
        }
    }
}

trait TruncateNanos {
    fn with_nanosecond_truncated(self) -> Self;
}

impl TruncateNanos for NaiveDateTime {
    fn with_nanosecond_truncated(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap_or(self)
    }
}

/// Whether a stored phone is the E.164 form every validated phone is
/// stored in: `+`, then 2 to 15 digits, the first not 0. Such a cell is a
/// number to a spreadsheet, never a formula, so it needs no guard.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|digit| digit.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row() -> ExportRow {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 6, 9, 19).unwrap()
            + chrono::Duration::nanoseconds(822_360_069);
        let mut text: [Option<String>; TEXT_COLUMNS] = Default::default();
        text[0] = Some("Ana".into());
        text[2] = Some("+34612345678".into());
        ExportRow {
            id: Uuid::nil(),
            text,
            created_at: at,
            last_seen_at: at,
            attributes: Some(serde_json::json!({"plan": "Pro", "gone": null})),
        }
    }

    #[test]
    fn cells_follow_the_columns_and_times_the_zone() {
        let layout = ExportLayout::new(
            vec![
                ExportColumn::Attribute("plan".into()),
                ExportColumn::Field(ExportField::CreatedAt),
                ExportColumn::Field(ExportField::Phone),
                ExportColumn::Field(ExportField::Email),
                ExportColumn::Attribute("gone".into()),
                ExportColumn::Field(ExportField::Name),
            ],
            chrono_tz::Europe::Madrid,
        );
        assert!(layout.needs_attributes());
        let row = row();
        let cells: Vec<_> = layout.cells(&row).collect();
        let wall = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(7, 9, 19)
            .unwrap();
        assert_eq!(
            cells,
            [
                Cell::Attribute(&serde_json::json!("Pro")),
                Cell::Time(LocalTime {
                    wall,
                    offset_seconds: 3600
                }),
                Cell::Phone("+34612345678"),
                Cell::Empty,
                Cell::Empty,
                Cell::Text("Ana"),
            ]
        );
    }

    #[test]
    fn e164_is_plus_and_digits_only() {
        for phone in ["+34612345678", "+12025550123", "+44"] {
            assert!(is_e164(phone), "{phone}");
        }
        for phone in [
            "34612345678",
            "+",
            "+0612",
            "+34 612",
            "+3461234567890123",
            "+1-2",
            "+=1",
        ] {
            assert!(!is_e164(phone), "{phone}");
        }
    }
}
