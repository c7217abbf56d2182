//! `PgNotifyBus` against a real PostgreSQL server (TEST_DATABASE_URL); skipped
//! without one. Each test uses a channel of its own on the server's database
//! (NOTIFY needs no tables), so tests running side by side, and the API
//! suite's servers, never see each other's events.

use std::collections::HashSet;
use std::time::Duration;

use contacts::domain::events::{Event, MembershipChangeKind, MembershipChanged};
use contacts::pubsub::{EventBus, PgNotifyBus};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sea_orm::sqlx::{self, PgPool};
use sea_orm::{Database, DatabaseConnection};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(5);

fn database_url(test: &str) -> Option<String> {
    // The bus logs what it skips and how it reconnects; shown when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("contacts=debug")
        .with_test_writer()
        .try_init();
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("{test}: skipped, TEST_DATABASE_URL is not set (no PostgreSQL)");
            None
        }
    }
}

fn unique_channel() -> String {
    format!("contacts_test_{}", Uuid::now_v7().simple())
}

/// An independent connection pool, as a separate server instance would have.
async fn instance(url: &str) -> DatabaseConnection {
    Database::connect(url)
        .await
        .expect("TEST_DATABASE_URL must reach a PostgreSQL server")
}

fn pool(db: &DatabaseConnection) -> &PgPool {
    db.get_postgres_connection_pool()
}

fn event() -> Event {
    Event::MembershipChanged(MembershipChanged {
        project_id: Uuid::now_v7(),
        agent_id: Uuid::now_v7(),
        role: None,
        kind: MembershipChangeKind::Removed,
    })
}

async fn next_event(subscriber: &mut BoxStream<'static, Event>) -> Event {
    tokio::time::timeout(WAIT, subscriber.next())
        .await
        .expect("an event within a few seconds")
        .expect("the subscription is still open")
}

async fn assert_nothing_more(subscriber: &mut BoxStream<'static, Event>) {
    if let Ok(extra) = tokio::time::timeout(Duration::from_millis(300), subscriber.next()).await {
        panic!("expected no further event, got {extra:?}");
    }
}

/// Backend ids of the connections listening on `channel` in the database
/// `admin` is connected to.
async fn listeners(admin: &PgPool, channel: &str) -> HashSet<i32> {
    listeners_in(admin, None, channel).await
}

/// The same in `database` (by default the one `admin` is connected to).
async fn listeners_in(admin: &PgPool, database: Option<&str>, channel: &str) -> HashSet<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = coalesce($2, current_database()) AND starts_with(query, $1)",
    )
    .bind(format!("LISTEN \"{channel}\""))
    .bind(database)
    .fetch_all(admin)
    .await
    .expect("pg_stat_activity is readable")
    .into_iter()
    .collect()
}

async fn wait_for_listeners(
    admin: &PgPool,
    channel: &str,
    condition: impl Fn(&HashSet<i32>) -> bool,
) -> HashSet<i32> {
    wait_for_listeners_in(admin, None, channel, condition).await
}

async fn wait_for_listeners_in(
    admin: &PgPool,
    database: Option<&str>,
    channel: &str,
    condition: impl Fn(&HashSet<i32>) -> bool,
) -> HashSet<i32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let current = listeners_in(admin, database, channel).await;
        if condition(&current) {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "listeners on {channel} stayed {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A database of its own, dropped with this value.
struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(admin_url: &str, admin: &PgPool) -> ScratchDatabase {
        let name = format!("contacts_pubsub_{}", Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(admin)
            .await
            .expect("create a database");
        ScratchDatabase {
            admin_url: admin_url.to_owned(),
            url: with_database_name(admin_url, &name),
            name,
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async code; a small runtime of its own does the work.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(pool(&admin))
                    .await;
                }
            });
        })
        .join();
    }
}

fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

#[tokio::test]
async fn events_reach_every_instance_once_and_in_order() {
    let Some(url) = database_url("events_reach_every_instance_once_and_in_order") else {
        return;
    };
    let channel = unique_channel();
    let (first_db, second_db) = (instance(&url).await, instance(&url).await);
    let first = PgNotifyBus::connect_on(pool(&first_db), &channel)
        .await
        .expect("first bus");
    let second = PgNotifyBus::connect_on(pool(&second_db), &channel)
        .await
        .expect("second bus");
    let mut on_first = first.subscribe();
    let mut on_second = second.subscribe();
    let mut also_on_second = second.subscribe();

    let sent: Vec<Event> = (0..10).map(|_| event()).collect();
    for event in &sent {
        first.publish(event.clone());
    }
    for subscriber in [&mut on_first, &mut on_second, &mut also_on_second] {
        for expected in &sent {
            assert_eq!(&next_event(subscriber).await, expected);
        }
    }

    // And the other way round.
    let reply = event();
    second.publish(reply.clone());
    for subscriber in [&mut on_first, &mut on_second, &mut also_on_second] {
        assert_eq!(next_event(subscriber).await, reply);
        assert_nothing_more(subscriber).await;
    }
}

#[tokio::test]
async fn a_subscriber_gets_only_events_published_after_it_subscribed() {
    let Some(url) = database_url("a_subscriber_gets_only_events_published_after_it_subscribed")
    else {
        return;
    };
    let channel = unique_channel();
    let db = instance(&url).await;
    let bus = PgNotifyBus::connect_on(pool(&db), &channel)
        .await
        .expect("bus");
    let mut early = bus.subscribe();
    let before = event();
    bus.publish(before.clone());
    assert_eq!(next_event(&mut early).await, before);

    let mut late = bus.subscribe();
    let after = event();
    bus.publish(after.clone());
    assert_eq!(next_event(&mut late).await, after);
    assert_eq!(next_event(&mut early).await, after);
    assert_nothing_more(&mut late).await;
}

#[tokio::test]
async fn payloads_that_do_not_decode_are_skipped() {
    let Some(url) = database_url("payloads_that_do_not_decode_are_skipped") else {
        return;
    };
    let channel = unique_channel();
    let db = instance(&url).await;
    let bus = PgNotifyBus::connect_on(pool(&db), &channel)
        .await
        .expect("bus");
    let mut subscriber = bus.subscribe();

    // As a newer instance with an event kind this one does not know would send.
    for payload in [
        r#"{"SomethingNew":{"project_id":"0191a0b6-6d1c-7a3e-8d4c-1e2f3a4b5c6d"}}"#,
        "not JSON at all",
    ] {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&channel)
            .bind(payload)
            .execute(pool(&db))
            .await
            .expect("notify");
    }
    let sent = event();
    bus.publish(sent.clone());
    assert_eq!(next_event(&mut subscriber).await, sent);
    assert_nothing_more(&mut subscriber).await;
}

#[tokio::test]
async fn delivery_resumes_after_the_listening_connection_is_killed() {
    let Some(url) = database_url("delivery_resumes_after_the_listening_connection_is_killed")
    else {
        return;
    };
    let channel = unique_channel();
    let (first_db, second_db, admin) = (
        instance(&url).await,
        instance(&url).await,
        instance(&url).await,
    );
    let first = PgNotifyBus::connect_on(pool(&first_db), &channel)
        .await
        .expect("first bus");
    let second = PgNotifyBus::connect_on(pool(&second_db), &channel)
        .await
        .expect("second bus");
    let mut on_first = first.subscribe();
    let mut on_second = second.subscribe();

    let before = listeners(pool(&admin), &channel).await;
    assert_eq!(before.len(), 2, "one listening connection per bus");
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND starts_with(query, $1)",
    )
    .bind(format!("LISTEN \"{channel}\""))
    .fetch_all(pool(&admin))
    .await
    .expect("terminate the listeners");
    assert_eq!(terminated, vec![true, true]);

    // Both buses listen again, on new connections.
    wait_for_listeners(pool(&admin), &channel, |now| {
        now.len() == 2 && now.is_disjoint(&before)
    })
    .await;

    let sent: Vec<Event> = (0..3).map(|_| event()).collect();
    for event in &sent {
        first.publish(event.clone());
    }
    for subscriber in [&mut on_first, &mut on_second] {
        // Subscribers hear that events may have been lost while the bus
        // was not listening, before anything published afterwards.
        assert_eq!(next_event(subscriber).await, Event::EventsMissed);
        for expected in &sent {
            assert_eq!(&next_event(subscriber).await, expected);
        }
        assert_nothing_more(subscriber).await;
    }
}

/// The listener cannot reconnect at once (the database refuses connections
/// for a while): the bus keeps trying and listens again once it can.
#[tokio::test]
async fn the_listener_keeps_retrying_while_the_database_refuses_connections() {
    let Some(url) =
        database_url("the_listener_keeps_retrying_while_the_database_refuses_connections")
    else {
        return;
    };
    let channel = unique_channel();
    let admin = instance(&url).await;
    let database = ScratchDatabase::create(&url, pool(&admin)).await;
    let db = instance(&database.url).await;
    let bus = PgNotifyBus::connect_on(pool(&db), &channel)
        .await
        .expect("bus");
    let mut subscriber = bus.subscribe();
    let name = Some(database.name.as_str());
    assert_eq!(listeners_in(pool(&admin), name, &channel).await.len(), 1);

    let allow_connections = |allow: bool| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {allow}",
            database.name
        )))
    };
    allow_connections(false)
        .execute(pool(&admin))
        .await
        .expect("refuse connections");
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $2 AND starts_with(query, $1)",
    )
    .bind(format!("LISTEN \"{channel}\""))
    .bind(&database.name)
    .fetch_all(pool(&admin))
    .await
    .expect("terminate the listener");
    assert_eq!(terminated, vec![true]);
    // Long enough for several failed attempts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(listeners_in(pool(&admin), name, &channel).await.is_empty());

    allow_connections(true)
        .execute(pool(&admin))
        .await
        .expect("accept connections");
    wait_for_listeners_in(pool(&admin), name, &channel, |now| now.len() == 1).await;
    let sent = event();
    bus.publish(sent.clone());
    assert_eq!(next_event(&mut subscriber).await, Event::EventsMissed);
    assert_eq!(next_event(&mut subscriber).await, sent);
    assert_nothing_more(&mut subscriber).await;
}

#[tokio::test]
async fn dropping_the_bus_stops_listening_and_ends_subscriptions() {
    let Some(url) = database_url("dropping_the_bus_stops_listening_and_ends_subscriptions") else {
        return;
    };
    let channel = unique_channel();
    let (db, admin) = (instance(&url).await, instance(&url).await);
    let bus = PgNotifyBus::connect_on(pool(&db), &channel)
        .await
        .expect("bus");
    let mut subscriber = bus.subscribe();
    assert_eq!(listeners(pool(&admin), &channel).await.len(), 1);

    drop(bus);
    let ended = tokio::time::timeout(WAIT, subscriber.next())
        .await
        .expect("the subscription ends with the bus");
    assert_eq!(ended, None);
    wait_for_listeners(pool(&admin), &channel, HashSet::is_empty).await;
}

#[tokio::test]
async fn invalid_channel_names_are_refused() {
    let Some(url) = database_url("invalid_channel_names_are_refused") else {
        return;
    };
    let db = instance(&url).await;
    for channel in [String::new(), "x".repeat(64)] {
        assert!(PgNotifyBus::connect_on(pool(&db), &channel).await.is_err());
    }
}
