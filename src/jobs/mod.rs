//! Background jobs: contact exports run by workers inside the server.

pub mod csv_export;
pub mod export_format;
pub mod export_layout;
pub mod export_run;
pub mod export_source;
pub mod queue;
pub mod temp_files;
pub mod worker;
pub mod xlsx_export;
