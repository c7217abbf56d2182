//! The contacts section's own PostgreSQL connections: a connection goes
//! back unchecked only after a statement that completed; one whose
//! statement was abandoned or failed is checked first, keeping its place
//! meanwhile, so no answer meant for it reaches the next statement and no
//! more statements run than the set has connections; a connection the
//! server cut is replaced; waiting for one is bounded. On SQLite the reads
//! go to the shared connection and these tests have nothing to check.

use std::time::Duration;

use contacts::read_connections::ReadConnections;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use crate::helpers::{TestApp, spawn_app};

/// An app on PostgreSQL and a set of `size` read connections to its
/// database, each statement waiting at most `wait` for one.
async fn postgres_reads(
    test: &str,
    size: usize,
    wait: Duration,
) -> Option<(TestApp, ReadConnections)> {
    let app = spawn_app().await;
    if app.app_services.db.get_database_backend() != DbBackend::Postgres {
        println!("{test}: skipped, the reads have their own connections on PostgreSQL only");
        return None;
    }
    let reads = ReadConnections::new(app.app_services.db.clone(), size, wait);
    Some((app, reads))
}

fn statement(sql: &str) -> Statement {
    Statement::from_string(DbBackend::Postgres, sql)
}

async fn number(reads: &impl ConnectionTrait, sql: &str) -> Result<i32, DbErr> {
    let row = reads.query_one_raw(statement(sql)).await?.expect("one row");
    row.try_get_by_index(0)
}

async fn backend_pid(reads: &impl ConnectionTrait) -> i32 {
    number(reads, "SELECT pg_backend_pid()")
        .await
        .expect("the backend's pid")
}

#[tokio::test]
async fn a_statement_abandoned_half_way_leaves_no_answer_for_the_next() {
    let Some((_app, reads)) =
        postgres_reads("a_statement_abandoned_half_way", 1, Duration::from_secs(5)).await
    else {
        return;
    };
    let first = backend_pid(&reads).await;
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        number(&reads, "SELECT 1 FROM pg_sleep(0.5)"),
    )
    .await;
    assert!(abandoned.is_err(), "the slow statement was given up");
    assert_eq!(reads.idle(), 0, "its connection is being checked");
    // With one connection allowed, the next statement waits for the
    // abandoned one to end on the same connection (not on a new one beside
    // it), then gets its own answer, not the abandoned one's row.
    assert_eq!(number(&reads, "SELECT 2").await.unwrap(), 2);
    assert_eq!(backend_pid(&reads).await, first);
    assert_eq!(reads.idle(), 1);
}

#[tokio::test]
async fn a_failed_statement_leaves_its_connection_checked_for_the_next() {
    let Some((_app, reads)) =
        postgres_reads("a_failed_statement_leaves", 1, Duration::from_secs(5)).await
    else {
        return;
    };
    let first = backend_pid(&reads).await;
    let failed = number(&reads, "SELECT 1 / (SELECT 0)").await;
    assert!(
        matches!(&failed, Err(error) if error.to_string().contains("division by zero")),
        "{failed:?}"
    );
    assert_eq!(number(&reads, "SELECT 4").await.unwrap(), 4);
    assert_eq!(backend_pid(&reads).await, first, "the same connection");
}

#[tokio::test]
async fn one_connection_serves_statement_after_statement() {
    let Some((_app, reads)) =
        postgres_reads("one_connection_serves", 4, Duration::from_secs(5)).await
    else {
        return;
    };
    let first = backend_pid(&reads).await;
    for _ in 0..20 {
        assert_eq!(backend_pid(&reads).await, first);
    }
    assert_eq!(reads.idle(), 1);
}

#[tokio::test]
async fn a_connection_the_server_cut_is_replaced_once_idle() {
    let Some((app, reads)) =
        postgres_reads("a_connection_the_server_cut", 1, Duration::from_secs(5)).await
    else {
        return;
    };
    let cut = backend_pid(&reads).await;
    app.app_services
        .db
        .execute_unprepared(&format!("SELECT pg_terminate_backend({cut})"))
        .await
        .unwrap();
    // Idle past the ping's threshold: the dead connection is found out
    // before it is used.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let replacement = backend_pid(&reads).await;
    assert_ne!(replacement, cut);
}

#[tokio::test]
async fn waiting_for_a_connection_is_bounded_and_reads_as_unavailable() {
    let Some((_app, reads)) =
        postgres_reads("waiting_for_a_connection", 1, Duration::from_millis(200)).await
    else {
        return;
    };
    let busy = {
        let reads = reads.clone();
        tokio::spawn(async move { number(&reads, "SELECT 1 FROM pg_sleep(1)").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waited = number(&reads, "SELECT 2").await;
    let error = waited.expect_err("no connection within 200 ms");
    assert!(contacts::db::is_unavailable(&error), "{error:?}");
    assert_eq!(busy.await.unwrap().unwrap(), 1);
    assert_eq!(number(&reads, "SELECT 2").await.unwrap(), 2);
}
