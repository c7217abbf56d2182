//! Contacts as CSV rows, safe to open in a spreadsheet.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;
use uuid::Uuid;

const BASE_COLUMNS: [&str; 13] = [
    "id",
    "name",
    "email",
    "phone",
    "company",
    "country",
    "state",
    "province",
    "city",
    "postal_code",
    "time_zone",
    "created_at",
    "last_seen_at",
];

/// How many text columns sit between the id and the timestamps.
pub const TEXT_COLUMNS: usize = 10;

/// The exported columns of one contact, in file order: only what the file
/// needs is read from the database.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: Uuid,
    /// name, email, phone, company, country, state, province, city, postal
    /// code and time zone.
    pub text: [Option<String>; TEXT_COLUMNS],
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Read only when the project has attribute columns.
    pub attributes: Option<Value>,
}

/// A spreadsheet runs a cell that starts with one of these as a formula;
/// a leading apostrophe makes it text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// RFC 3339 in UTC with as many fraction digits as the value needs (as
/// `to_rfc3339` writes it), appended to `out` digit by digit: the export
/// writes two of these per row, and `write!` was a tenth of its time.
fn push_timestamp(out: &mut String, at: &DateTime<Utc>) {
    let date = at.date_naive();
    let time = at.time();
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 || !(0..=9999).contains(&date.year()) {
        // A leap second or a year of other than four digits: rare enough
        // to leave to chrono.
        out.push_str(&at.to_rfc3339());
        return;
    }
    push_digits(out, date.year() as u32, 4);
    out.push('-');
    push_digits(out, date.month(), 2);
    out.push('-');
    push_digits(out, date.day(), 2);
    out.push('T');
    push_digits(out, time.hour(), 2);
    out.push(':');
    push_digits(out, time.minute(), 2);
    out.push(':');
    push_digits(out, time.second(), 2);
    if nanos == 0 {
        // No fraction, as chrono writes it.
    } else if nanos.is_multiple_of(1_000_000) {
        out.push('.');
        push_digits(out, nanos / 1_000_000, 3);
    } else if nanos.is_multiple_of(1_000) {
        out.push('.');
        push_digits(out, nanos / 1_000, 6);
    } else {
        out.push('.');
        push_digits(out, nanos, 9);
    }
    out.push_str("+00:00");
}

/// `value` in exactly `width` decimal digits, zero-padded (it must fit).
fn push_digits(out: &mut String, mut value: u32, width: usize) {
    let mut digits = [b'0'; 9];
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    debug_assert_eq!(value, 0, "more digits than the width");
    out.extend(digits[..width].iter().map(|&digit| char::from(digit)));
}

fn push_attribute(out: &mut String, value: Option<&Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => out.push_str(text),
        Some(other) => out.push_str(&other.to_string()),
    }
}

/// Writes contacts as CSV in chunks: the header once, then rows as they
/// are read, each chunk into bytes that an async file can take.
pub struct ContactCsv {
    attribute_keys: Vec<String>,
}

impl ContactCsv {
    pub fn new(mut attribute_keys: Vec<String>) -> Self {
        attribute_keys.sort();
        attribute_keys.dedup();
        ContactCsv { attribute_keys }
    }

    /// Whether rows must carry their custom attributes.
    pub fn needs_attributes(&self) -> bool {
        !self.attribute_keys.is_empty()
    }

    /// The contact columns, then one column per custom attribute (prefixed
    /// where a key would repeat a contact column).
    pub fn header(&self) -> csv::Result<Vec<u8>> {
        let header: Vec<String> = BASE_COLUMNS
            .iter()
            .map(|column| (*column).to_owned())
            .chain(self.attribute_keys.iter().map(|key| {
                if BASE_COLUMNS.contains(&key.as_str()) {
                    format!("attribute_{key}")
                } else {
                    key.clone()
                }
            }))
            .map(|name| neutralise(&name).into_owned())
            .collect();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&header)?;
        into_bytes(writer)
    }

    /// Appends the rows to `out`, field by field: a million-row export
    /// makes no per-cell copies beyond a neutralised one.
    pub fn write_rows(&self, rows: &[ExportRow], out: &mut Vec<u8>) -> csv::Result<()> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        let mut scratch = String::with_capacity(64);
        let mut id = Uuid::encode_buffer();
        for row in rows {
            writer.write_field(row.id.hyphenated().encode_lower(&mut id).as_bytes())?;
            for cell in &row.text {
                writer.write_field(neutralise(cell.as_deref().unwrap_or_default()).as_bytes())?;
            }
            for at in [&row.created_at, &row.last_seen_at] {
                scratch.clear();
                push_timestamp(&mut scratch, at);
                writer.write_field(scratch.as_bytes())?;
            }
            for key in &self.attribute_keys {
                scratch.clear();
                push_attribute(
                    &mut scratch,
                    row.attributes.as_ref().and_then(|all| all.get(key)),
                );
                writer.write_field(neutralise(&scratch).as_bytes())?;
            }
            writer.write_record(None::<&[u8]>)?;
        }
        writer.flush()?;
        Ok(())
    }
}

fn into_bytes(writer: csv::Writer<Vec<u8>>) -> csv::Result<Vec<u8>> {
    writer
        .into_inner()
        .map_err(|error| csv::Error::from(std::io::Error::other(error.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formula_starts_are_neutralised() {
        for cell in ["=SUM(A1)", "+34612345678", "-1", "@cmd", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        for cell in ["Ana", "", "a=b", "42"] {
            assert_eq!(neutralise(cell), cell);
        }
    }

    #[test]
    fn timestamps_read_as_chrono_writes_them() {
        let second = Utc.with_ymd_and_hms(2026, 3, 9, 7, 5, 2).unwrap();
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 1_000] {
            let at = second + chrono::Duration::nanoseconds(nanos);
            let mut out = String::new();
            push_timestamp(&mut out, &at);
            assert_eq!(out, at.to_rfc3339());
        }
        let ancient = Utc.with_ymd_and_hms(812, 12, 25, 0, 0, 0).unwrap();
        let mut out = String::new();
        push_timestamp(&mut out, &ancient);
        assert_eq!(out, ancient.to_rfc3339());
    }

    fn text(cells: [&str; TEXT_COLUMNS]) -> [Option<String>; TEXT_COLUMNS] {
        cells.map(|cell| (!cell.is_empty()).then(|| cell.to_owned()))
    }

    #[test]
    fn rows_have_every_column_and_attributes_in_key_order() {
        let now = Utc::now();
        let row = ExportRow {
            id: Uuid::nil(),
            text: text([
                "=HYPERLINK(\"x\")",
                "ana@example.com",
                "",
                "Acme, Inc.",
                "ES",
                "Andalusia",
                "Málaga",
                "Málaga",
                "",
                "",
            ]),
            created_at: now,
            last_seen_at: now,
            attributes: Some(serde_json::json!({"seats": 3, "plan": "Pro", "city": "=x"})),
        };
        let csv = ContactCsv::new(vec!["seats".into(), "plan".into(), "city".into()]);
        assert!(csv.needs_attributes());
        let mut bytes = csv.header().unwrap();
        csv.write_rows(std::slice::from_ref(&row), &mut bytes)
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<_> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header.len(), 16);
        assert_eq!(&header[13..], ["attribute_city", "plan", "seats"]);
        let rows: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(&row[0], Uuid::nil().to_string());
        assert_eq!(&row[1], "'=HYPERLINK(\"x\")");
        assert_eq!(&row[3], "");
        assert_eq!(&row[4], "Acme, Inc.");
        assert_eq!(&row[7], "Málaga");
        assert_eq!(&row[11], now.to_rfc3339());
        assert_eq!(&row[13], "'=x");
        assert_eq!(&row[14], "Pro");
        assert_eq!(&row[15], "3");
    }

    #[test]
    fn rows_without_attributes_end_after_the_contact_columns() {
        let now = Utc::now();
        let row = ExportRow {
            id: Uuid::now_v7(),
            text: text(["Ana", "", "", "", "", "", "", "", "", ""]),
            created_at: now,
            last_seen_at: now,
            attributes: None,
        };
        let csv = ContactCsv::new(Vec::new());
        assert!(!csv.needs_attributes());
        let mut bytes = Vec::new();
        csv.write_rows(&[row.clone(), row], &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].split(',').count(), 13);
    }
}
