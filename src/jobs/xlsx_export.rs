//! Contacts as an XLSX workbook with typed cells: text stays text (phones
//! included), times are dates in the export's zone, and no cell is ever a
//! formula. Rows go to disk as they are written (constant memory).

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{ColNum, Format, RowNum, Workbook, XlsxError};
use serde_json::Value;

use crate::jobs::export_format::{ExportWriter, WriteError};
use crate::jobs::export_layout::{Cell, ExportLayout, ExportRow};

/// Data rows per sheet; past it the rows continue on a new sheet. A sheet
/// holds 1,048,576 rows at most; a round number reads better.
pub const ROWS_PER_SHEET: u32 = 1_000_000;

/// Excel refuses longer strings in a cell.
const MAX_CELL_CHARS: usize = 32_767;

const SHEET_NAME: &str = "Contacts";

pub struct ContactXlsx {
    layout: ExportLayout,
    workbook: Workbook,
    path: PathBuf,
    header: Format,
    date: Format,
    rows_per_sheet: u32,
    sheets: usize,
    /// The next row of the current sheet (row 0 is its header).
    next_row: RowNum,
}

impl ContactXlsx {
    /// A workbook written to `path` when finished; its rows wait in
    /// unnamed files under `scratch_dir` meanwhile.
    pub fn create(
        layout: ExportLayout,
        path: &Path,
        scratch_dir: &Path,
    ) -> Result<Self, WriteError> {
        ContactXlsx::with_rows_per_sheet(layout, path, scratch_dir, ROWS_PER_SHEET)
    }

    fn with_rows_per_sheet(
        layout: ExportLayout,
        path: &Path,
        scratch_dir: &Path,
        rows_per_sheet: u32,
    ) -> Result<Self, WriteError> {
        if layout.columns().len() > usize::from(ColNum::MAX) {
            return Err(WriteError::Format("too many columns for a sheet".into()));
        }
        let mut workbook = Workbook::new();
        workbook.set_tempdir(scratch_dir).map_err(xlsx_error)?;
        let mut xlsx = ContactXlsx {
            layout,
            workbook,
            path: path.to_owned(),
            header: Format::new().set_bold(),
            date: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            rows_per_sheet,
            sheets: 0,
            next_row: 0,
        };
        xlsx.start_sheet()?;
        Ok(xlsx)
    }

    /// A new sheet with the header row; widths must be set before any row.
    fn start_sheet(&mut self) -> Result<(), WriteError> {
        self.sheets += 1;
        let name = match self.sheets {
            1 => SHEET_NAME.to_owned(),
            n => format!("{SHEET_NAME} {n}"),
        };
        let headers = self.layout.headers();
        let sheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        sheet.set_name(name).map_err(xlsx_error)?;
        for (index, header) in headers.into_iter().enumerate() {
            let col = index as ColNum;
            sheet
                .set_column_width(col, Ord::max(header.len(), 20) as f64)
                .map_err(xlsx_error)?;
            sheet
                .write_string_with_format(0, col, header, &self.header)
                .map_err(xlsx_error)?;
        }
        self.next_row = 1;
        Ok(())
    }

    fn write_row(&mut self, row: &ExportRow) -> Result<(), WriteError> {
        if self.next_row > self.rows_per_sheet {
            self.start_sheet()?;
        }
        let at = self.next_row;
        let sheet = self
            .workbook
            .worksheet_from_index(self.sheets - 1)
            .map_err(xlsx_error)?;
        for (index, cell) in self.layout.cells(row).enumerate() {
            let col = index as ColNum;
            // Strings with `write_string`, never `write`: a value that looks
            // like a formula stays the text it is.
            let written = match cell {
                Cell::Empty => continue,
                Cell::Id(id) => sheet.write_string(at, col, id.to_string()),
                Cell::Text(text) | Cell::Phone(text) => sheet.write_string(at, col, bounded(text)),
                Cell::Time(time) => {
                    sheet.write_datetime_with_format(at, col, time.wall, &self.date)
                }
                // LibreOffice reads a boolean cell as the formula TRUE():
                // text is what the CSV has too.
                Cell::Attribute(Value::Bool(flag)) => sheet.write_string(at, col, flag.to_string()),
                Cell::Attribute(Value::Number(number)) => match number.as_f64() {
                    Some(value) if value.is_finite() => sheet.write_number(at, col, value),
                    _ => sheet.write_string(at, col, number.to_string()),
                },
                Cell::Attribute(Value::String(text)) => sheet.write_string(at, col, bounded(text)),
                Cell::Attribute(other) => sheet.write_string(at, col, bounded(&other.to_string())),
            };
            written.map_err(xlsx_error)?;
        }
        self.next_row += 1;
        Ok(())
    }
}

fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_CELL_CHARS) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

fn xlsx_error(error: XlsxError) -> WriteError {
    match error {
        XlsxError::IoError(io) => WriteError::Io(io),
        other => WriteError::Format(other.to_string()),
    }
}

impl ExportWriter for ContactXlsx {
    fn write_rows(&mut self, rows: &[ExportRow]) -> Result<(), WriteError> {
        rows.iter().try_for_each(|row| self.write_row(row))
    }

    fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        let path = self.path.clone();
        self.workbook.save(path).map_err(xlsx_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::export_choices::{ExportColumn, ExportField};
    use crate::jobs::export_layout::TEXT_COLUMNS;
    use calamine::{Data, Reader, Xlsx, open_workbook};
    use chrono::{TimeZone, Utc};

    fn row(name: &str, phone: &str) -> ExportRow {
        let mut text: [Option<String>; TEXT_COLUMNS] = Default::default();
        text[0] = Some(name.to_owned());
        text[2] = Some(phone.to_owned());
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 6, 9, 19).unwrap();
        ExportRow {
            id: uuid::Uuid::nil(),
            text,
            created_at: at,
            last_seen_at: at,
            attributes: Some(serde_json::json!({"seats": 3, "vip": true, "note": "=1+1"})),
        }
    }

    #[test]
    fn cells_are_typed_and_rows_continue_on_a_new_sheet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.xlsx");
        let layout = ExportLayout::new(
            vec![
                ExportColumn::Field(ExportField::Name),
                ExportColumn::Field(ExportField::Phone),
                ExportColumn::Field(ExportField::CreatedAt),
                ExportColumn::Attribute("seats".into()),
                ExportColumn::Attribute("vip".into()),
                ExportColumn::Attribute("note".into()),
                ExportColumn::Attribute("missing".into()),
            ],
            chrono_tz::Europe::Madrid,
        );
        let mut xlsx =
            Box::new(ContactXlsx::with_rows_per_sheet(layout, &path, dir.path(), 2).unwrap());
        let rows = [
            row("José Müller", "+34612345678"),
            row("王芳", "+8613812345678"),
            row("=cmd|' /C calc'!A0", "-1"),
        ];
        xlsx.write_rows(&rows).unwrap();
        xlsx.finish().unwrap();

        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(book.sheet_names(), ["Contacts", "Contacts 2"]);
        let first = book.worksheet_range("Contacts").unwrap();
        assert_eq!(first.height(), 3);
        assert_eq!(first.get((0, 1)), Some(&Data::String("phone".into())));
        assert_eq!(first.get((1, 0)), Some(&Data::String("José Müller".into())));
        assert_eq!(
            first.get((1, 1)),
            Some(&Data::String("+34612345678".into()))
        );
        let Some(Data::DateTime(created)) = first.get((1, 2)) else {
            panic!("not a date: {:?}", first.get((1, 2)));
        };
        assert_eq!(
            created.as_datetime().unwrap().to_string(),
            "2026-01-02 07:09:19"
        );
        assert_eq!(first.get((1, 3)), Some(&Data::Float(3.0)));
        assert_eq!(first.get((1, 4)), Some(&Data::String("true".into())));
        assert_eq!(first.get((1, 5)), Some(&Data::String("=1+1".into())));
        let second = book.worksheet_range("Contacts 2").unwrap();
        assert_eq!(second.height(), 2);
        assert_eq!(second.get((0, 0)), Some(&Data::String("name".into())));
        assert_eq!(
            second.get((1, 0)),
            Some(&Data::String("=cmd|' /C calc'!A0".into()))
        );
        assert_eq!(second.get((1, 1)), Some(&Data::String("-1".into())));
        let formulas = book.worksheet_formula("Contacts 2").unwrap();
        assert!(
            formulas
                .used_cells()
                .all(|(_, _, formula)| formula.is_empty())
        );
    }

    #[test]
    fn long_text_is_cut_to_what_a_cell_holds() {
        assert_eq!(bounded("añb"), "añb");
        assert_eq!(bounded(&"é".repeat(40_000)).chars().count(), MAX_CELL_CHARS);
    }
}
