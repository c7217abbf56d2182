//! Connecting to the database (SQLite by default, PostgreSQL in production)
//! and bringing its schema up to date.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

/// How long the operator's commands wait for a connection.
const COMMAND_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite has one connection that every writer queues for: waiting for it
/// is normal operation, not an outage.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled PostgreSQL connection idle this long is pinged before use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    connect_with(url, COMMAND_ACQUIRE_TIMEOUT).await
}

/// Connects; on PostgreSQL a request waits at most `acquire_timeout` for a
/// connection, so that it fails fast while the database is down instead
/// of hanging.
pub async fn connect_with(
    url: &str,
    acquire_timeout: Duration,
) -> anyhow::Result<DatabaseConnection> {
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        create_sqlite_folder(url)?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .connect_timeout(Duration::from_secs(5).min(acquire_timeout))
        .acquire_timeout(if is_sqlite {
            SQLITE_ACQUIRE_TIMEOUT
        } else {
            acquire_timeout
        })
        .sqlx_logging(false);
    if is_sqlite {
        // SQLite allows one writer at a time; one connection turns
        // concurrent writers into a queue instead of "database is locked"
        // errors when a read transaction upgrades to a write.
        options.max_connections(1).min_connections(1);
    } else {
        // A ping before every checkout is a round trip per statement; only a
        // connection left idle long enough to have been dropped is checked.
        options
            .max_connections(20)
            .min_connections(1)
            .test_before_acquire_if_idle_for(IDLE_BEFORE_PING);
    }
    let mut db = Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact(url)))?;
    // Every statement is reported under `contacts::sql` with its duration:
    // `RUST_LOG=contacts::sql=debug` shows what each request costs, and the
    // tests count a request's statements from these events.
    db.set_metric_callback(|info| {
        report_statement(&info.statement.sql, info.elapsed, info.failed);
    });
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )
        .await
        .context("cannot configure SQLite")?;
    }
    Ok(db)
}

/// Reports a statement that ran: to the request's trace, and as a
/// `contacts::sql` event.
pub fn report_statement(sql: &str, elapsed: Duration, failed: bool) {
    crate::telemetry::record_statement(sql, elapsed, failed);
    tracing::debug!(
        target: "contacts::sql",
        elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        failed,
        sql = %sql,
        "statement"
    );
}

/// The advisory lock that instances starting together on one PostgreSQL
/// database queue for, so that one migrates while the others wait and then
/// find nothing left to do. Any fixed number that nothing else locks.
const MIGRATION_LOCK_KEY: i64 = 0x636f_6e74_6163_7473; // "contacts"

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        // One SQLite file has one writer at a time already.
        return run_migrations(db).await;
    }
    // A session lock, on a connection held apart from the pool the
    // migrations run on: the lock lives as long as that connection, so a
    // process that dies while migrating releases it with its connection.
    let mut holder = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .context("cannot connect to take the migration lock")?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *holder)
        .await
        .context("cannot take the migration lock")?;
    let migrated = run_migrations(db).await;
    // Closing the connection releases the lock even if unlocking failed.
    let _ = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *holder)
        .await;
    let _ = holder.close().await;
    migrated
}

async fn run_migrations(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("database migrations failed")
}

/// Whether the database answers a trivial query within a few seconds.
pub async fn is_ready(db: &DatabaseConnection) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(3), db.ping()).await,
        Ok(Ok(()))
    )
}

/// Whether an error means the database cannot be reached (down, refusing
/// connections, or the connection was cut) rather than a failed statement.
pub fn is_unavailable(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let sqlx_error = match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            error
        }
        _ => return false,
    };
    match sqlx_error.as_ref() {
        sea_orm::sqlx::Error::Io(_)
        | sea_orm::sqlx::Error::Tls(_)
        | sea_orm::sqlx::Error::PoolTimedOut
        | sea_orm::sqlx::Error::PoolClosed
        | sea_orm::sqlx::Error::WorkerCrashed => true,
        sea_orm::sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            // Connection exceptions (08...), operator intervention (57P01
            // admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
            // now) and "database does not accept connections" (55000 is
            // wider, so only with that message).
            code.starts_with("08")
                || code.starts_with("57P")
                || (code == "55000" && error.message().contains("not currently accepting"))
        }),
        _ => false,
    }
}

/// Whether a statement failed on a unique index: a concurrent request
/// wrote the same key first.
pub fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn create_sqlite_folder(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
