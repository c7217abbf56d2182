//! Limits that hold under parallel requests and across instances: login
//! attempts sent at once over HTTP and websockets, two instances sharing
//! Redis (when TEST_REDIS_URL is set), a Redis that is down, and limits
//! that apply before the database is asked anything.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, public_key, spawn_app_with};
use crate::statements::StatementCounter;
use crate::subscriptions::{MODERN, connect_as, next, send};
use contacts::config::Settings;
use contacts::startup::Adapters;

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
const START: &str =
    "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId visitorToken } }";
/// The default free failures of one email.
const FREE_FAILURES: usize = 5;

/// A first lock long enough to outlast any test, however slow the machine.
fn long_locks(settings: &mut Settings) {
    settings.rate_limits.login_lock_base = std::time::Duration::from_secs(60);
}

/// The Redis the shared-limit tests use, or `None` (and a loud line) when
/// TEST_REDIS_URL is not set.
fn test_redis(test: &str) -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED {test}: set TEST_REDIS_URL=redis://127.0.0.1:6379 to run it");
            None
        }
    }
}

/// Counts in Redis under a prefix of this test alone: the server is shared.
fn use_redis(settings: &mut Settings, url: &str) {
    settings.rate_limits.redis_url = Some(url.to_owned());
    settings.rate_limits.redis_key_prefix = format!("contacts-test:{}:", uuid::Uuid::now_v7());
}

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    app.graphql(None, LOGIN, json!({"e": email, "p": password}))
        .await
}

/// How many of `bodies` got past the lock to the password check.
fn checked(bodies: &[Value]) -> usize {
    bodies
        .iter()
        .filter(|body| error_code(body) != "RATE_LIMITED")
        .inspect(|body| assert_eq!(error_code(body), "UNAUTHENTICATED", "{body}"))
        .count()
}

async fn start_chat_from(app: &TestApp, key: &str, ip: &str) -> Value {
    let input = json!({"i": {"projectKey": key}});
    app.graphql_with_headers(None, &[("x-forwarded-for", ip)], START, input)
        .await
}

async fn parallel_wrong_logins(apps: &[&TestApp], email: &str, attempts: usize) -> usize {
    let bodies = join_all((0..attempts).map(|n| {
        let app = apps[n % apps.len()];
        async move { login(app, email, &format!("wrong password {n}")).await }
    }))
    .await;
    checked(&bodies)
}

#[tokio::test]
async fn parallel_wrong_logins_reach_the_password_check_at_most_the_free_count() {
    let app = spawn_app_with(long_locks).await;
    let ana = app.agent("ana").await;
    let reached = parallel_wrong_logins(&[&app], &ana.email, 12).await;
    println!("HTTP: {reached} of 12 parallel wrong logins reached the password check");
    assert!((1..=FREE_FAILURES).contains(&reached), "{reached}");
    // Locked: the right password among more attempts does not win.
    let bodies = join_all((0..6).map(|n| {
        let app = &app;
        let email = &ana.email;
        async move {
            let password = if n == 3 { PASSWORD } else { "wrong again" };
            login(app, email, password).await
        }
    }))
    .await;
    for body in &bodies {
        assert_eq!(error_code(body), "RATE_LIMITED", "locked: {body}");
    }
}

#[tokio::test]
async fn parallel_wrong_logins_from_one_address_are_held_to_its_free_count() {
    let app = spawn_app_with(|settings| settings.rate_limits.login_ip_free_failures = 4).await;
    let bodies = join_all((0..12).map(|n| {
        let app = &app;
        async move { login(app, &format!("nobody{n}@example.com"), "wrong password").await }
    }))
    .await;
    let reached = checked(&bodies);
    assert!((1..=4).contains(&reached), "{reached}");
}

#[tokio::test]
async fn parallel_wrong_logins_over_a_websocket_are_held_to_the_free_count() {
    let app = spawn_app_with(long_locks).await;
    let operator = app.agent("operator").await;
    let ana = app.agent("ana").await;
    let mut socket = connect_as(&app.ws_url(), MODERN, &operator.token).await;
    for n in 0..12 {
        send(
            &mut socket,
            json!({"id": n.to_string(), "type": "subscribe", "payload": {
                "query": LOGIN, "variables": {"e": ana.email, "p": format!("wrong {n}")}}}),
        )
        .await;
    }
    let mut bodies = Vec::new();
    while bodies.len() < 12 {
        let message = next(&mut socket).await.expect("a message");
        match message["type"].as_str() {
            Some("next") => bodies.push(message["payload"].clone()),
            Some("complete") => {}
            _ => panic!("unexpected {message}"),
        }
    }
    let reached = checked(&bodies);
    println!("websocket: {reached} of 12 parallel wrong logins reached the password check");
    assert!((1..=FREE_FAILURES).contains(&reached), "{reached}");
    let body = login(&app, &ana.email, PASSWORD).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn a_lockout_on_one_instance_holds_on_another_sharing_redis() {
    let Some(redis) = test_redis("a_lockout_on_one_instance_holds_on_another_sharing_redis") else {
        return;
    };
    let first = spawn_app_with(|settings| {
        use_redis(settings, &redis);
        long_locks(settings);
    })
    .await;
    let second = first.another_instance(Adapters::default()).await;
    let ana = first.agent("ana").await;
    let bob = first.agent("bob").await;

    for _ in 0..FREE_FAILURES {
        let body = login(&first, &ana.email, "wrong password").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = login(&second, &ana.email, PASSWORD).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert!(body["errors"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));

    // Parallel attempts spread over both instances pass the free count no better.
    let reached = parallel_wrong_logins(&[&first, &second], &bob.email, 12).await;
    println!("two instances on Redis: {reached} of 12 parallel wrong logins reached the check");
    assert!((1..=FREE_FAILURES).contains(&reached), "{reached}");
}

#[tokio::test]
async fn a_per_address_limit_counts_across_instances_sharing_redis() {
    let Some(redis) = test_redis("a_per_address_limit_counts_across_instances_sharing_redis")
    else {
        return;
    };
    let first = spawn_app_with(|settings| {
        use_redis(settings, &redis);
        settings.trusted_proxies = "127.0.0.1/32, ::1".parse().unwrap();
        settings.rate_limits.public_per_ip = 3;
    })
    .await;
    let second = first.another_instance(Adapters::default()).await;
    let admin = first.agent("admin").await;
    let project_id = first.project(&admin, "Shop").await;
    let key = public_key(&first, &admin, &project_id).await;
    for app in [&first, &second, &first] {
        let body = start_chat_from(app, &key, "203.0.113.7").await;
        assert!(body["errors"].is_null(), "{body}");
    }
    for app in [&second, &first] {
        let body = start_chat_from(app, &key, "203.0.113.7").await;
        assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
        // Three a minute: the next token in 20 s, less the time taken.
        let retry_after = body["errors"][0]["extensions"]["retryAfter"].as_u64();
        assert!(
            retry_after.is_some_and(|secs| (15..=20).contains(&secs)),
            "{body}"
        );
    }
    let body = start_chat_from(&second, &key, "203.0.113.8").await;
    assert!(body["errors"].is_null(), "another address: {body}");
}

#[tokio::test]
async fn with_redis_down_limits_and_locks_hold_on_each_instance() {
    // Nothing listens on port 1: every Redis call fails at once.
    let app = spawn_app_with(|settings| {
        settings.rate_limits.redis_url = Some("redis://127.0.0.1:1".into());
        settings.rate_limits.login_per_ip = 40;
        // Only the bucket refuses the address below, not its lock.
        settings.rate_limits.login_ip_free_failures = 1000;
        long_locks(settings);
    })
    .await;
    let ana = app.agent("ana").await;
    let reached = parallel_wrong_logins(&[&app], &ana.email, 12).await;
    assert!((1..=FREE_FAILURES).contains(&reached), "{reached}");
    let body = login(&app, &ana.email, PASSWORD).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");

    let bodies = join_all((0..40).map(|n| {
        let app = &app;
        async move { login(app, &format!("nobody{n}@example.com"), "x").await }
    }))
    .await;
    let limited = bodies
        .iter()
        .filter(|body| error_code(body) == "RATE_LIMITED")
        .count();
    // 40 a minute, 14 taken before: the per-address limit still applies.
    assert!(limited >= 10, "{limited} of 40 refused");
}

#[tokio::test]
async fn start_chat_over_its_key_limit_asks_the_database_nothing() {
    let counter = StatementCounter::installed();
    let app = spawn_app_with(|settings| settings.rate_limits.public_per_project = 2).await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let project = app
        .graphql(
            Some(&admin.token),
            "query($id: ID!) { project(id: $id) { publicKey secretKey } }",
            json!({"id": project_id}),
        )
        .await;
    let input = json!({"i": {
        "projectKey": project["data"]["project"]["publicKey"],
        "secretKey": project["data"]["project"]["secretKey"],
        "visitorIp": "198.51.100.20",
    }});
    for _ in 0..2 {
        let (body, statements) = counter.run_as(&app, None, START, input.clone()).await;
        assert!(body["errors"].is_null(), "{body}");
        assert!(statements > 0, "the counter sees the admitted starts");
    }
    let (body, statements) = counter.run_as(&app, None, START, input).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(statements, 0, "refused before any query");
}
