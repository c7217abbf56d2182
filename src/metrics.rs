//! Prometheus metrics, served at `/metrics` (or on `METRICS_ADDR`).
//!
//! Request series are labelled by root field, never by the operation name
//! a client chooses, so their number stays bounded by the schema. What the
//! database knows (export jobs, the queue) is read when scraped, so every
//! instance reports the same totals; what only this process sees (requests,
//! websockets, its pool) is counted here.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::geo::GeoLocator;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub root_field: String,
    pub operation_type: String,
    /// `OK`, or the code of the first error of the request.
    pub error_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RootFieldLabels {
    pub root_field: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// Export job statuses, so that a status with no job reads 0, not absent.
const EXPORT_STATUSES: [&str; 5] = ["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"];

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RootFieldLabels, Histogram, fn() -> Histogram>,
    rate_limited: Family<RootFieldLabels, Counter>,
    pub websocket_connections: Gauge,
    pub active_subscriptions: Gauge,
    export_jobs: Family<StatusLabels, Gauge>,
    export_queue_depth: Gauge,
    export_oldest_queued_seconds: FloatGauge,
    export_rows: Gauge,
    export_bytes: Gauge,
    pool_connections: Gauge,
    pool_idle_connections: Gauge,
    pool_acquire_seconds: Histogram,
    geoip_build_timestamp: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("contacts");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests over HTTP, per root field they ask for",
            requests.clone(),
        );
        let request_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "graphql_request_duration_seconds",
            "How long GraphQL requests over HTTP took, per root field",
            request_seconds.clone(),
        );
        let rate_limited = Family::<RootFieldLabels, Counter>::default();
        registry.register(
            "rate_limit_refusals",
            "Requests refused by a rate limit or a login lock",
            rate_limited.clone(),
        );
        let websocket_connections = Gauge::default();
        registry.register(
            "websocket_connections",
            "Open websocket connections",
            websocket_connections.clone(),
        );
        let active_subscriptions = Gauge::default();
        registry.register(
            "active_subscriptions",
            "Operations running on websockets",
            active_subscriptions.clone(),
        );
        let export_jobs = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "export_jobs",
            "Export jobs by status, all instances",
            export_jobs.clone(),
        );
        let export_queue_depth = Gauge::default();
        registry.register(
            "export_queue_depth",
            "Export jobs waiting for a worker",
            export_queue_depth.clone(),
        );
        let export_oldest_queued_seconds = FloatGauge::default();
        registry.register(
            "export_oldest_queued_age_seconds",
            "How long the oldest waiting export job has waited; 0 when none waits",
            export_oldest_queued_seconds.clone(),
        );
        let export_rows = Gauge::default();
        registry.register(
            "export_rows_written",
            "Rows written by export jobs, all instances, as the database records them",
            export_rows.clone(),
        );
        let export_bytes = Gauge::default();
        registry.register(
            "export_bytes_written",
            "Bytes of the export files uploaded, all instances",
            export_bytes.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Database connections this instance holds",
            pool_connections.clone(),
        );
        let pool_idle_connections = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Database connections this instance holds idle",
            pool_idle_connections.clone(),
        );
        let pool_acquire_seconds = latency_histogram();
        registry.register(
            "db_pool_acquire_duration_seconds",
            "How long taking a connection from the pool took, sampled every second",
            pool_acquire_seconds.clone(),
        );
        let geoip_build_timestamp = Gauge::default();
        registry.register(
            "geoip_database_build_timestamp_seconds",
            "When the GeoIP database in use was built (Unix time); 0 without one",
            geoip_build_timestamp.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            rate_limited,
            websocket_connections,
            active_subscriptions,
            export_jobs,
            export_queue_depth,
            export_oldest_queued_seconds,
            export_rows,
            export_bytes,
            pool_connections,
            pool_idle_connections,
            pool_acquire_seconds,
            geoip_build_timestamp,
        }
    }

    /// One GraphQL request over HTTP that asked for `root_fields`; a
    /// request refused before its document was read counts under `-`.
    pub fn record_request(
        &self,
        root_fields: &[String],
        operation_type: Option<&str>,
        first_error_code: Option<&str>,
        rate_limited: bool,
        took: Duration,
    ) {
        let unknown = ["-".to_owned()];
        let fields = if root_fields.is_empty() {
            &unknown[..]
        } else {
            root_fields
        };
        for root_field in fields {
            self.requests
                .get_or_create(&RequestLabels {
                    root_field: root_field.clone(),
                    operation_type: operation_type.unwrap_or("-").to_owned(),
                    error_code: first_error_code.unwrap_or("OK").to_owned(),
                })
                .inc();
            let labels = RootFieldLabels {
                root_field: root_field.clone(),
            };
            self.request_seconds
                .get_or_create(&labels)
                .observe(took.as_secs_f64());
            if rate_limited {
                self.rate_limited.get_or_create(&labels).inc();
            }
        }
    }

    /// The exposition text, after reading what the database and the
    /// process know now.
    pub async fn render(&self, db: &DatabaseConnection, geo: &dyn GeoLocator) -> String {
        if let Err(error) = self.read_export_jobs(db).await {
            tracing::warn!(%error, "metrics: cannot read the export jobs");
        }
        self.read_pool(db);
        self.geoip_build_timestamp
            .set(geo.build_epoch().map_or(0, |epoch| epoch as i64));
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("metrics: cannot encode the registry");
        }
        text
    }

    async fn read_export_jobs(&self, db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        let backend = db.get_database_backend();
        let by_status = db
            .query_all_raw(Statement::from_string(
                backend,
                // PostgreSQL sums bigints as numeric: cast back.
                "SELECT status, COUNT(*) AS jobs, \
                 CAST(COALESCE(SUM(rows_written), 0) AS BIGINT) AS rows_written, \
                 CAST(COALESCE(SUM(file_bytes), 0) AS BIGINT) AS file_bytes \
                 FROM export_jobs GROUP BY status",
            ))
            .await?;
        let mut counts = [0i64; EXPORT_STATUSES.len()];
        let (mut rows, mut bytes) = (0i64, 0i64);
        for row in by_status {
            let status: String = row.try_get("", "status")?;
            let jobs: i64 = row.try_get("", "jobs")?;
            if let Some(index) = EXPORT_STATUSES.iter().position(|known| *known == status) {
                counts[index] = jobs;
            }
            rows += row.try_get::<i64>("", "rows_written")?;
            bytes += row.try_get::<i64>("", "file_bytes")?;
        }
        for (status, jobs) in EXPORT_STATUSES.iter().zip(counts) {
            self.export_jobs
                .get_or_create(&StatusLabels {
                    status: (*status).to_owned(),
                })
                .set(jobs);
        }
        self.export_rows.set(rows);
        self.export_bytes.set(bytes);

        let oldest = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT COUNT(*) AS queued, MIN(created_at) AS oldest FROM export_jobs WHERE status = 'QUEUED'",
            ))
            .await?;
        let (queued, oldest): (i64, Option<chrono::DateTime<chrono::Utc>>) = match oldest {
            Some(row) => (row.try_get("", "queued")?, row.try_get("", "oldest")?),
            None => (0, None),
        };
        self.export_queue_depth.set(queued);
        let waited = oldest.map_or(0.0, |oldest| {
            (chrono::Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.export_oldest_queued_seconds.set(waited);
        Ok(())
    }

    fn read_pool(&self, db: &DatabaseConnection) {
        let (size, idle) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        };
        self.pool_connections.set(i64::from(size));
        self.pool_idle_connections.set(idle as i64);
    }

    /// Times taking a connection from the pool once a second, until
    /// `shutdown`: what a request waits for a connection, sampled.
    pub fn spawn_pool_sampler(
        self: Arc<Self>,
        db: DatabaseConnection,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = every.tick() => {}
                }
                let started = Instant::now();
                let acquired = match db.get_database_backend() {
                    DbBackend::Postgres => {
                        db.get_postgres_connection_pool().acquire().await.is_ok()
                    }
                    DbBackend::Sqlite => db.get_sqlite_connection_pool().acquire().await.is_ok(),
                    _ => false,
                };
                if acquired {
                    self.pool_acquire_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
            }
        });
    }
}

/// One unit of a gauge, held for as long as this lives: a connection open,
/// an operation running.
pub struct GaugeHeld(Gauge);

impl GaugeHeld {
    pub fn raise(gauge: &Gauge) -> GaugeHeld {
        gauge.inc();
        GaugeHeld(gauge.clone())
    }
}

impl Drop for GaugeHeld {
    fn drop(&mut self) {
        self.0.dec();
    }
}
