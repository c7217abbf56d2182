//! PostgreSQL connections for the contacts section's read statements,
//! kept apart from the shared pool.
//!
//! The shared pool (sqlx's) pings every connection it takes back, in a
//! task of its own: one more round trip and one more task per statement,
//! which on the contacts page cost both this process and the database CPU
//! time. Here a connection goes back without a ping after a statement
//! that completed, when it is known to be in step with the server. One
//! whose statement failed or was abandoned half-way (its request dropped)
//! is pinged in a task of its own, as sqlx does with every connection, and
//! that task keeps the connection's place in the set until PostgreSQL has
//! answered: a client that abandons slow statements over and over cannot
//! keep more of them running than the set has connections. A connection
//! idle long enough to have been cut is pinged before use, as the shared
//! pool does.
//!
//! Anything else than a read statement, and everything on SQLite (one
//! connection for all), goes to the shared connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult,
    RuntimeErr, Statement, Values,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many statements run at once; more wait for a connection.
pub const READ_CONNECTIONS: usize = 10;
/// A connection idle this long is pinged before use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);
/// Connections are replaced after this long, as the shared pool's are,
/// so that server-side memory they hold is given back.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long an abandoned statement may keep running, its connection's
/// place held, before the connection is closed.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct ReadConnections {
    shared: DatabaseConnection,
    postgres: Option<Arc<Kept>>,
}

struct Kept {
    options: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

struct Idle {
    connection: PgConnection,
    opened: Instant,
    used: Instant,
}

/// A connection out of the set, for one statement, with its place.
struct Checkout {
    connection: Option<PgConnection>,
    opened: Instant,
    kept: Arc<Kept>,
    permit: Option<OwnedSemaphorePermit>,
}

impl ReadConnections {
    /// Up to `size` connections to the shared connection's database, each
    /// request waiting at most `acquire_timeout` for one.
    pub fn new(shared: DatabaseConnection, size: usize, acquire_timeout: Duration) -> Self {
        let postgres = (shared.get_database_backend() == DbBackend::Postgres).then(|| {
            let options = shared
                .get_postgres_connection_pool()
                .connect_options()
                .as_ref()
                .clone();
            Arc::new(Kept {
                options,
                idle: Mutex::new(Vec::with_capacity(size)),
                permits: Arc::new(Semaphore::new(size)),
                acquire_timeout,
            })
        });
        ReadConnections { shared, postgres }
    }

    /// How many connections are open and idle.
    pub fn idle(&self) -> usize {
        self.postgres
            .as_ref()
            .map_or(0, |kept| kept.idle.lock().expect("idle connections").len())
    }
}

impl Kept {
    /// Runs `statement` with `fetch` on a connection of the set.
    async fn run<T>(
        self: &Arc<Self>,
        statement: Statement,
        fetch: impl AsyncFnOnce(
            sqlx::query::Query<'_, sqlx::Postgres, SqlxValues>,
            &mut PgConnection,
        ) -> Result<T, sqlx::Error>,
    ) -> Result<T, DbErr> {
        let mut checkout = self.checkout().await?;
        let Statement { sql, values, .. } = statement;
        let values = SqlxValues(values.unwrap_or(Values(Vec::new())));
        let query = sqlx::query_with(sqlx::AssertSqlSafe(sql.as_str()), values);
        let started = Instant::now();
        let result = fetch(query, checkout.connection()).await;
        crate::db::report_statement(&sql, started.elapsed(), result.is_err());
        match result {
            Ok(rows) => {
                checkout.give_back();
                Ok(rows)
            }
            // Dropping the checkout has the connection checked.
            Err(error) => Err(DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))),
        }
    }

    async fn checkout(self: &Arc<Self>) -> Result<Checkout, DbErr> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?;
        loop {
            let idle = self.idle.lock().expect("idle connections").pop();
            let Some(mut idle) = idle else {
                let connection =
                    tokio::time::timeout_at(deadline, PgConnection::connect_with(&self.options))
                        .await
                        .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
                        .map_err(|error| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))))?;
                return Ok(self.checkout_of(connection, Instant::now(), permit));
            };
            if idle.opened.elapsed() >= MAX_LIFETIME {
                close_in_background(idle.connection);
                continue;
            }
            if idle.used.elapsed() >= IDLE_BEFORE_PING {
                match tokio::time::timeout_at(deadline, idle.connection.ping()).await {
                    Ok(Ok(())) => {}
                    // Dropped, not closed: a connection that does not
                    // answer a ping would not answer a goodbye either.
                    Ok(Err(_)) => continue,
                    // Cut short mid-ping: checked again in the background,
                    // in this request's place.
                    Err(_) => {
                        self.recover(idle.connection, idle.opened, permit);
                        return Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
                    }
                }
            }
            return Ok(self.checkout_of(idle.connection, idle.opened, permit));
        }
    }

    fn checkout_of(
        self: &Arc<Self>,
        connection: PgConnection,
        opened: Instant,
        permit: OwnedSemaphorePermit,
    ) -> Checkout {
        Checkout {
            connection: Some(connection),
            opened,
            kept: self.clone(),
            permit: Some(permit),
        }
    }

    fn keep(&self, connection: PgConnection, opened: Instant) {
        self.idle.lock().expect("idle connections").push(Idle {
            connection,
            opened,
            used: Instant::now(),
        });
    }

    /// Pings a connection whose state is unknown, holding `permit` until
    /// PostgreSQL answers (after whatever statement it is still running),
    /// then keeps the connection; one that does not answer in time is
    /// closed.
    fn recover(
        self: &Arc<Self>,
        mut connection: PgConnection,
        opened: Instant,
        permit: OwnedSemaphorePermit,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let kept = self.clone();
        runtime.spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(RECOVERY_TIMEOUT, connection.ping()).await {
                kept.keep(connection, opened);
            }
            drop(permit);
        });
    }
}

impl Checkout {
    fn connection(&mut self) -> &mut PgConnection {
        self.connection.as_mut().expect("a checked-out connection")
    }

    /// Back to the idle set, after a statement that completed.
    fn give_back(mut self) {
        if let Some(connection) = self.connection.take() {
            self.kept.keep(connection, self.opened);
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        // Not given back: its statement failed or its request was dropped
        // while it ran, so what the server sends next is unknown.
        if let (Some(connection), Some(permit)) = (self.connection.take(), self.permit.take()) {
            self.kept.recover(connection, self.opened, permit);
        }
    }
}

fn close_in_background(connection: PgConnection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = connection.close().await;
        });
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for ReadConnections {
    fn get_database_backend(&self) -> DbBackend {
        self.shared.get_database_backend()
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        self.shared.execute_raw(statement).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.shared.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        let Some(kept) = &self.postgres else {
            return self.shared.query_one_raw(statement).await;
        };
        let row = kept
            .run(statement, async |query, connection| {
                query.fetch_optional(connection).await
            })
            .await?;
        Ok(row.map(QueryResult::from))
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(kept) = &self.postgres else {
            return self.shared.query_all_raw(statement).await;
        };
        let rows = kept
            .run(statement, async |query, connection| {
                query.fetch_all(connection).await
            })
            .await?;
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }
}
