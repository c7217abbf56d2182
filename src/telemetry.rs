//! The tracing subscriber: pretty for people, JSON for log collectors, and
//! spans over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! In JSON mode every line the process writes is one JSON object: the
//! panics and the error a failed start ends with go through the subscriber
//! too. Colour codes are written only to a terminal.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, fmt, prelude::*};

use crate::config::LogFormat;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();
/// Set when spans go out over OTLP; flushed by [`shutdown`].
static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

const SERVICE_NAME: &str = "contacts";

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let (traces, traces_problem) = match otlp_provider() {
        Ok(provider) => (provider, None),
        Err(problem) => (None, Some(problem)),
    };
    // Spans go out at `info` and above whatever the log's level, so that a
    // quiet log still gives full traces.
    let otel_layer = traces.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(EnvFilter::new("info,sqlx=off,sea_orm=off,h2=off,hyper=off"))
    });
    let registry = tracing_subscriber::registry().with(otel_layer);
    // A second init (tests start many apps in one process) is harmless.
    let initialised = match format {
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_filter(filter))
            .try_init(),
    };
    if initialised.is_ok() {
        let _ = FORMAT.set(format);
        if format == LogFormat::Json {
            std::panic::set_hook(Box::new(log_panic));
        }
        if let Some(provider) = traces {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            opentelemetry::global::set_tracer_provider(provider.clone());
            let _ = TRACES.set(provider);
            tracing::info!("traces go out over OTLP");
        }
    }
    if let Some(problem) = traces_problem {
        tracing::error!(error = problem, "traces cannot go out over OTLP");
    }
}

/// The OTLP/HTTP exporter, configured by the standard `OTEL_EXPORTER_OTLP_*`
/// variables (`http/protobuf` unless `OTEL_EXPORTER_OTLP_PROTOCOL` says
/// `http/json`); none without an endpoint.
fn otlp_provider() -> Result<Option<SdkTracerProvider>, String> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
    if !configured {
        return Ok(None);
    }
    use opentelemetry_otlp::WithExportConfig as _;
    // Named here: with both encodings built in, the exporter's own default
    // would be JSON, and OTLP's is protobuf.
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("http/json") => opentelemetry_otlp::Protocol::HttpJson,
        Ok("http/protobuf") | Err(_) => opentelemetry_otlp::Protocol::HttpBinary,
        Ok(other) => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not served: use http/protobuf or http/json"
            ));
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|error| error.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(SERVICE_NAME)
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// Sends the spans still buffered; called once the server has stopped.
pub fn shutdown() {
    if let Some(provider) = TRACES.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(%error, "the last spans could not be sent");
    }
}

/// Whether spans go out over OTLP.
pub fn traces_enabled() -> bool {
    TRACES.get().is_some()
}

/// A span for one SQL statement that took `elapsed` and has just ended, as
/// a child of the span it ran in. The database layer only reports a
/// statement once it is over, so the span is written with its real start
/// and end times directly.
pub fn record_statement(sql: &str, elapsed: Duration, failed: bool) {
    let Some(provider) = TRACES.get() else {
        return;
    };
    use opentelemetry::trace::TracerProvider as _;
    let parent = tracing::Span::current().context();
    if !parent.span().span_context().is_valid() {
        // A statement outside any request or job (migrations, the queue's
        // polling) would make a trace of its own per statement: not sent.
        return;
    }
    let tracer = provider.tracer(SERVICE_NAME);
    let ended = SystemTime::now();
    let verb = sql
        .split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase();
    let mut span = tracer
        .span_builder(format!("sql {verb}"))
        .with_kind(opentelemetry::trace::SpanKind::Client)
        .with_start_time(ended - elapsed)
        .with_attributes([
            opentelemetry::KeyValue::new("db.query.text", bounded(sql, 2_000)),
            opentelemetry::KeyValue::new("db.operation.name", verb),
            opentelemetry::KeyValue::new("error", failed),
        ])
        .start_with_context(&tracer, &parent);
    span.end_with_timestamp(ended);
}

fn bounded(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_owned(),
    }
}

/// The W3C trace context of an incoming request (`traceparent`), for its span.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !traces_enabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderCarrier(headers))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

struct HeaderCarrier<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
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
