//! Transaction-scoped locks on values rather than rows (an email, an
//! identity), so that two requests about the same value run one after the
//! other. PostgreSQL only: SQLite runs one writer at a time already.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::error::AppResult;

/// Takes every lock named by `keys` until the transaction ends. Locks are
/// taken in one order (sorted), so two requests asking for the same keys
/// in opposite orders cannot deadlock.
pub async fn lock_values(txn: &impl ConnectionTrait, mut keys: Vec<String>) -> AppResult<()> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}
