//! The tracing subscriber: pretty for people, JSON for log collectors.
//!
//! In JSON mode every line the process writes is one JSON object: the
//! panics and the error a failed start ends with go through the subscriber
//! too. Colour codes are written only to a terminal.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests start many apps in one process) is harmless.
    let initialised = match format {
        LogFormat::Pretty => registry
            .with(fmt::layer().with_ansi(std::io::stdout().is_terminal()))
            .try_init(),
        LogFormat::Json => registry.with(fmt::layer().json()).try_init(),
    };
    if initialised.is_ok() {
        let _ = FORMAT.set(format);
        if format == LogFormat::Json {
            std::panic::set_hook(Box::new(log_panic));
        }
    }
}

pub fn is_json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    let location = info
        .location()
        .map(|location| format!("{}:{}", location.file(), location.line()))
        .unwrap_or_default();
    let thread = std::thread::current();
    tracing::error!(
        panic = message,
        location,
        thread = thread.name().unwrap_or("unnamed"),
        "panic"
    );
}

/// The error a command ends with, in the log's format. Before the settings
/// are read (when they are what failed) JSON is chosen from `LOG_FORMAT`
/// alone.
pub fn report_fatal(error: &anyhow::Error) {
    let message = format!("{error:#}");
    if is_json() {
        tracing::error!(error = message, "contacts stopped");
    } else if std::env::var("LOG_FORMAT").is_ok_and(|value| value.eq_ignore_ascii_case("json")) {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "level": "ERROR",
            "fields": { "message": "contacts stopped", "error": message },
            "target": "contacts",
        });
        eprintln!("{line}");
    } else {
        eprintln!("Error: {message}");
    }
}
