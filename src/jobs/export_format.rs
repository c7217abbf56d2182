//! The file an export writes, whatever its format: the run hands it rows
//! and finishes it, and never learns how cells are written.

use std::path::Path;

use crate::domain::export_choices::ExportFormat;
use crate::jobs::csv_export::ContactCsv;
use crate::jobs::export_layout::{ExportLayout, ExportRow};
use crate::jobs::xlsx_export::ContactXlsx;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The disk: worth another attempt.
    #[error("cannot write the export file: {0}")]
    Io(#[from] std::io::Error),
    /// The writer refused the content: another attempt would do the same.
    #[error("cannot write the export file: {0}")]
    Format(String),
}

impl From<csv::Error> for WriteError {
    fn from(error: csv::Error) -> Self {
        if error.is_io_error() {
            match error.into_kind() {
                csv::ErrorKind::Io(io) => WriteError::Io(io),
                other => WriteError::Format(format!("{other:?}")),
            }
        } else {
            WriteError::Format(error.to_string())
        }
    }
}

/// An export file being written. Its calls do blocking file work: the run
/// makes them on a blocking thread.
pub trait ExportWriter: Send {
    /// Appends rows in file order.
    fn write_rows(&mut self, rows: &[ExportRow]) -> Result<(), WriteError>;

    /// Completes the file at its path.
    fn finish(self: Box<Self>) -> Result<(), WriteError>;
}

/// Starts the file at `path`, its header written; `scratch_dir` holds
/// what a format keeps aside until the file is finished.
pub fn create_writer(
    format: ExportFormat,
    layout: ExportLayout,
    path: &Path,
    scratch_dir: &Path,
) -> Result<Box<dyn ExportWriter>, WriteError> {
    Ok(match format {
        ExportFormat::Csv => Box::new(ContactCsv::create(layout, path)?),
        ExportFormat::Xlsx => Box::new(ContactXlsx::create(layout, path, scratch_dir)?),
    })
}
