//! The periodic retention job inside the server. Every instance runs the
//! timer; on PostgreSQL a pass takes an advisory lock first and an instance
//! that finds it taken skips its turn, so several instances never delete
//! side by side. (A pass is safe to repeat anyway: every step is idempotent.)

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Retention, RetentionReport};

/// The advisory lock a retention pass holds on PostgreSQL; any fixed number
/// that nothing else locks ("retentio").
pub const RETENTION_LOCK_KEY: i64 = 0x7265_7465_6e74_696f;

/// Runs a pass now and then every `interval`, until `shutdown`.
pub fn spawn(
    retention: Arc<Retention>,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = run_exclusively(&retention) => {}
            }
        }
    })
}

/// One pass, unless another instance is running one; the outcome is logged.
pub async fn run_exclusively(retention: &Retention) -> Option<RetentionReport> {
    let outcome = match retention.db.get_database_backend() {
        DbBackend::Postgres => with_postgres_lock(&retention.db, retention).await,
        // One SQLite file is one server's.
        _ => Some(retention.run_once(Utc::now()).await.map_err(as_anyhow)),
    };
    match outcome {
        None => {
            tracing::debug!("retention: another instance is running a pass");
            None
        }
        Some(Ok(report)) => {
            if report.deleted_anything() || report.export_files_failed > 0 {
                tracing::info!(
                    access_tokens = report.access_tokens,
                    password_resets = report.password_resets,
                    invitations = report.invitations,
                    notifications = report.notifications,
                    export_files = report.export_files,
                    export_files_failed = report.export_files_failed,
                    mail_files = report.mail_files,
                    "retention run deleted expired data"
                );
            }
            Some(report)
        }
        Some(Err(error)) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "retention run failed; next run tries again"
            );
            None
        }
    }
}

fn as_anyhow(error: crate::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}

/// The pass under a session lock held on a connection of its own; `None`
/// when another instance holds it.
async fn with_postgres_lock(
    db: &DatabaseConnection,
    retention: &Retention,
) -> Option<anyhow::Result<RetentionReport>> {
    let mut holder = match db.get_postgres_connection_pool().acquire().await {
        Ok(holder) => holder,
        Err(error) => {
            return Some(Err(anyhow::anyhow!(
                "cannot take the retention lock: {error}"
            )));
        }
    };
    let locked: Result<bool, _> = sea_orm::sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RETENTION_LOCK_KEY)
        .fetch_one(&mut *holder)
        .await;
    match locked {
        Ok(true) => {}
        Ok(false) => return None,
        Err(error) => {
            return Some(Err(anyhow::anyhow!(
                "cannot take the retention lock: {error}"
            )));
        }
    }
    let outcome = retention.run_once(Utc::now()).await.map_err(as_anyhow);
    let unlocked = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RETENTION_LOCK_KEY)
        .execute(&mut *holder)
        .await;
    if unlocked.is_err() {
        // Closing the connection releases the lock for good.
        let _ = holder.close().await;
    }
    Some(outcome)
}
