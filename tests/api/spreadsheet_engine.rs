//! Export files opened in a real spreadsheet engine: LibreOffice, headless,
//! converts them to flat ODS, and the cells are read back from its XML.
//! Without `soffice` on the machine the test says loudly that it skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::export_files::{download, export, insert, people};
use crate::exports::Outside;
use crate::helpers::spawn_app_full;

const TABLE: &str = "urn:oasis:names:tc:opendocument:xmlns:table:1.0";
const OFFICE: &str = "urn:oasis:names:tc:opendocument:xmlns:office:1.0";
const TEXT: &str = "urn:oasis:names:tc:opendocument:xmlns:text:1.0";

/// LibreOffice's CSV import as a person opens a file: comma, double quote,
/// UTF-8, from line 1, and "evaluate formulas" on, so that an unguarded
/// formula would become one.
const CSV_IMPORT: &str =
    "Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1,true";

/// Past this, repeated empty cells at the end of a row are not expanded.
const MAX_COLUMNS: usize = 64;

#[derive(Debug, Clone, Default, PartialEq)]
struct SheetCell {
    value_type: Option<String>,
    date_value: Option<String>,
    formula: Option<String>,
    text: String,
}

fn soffice() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("soffice"))
        .find(|candidate| candidate.is_file())
}

/// Converts `input` to flat ODS with a profile folder of its own, and
/// returns the XML.
fn to_fods(soffice: &Path, input: &Path, infilter: Option<&str>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new(soffice);
    command.arg("--headless").arg("--norestore").arg(format!(
        "-env:UserInstallation=file://{}",
        profile.path().display()
    ));
    if let Some(filter) = infilter {
        command.arg(format!("--infilter={filter}"));
    }
    let output = command
        .arg("--convert-to")
        .arg("fods")
        .arg("--outdir")
        .arg(out.path())
        .arg(input)
        .output()
        .expect("soffice runs");
    let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
    let converted = out.path().join(format!("{stem}.fods"));
    std::fs::read_to_string(&converted).unwrap_or_else(|error| {
        panic!(
            "soffice made no {}: {error}\nstdout: {}\nstderr: {}",
            converted.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The rows of the first sheet, as LibreOffice typed each cell.
fn first_sheet(fods: &str) -> Vec<Vec<SheetCell>> {
    let document = roxmltree::Document::parse(fods).expect("flat ODS is XML");
    let table = document
        .descendants()
        .find(|node| node.has_tag_name((TABLE, "table")))
        .expect("a sheet");
    let mut rows = Vec::new();
    for row in table
        .descendants()
        .filter(|node| node.has_tag_name((TABLE, "table-row")))
    {
        let mut cells = Vec::new();
        for cell in row.children().filter(|node| {
            node.has_tag_name((TABLE, "table-cell"))
                || node.has_tag_name((TABLE, "covered-table-cell"))
        }) {
            let repeated: usize = cell
                .attribute((TABLE, "number-columns-repeated"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let text: Vec<String> = cell
                .children()
                .filter(|node| node.has_tag_name((TEXT, "p")))
                .map(|paragraph| {
                    paragraph
                        .descendants()
                        .filter(|node| node.is_text())
                        .filter_map(|node| node.text())
                        .collect()
                })
                .collect();
            let value = SheetCell {
                value_type: cell.attribute((OFFICE, "value-type")).map(str::to_owned),
                date_value: cell.attribute((OFFICE, "date-value")).map(str::to_owned),
                formula: cell.attribute((TABLE, "formula")).map(str::to_owned),
                text: text.join("\n"),
            };
            for _ in 0..Ord::min(repeated, MAX_COLUMNS.saturating_sub(cells.len())) {
                cells.push(value.clone());
            }
        }
        while cells
            .last()
            .is_some_and(|cell| *cell == SheetCell::default())
        {
            cells.pop();
        }
        if !cells.is_empty() {
            rows.push(cells);
        }
    }
    rows
}

fn no_formula(rows: &[Vec<SheetCell>]) {
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            assert!(cell.formula.is_none(), "a formula at ({r}, {c}): {cell:?}");
        }
    }
}

fn column(rows: &[Vec<SheetCell>], name: &str) -> usize {
    rows[0]
        .iter()
        .position(|cell| cell.text == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[tokio::test]
async fn spreadsheet_engine_reads_typed_xlsx_cells_and_clean_csv_text() {
    let Some(soffice) = soffice() else {
        let banner = "!".repeat(78);
        eprintln!(
            "{banner}\n!! SKIPPED: soffice is not installed; export files were not opened in a spreadsheet.\n!! apt-get install -y libreoffice-calc-nogui\n{banner}"
        );
        return;
    };
    let outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, outside.adapters()).await;
    let agent = app.agent("exporter").await;
    let (project_id, _) = insert(&app, &agent, &people()).await;
    let files = tempfile::tempdir().unwrap();

    let xlsx = export(&app, &agent, &project_id, json!({"format": "XLSX"})).await;
    let csv = export(&app, &agent, &project_id, json!({})).await;
    let xlsx_path = files.path().join("contacts.xlsx");
    let csv_path = files.path().join("contacts.csv");
    std::fs::write(&xlsx_path, download(&xlsx).await.0).unwrap();
    std::fs::write(&csv_path, download(&csv).await.0).unwrap();
    // The check itself must be able to fail: an unguarded formula in a CSV
    // is a formula to this engine with these import options.
    let control_path = files.path().join("control.csv");
    std::fs::write(&control_path, "name\r\n=1+1\r\n").unwrap();

    let (xlsx_rows, csv_rows, control_rows) = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::task::spawn_blocking(move || {
            (
                first_sheet(&to_fods(&soffice, &xlsx_path, None)),
                first_sheet(&to_fods(&soffice, &csv_path, Some(CSV_IMPORT))),
                first_sheet(&to_fods(&soffice, &control_path, Some(CSV_IMPORT))),
            )
        }),
    )
    .await
    .expect("soffice finished in time")
    .unwrap();
    assert!(
        control_rows[1][0].formula.is_some(),
        "the engine did not evaluate the control formula: {control_rows:?}"
    );

    // XLSX: phones and names are text, times are dates, nothing is a formula.
    assert_eq!(xlsx_rows.len(), 1 + 8, "{xlsx_rows:?}");
    no_formula(&xlsx_rows);
    let (name, phone, created) = (
        column(&xlsx_rows, "name"),
        column(&xlsx_rows, "phone"),
        column(&xlsx_rows, "created_at"),
    );
    let first = &xlsx_rows[1];
    assert_eq!(first[phone].value_type.as_deref(), Some("string"));
    assert_eq!(first[phone].text, "+34612345678");
    assert_eq!(first[name].text, "José Müller");
    assert_eq!(
        first[created].value_type.as_deref(),
        Some("date"),
        "{first:?}"
    );
    assert_eq!(
        first[created].date_value.as_deref(),
        Some("2026-01-02T07:09:19")
    );
    let evil = &xlsx_rows[4];
    assert_eq!(evil[name].value_type.as_deref(), Some("string"));
    assert_eq!(
        evil[name].text,
        "=HYPERLINK(\"http://evil.example\",\"click\")"
    );

    // CSV: no formula, and names in every script intact.
    no_formula(&csv_rows);
    let name = column(&csv_rows, "name");
    let names: Vec<&str> = csv_rows[1..4]
        .iter()
        .map(|row| row[name].text.as_str())
        .collect();
    assert_eq!(names, ["José Müller", "王芳", "Анна"]);
    assert!(
        csv_rows[4][name].text.contains("HYPERLINK"),
        "{:?}",
        csv_rows[4][name]
    );
}
