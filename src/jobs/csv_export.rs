//! Contacts as CSV (RFC 4180, UTF-8, no byte-order mark), safe to open in a
//! spreadsheet and plain for CSV parsers and CRM imports.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use chrono::{Datelike, Timelike};
use serde_json::Value;

use crate::jobs::export_format::{ExportWriter, WriteError};
use crate::jobs::export_layout::{Cell, ExportLayout, ExportRow, LocalTime, is_e164};

/// Large writes: a million-row export is a few hundred megabytes.
const BUFFER_BYTES: usize = 256 * 1024;

/// A spreadsheet runs a cell that starts with one of these as a formula;
/// a leading apostrophe makes it text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// ISO 8601 to the second with the zone's offset (`2026-01-02T07:09:19+01:00`),
/// appended digit by digit: the export writes two of these per row, and
/// `write!` was a tenth of its time.
fn push_time(out: &mut String, time: &LocalTime) {
    let date = time.wall.date();
    let offset_minutes = time.offset_seconds / 60;
    if !(0..=9999).contains(&date.year()) || time.offset_seconds % 60 != 0 {
        // A year of other than four digits, or a historical offset with
        // seconds: rare enough to leave to chrono.
        if let Some(offset) = chrono::FixedOffset::east_opt(time.offset_seconds) {
            let at = chrono::TimeZone::from_local_datetime(&offset, &time.wall).single();
            if let Some(at) = at {
                out.push_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
                return;
            }
        }
        out.push_str(&time.wall.format("%Y-%m-%dT%H:%M:%S").to_string());
        return;
    }
    push_digits(out, date.year() as u32, 4);
    out.push('-');
    push_digits(out, date.month(), 2);
    out.push('-');
    push_digits(out, date.day(), 2);
    out.push('T');
    push_digits(out, time.wall.hour(), 2);
    out.push(':');
    push_digits(out, time.wall.minute(), 2);
    out.push(':');
    push_digits(out, time.wall.second(), 2);
    out.push(if offset_minutes < 0 { '-' } else { '+' });
    let offset_minutes = offset_minutes.unsigned_abs();
    push_digits(out, offset_minutes / 60, 2);
    out.push(':');
    push_digits(out, offset_minutes % 60, 2);
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

fn push_attribute(out: &mut String, value: &Value) {
    match value {
        Value::String(text) => out.push_str(text),
        other => out.push_str(&other.to_string()),
    }
}

/// Writes contacts as CSV to a file: the header at once, then rows as they
/// are read.
pub struct ContactCsv<W: std::io::Write = BufWriter<File>> {
    layout: ExportLayout,
    writer: csv::Writer<W>,
    scratch: String,
}

impl ContactCsv {
    pub fn create(layout: ExportLayout, path: &Path) -> Result<Self, WriteError> {
        let file = BufWriter::with_capacity(BUFFER_BYTES, File::create(path)?);
        ContactCsv::new(layout, file)
    }
}

impl<W: std::io::Write> ContactCsv<W> {
    fn new(layout: ExportLayout, out: W) -> Result<Self, WriteError> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        for name in layout.headers() {
            writer.write_field(neutralise(&name).as_bytes())?;
        }
        writer.write_record(None::<&[u8]>)?;
        Ok(ContactCsv {
            layout,
            writer,
            scratch: String::with_capacity(64),
        })
    }

    fn write_row(&mut self, row: &ExportRow) -> Result<(), WriteError> {
        let mut id = uuid::Uuid::encode_buffer();
        for cell in self.layout.cells(row) {
            let scratch = &mut self.scratch;
            match cell {
                Cell::Empty => self.writer.write_field([])?,
                Cell::Id(value) => self
                    .writer
                    .write_field(value.hyphenated().encode_lower(&mut id).as_bytes())?,
                Cell::Text(text) => self.writer.write_field(neutralise(text).as_bytes())?,
                // A validated phone reads as a number, not a formula; an
                // apostrophe would end up in every CRM it is imported into.
                Cell::Phone(phone) if is_e164(phone) => self.writer.write_field(phone)?,
                Cell::Phone(other) => self.writer.write_field(neutralise(other).as_bytes())?,
                Cell::Time(time) => {
                    scratch.clear();
                    push_time(scratch, &time);
                    self.writer.write_field(scratch.as_bytes())?;
                }
                Cell::Attribute(value) => {
                    scratch.clear();
                    push_attribute(scratch, value);
                    self.writer.write_field(neutralise(scratch).as_bytes())?;
                }
            }
        }
        self.writer.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn into_inner(self) -> Result<W, WriteError> {
        self.writer
            .into_inner()
            .map_err(|error| WriteError::Io(std::io::Error::other(error.to_string())))
    }
}

impl<W: std::io::Write + Send> ExportWriter for ContactCsv<W> {
    fn write_rows(&mut self, rows: &[ExportRow]) -> Result<(), WriteError> {
        rows.iter().try_for_each(|row| self.write_row(row))
    }

    fn finish(self: Box<Self>) -> Result<(), WriteError> {
        let mut out = self.into_inner()?;
        out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::export_choices::{ColumnChoice, ExportColumn, ExportField};
    use crate::jobs::export_layout::TEXT_COLUMNS;
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    #[test]
    fn formula_starts_are_neutralised() {
        for cell in ["=SUM(A1)", "+34612345678", "-1", "@cmd", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        for cell in ["Ana", "", "a=b", "42"] {
            assert_eq!(neutralise(cell), cell);
        }
    }

    fn written(wall: chrono::DateTime<chrono_tz::Tz>) -> String {
        let time = LocalTime {
            wall: wall.naive_local(),
            offset_seconds: chrono::Offset::fix(wall.offset()).local_minus_utc(),
        };
        let mut out = String::new();
        push_time(&mut out, &time);
        out
    }

    #[test]
    fn times_are_iso_8601_to_the_second_with_the_offset() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 6, 9, 19).unwrap();
        let cases = [
            (chrono_tz::UTC, "2026-01-02T06:09:19+00:00"),
            (chrono_tz::Europe::Madrid, "2026-01-02T07:09:19+01:00"),
            (chrono_tz::America::St_Johns, "2026-01-02T02:39:19-03:30"),
            (chrono_tz::Asia::Kathmandu, "2026-01-02T11:54:19+05:45"),
        ];
        for (zone, expected) in cases {
            assert_eq!(written(at.with_timezone(&zone)), expected);
        }
        let ancient = Utc.with_ymd_and_hms(812, 12, 25, 0, 0, 0).unwrap();
        assert_eq!(
            written(ancient.with_timezone(&chrono_tz::UTC)),
            ancient.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        );
    }

    fn text(cells: [&str; TEXT_COLUMNS]) -> [Option<String>; TEXT_COLUMNS] {
        cells.map(|cell| (!cell.is_empty()).then(|| cell.to_owned()))
    }

    fn export(layout: ExportLayout, rows: &[ExportRow]) -> String {
        let mut csv = ContactCsv::new(layout, Vec::new()).unwrap();
        csv.write_rows(rows).unwrap();
        String::from_utf8(csv.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn rows_have_every_column_and_attributes_in_key_order() {
        let now = Utc.with_ymd_and_hms(2026, 3, 9, 7, 5, 2).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        let row = ExportRow {
            id: Uuid::nil(),
            text: text([
                "=HYPERLINK(\"x\")",
                "ana@example.com",
                "+34612345678",
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
        let columns =
            ColumnChoice::default().resolve(vec!["seats".into(), "plan".into(), "city".into()]);
        let text = export(
            ExportLayout::new(columns, chrono_tz::Europe::Madrid),
            &[row],
        );
        assert!(!text.starts_with('\u{feff}'));
        assert!(text.ends_with("\r\n"));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<_> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header.len(), 16);
        assert_eq!(&header[..4], ["id", "name", "email", "phone"]);
        assert_eq!(&header[13..], ["attribute_city", "plan", "seats"]);
        let rows: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(&row[0], Uuid::nil().to_string());
        assert_eq!(&row[1], "'=HYPERLINK(\"x\")");
        assert_eq!(&row[3], "+34612345678");
        assert_eq!(&row[4], "Acme, Inc.");
        assert_eq!(&row[7], "Málaga");
        assert_eq!(&row[9], "");
        assert_eq!(&row[11], "2026-03-09T08:05:02+01:00");
        assert_eq!(&row[13], "'=x");
        assert_eq!(&row[14], "Pro");
        assert_eq!(&row[15], "3");
    }

    #[test]
    fn only_a_validated_phone_goes_unguarded() {
        let now = Utc::now();
        let rows: Vec<_> = ["+34612345678", "+=1+1", "-1", "+34 612"]
            .into_iter()
            .map(|phone| ExportRow {
                id: Uuid::now_v7(),
                text: text(["", "", phone, "", "", "", "", "", "", ""]),
                created_at: now,
                last_seen_at: now,
                attributes: None,
            })
            .collect();
        let layout = ExportLayout::new(
            vec![ExportColumn::Field(ExportField::Phone)],
            chrono_tz::UTC,
        );
        let text = export(layout, &rows);
        assert_eq!(
            text,
            "phone\r\n+34612345678\r\n'+=1+1\r\n'-1\r\n'+34 612\r\n"
        );
    }
}
