//! Abuse, faults and shutdown: rate limits, failed-login locks, CORS and
//! widget origins, SIGTERM on the real binary, and a database outage.

use std::time::{Duration, Instant};

use entity::{chat, export_job};
use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, Database, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{
    PASSWORD, TestAgent, TestApp, error_code, public_key, spawn_app, spawn_app_with,
};
use crate::server_process::ServerProcess;
use crate::subscriptions::{self, MODERN};

const START: &str =
    "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId visitorToken } }";
const SUBMIT: &str =
    "mutation($a: [FormAnswerInput!]!) { submitContactForm(answers: $a) { complete } }";
const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
const SET_ORIGINS: &str = "mutation($p: ID!, $o: [String!]!) {
    setAllowedOrigins(projectId: $p, origins: $o) { id allowedOrigins } }";

/// One POST to /graphql with extra headers; the status, headers and body.
async fn post(
    app: &TestApp,
    token: Option<&str>,
    headers: &[(&str, &str)],
    query: &str,
    variables: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    (status, headers, body)
}

async fn start_chat_from(
    app: &TestApp,
    key: &str,
    ip: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    post(
        app,
        None,
        &[("x-forwarded-for", ip)],
        START,
        json!({"i": {"projectKey": key}}),
    )
    .await
}

async fn chats(app: &TestApp) -> u64 {
    chat::Entity::find()
        .count(&app.app_services.db)
        .await
        .unwrap()
}

/// An app that believes the test client's X-Forwarded-For, with an admin
/// and a project.
async fn app_with(
    configure: impl FnOnce(&mut contacts::config::Settings),
) -> (TestApp, TestAgent, String, String) {
    let app = spawn_app_with(|settings| {
        settings.trusted_proxies = "127.0.0.1/32, ::1".parse().unwrap();
        configure(settings);
    })
    .await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = public_key(&app, &admin, &project_id).await;
    (app, admin, project_id, key)
}

fn retry_after_of(body: &Value) -> u64 {
    body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("a retryAfter hint: {body}"))
}

#[tokio::test]
async fn start_chat_is_limited_per_client_address_with_a_retry_hint() {
    let (app, _, _, key) = app_with(|settings| settings.rate_limits.public_per_ip = 3).await;
    for _ in 0..3 {
        let (_, _, body) = start_chat_from(&app, &key, "203.0.113.5").await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let (status, headers, body) = start_chat_from(&app, &key, "203.0.113.5").await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    // Three a minute: the next token comes in 20 s.
    let retry_after = retry_after_of(&body);
    assert!((15..=20).contains(&retry_after), "{body}");
    assert_eq!(
        headers["retry-after"].to_str().unwrap(),
        retry_after.to_string()
    );
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(chats(&app).await, 3, "a refused start writes nothing");

    let (_, headers, body) = start_chat_from(&app, &key, "203.0.113.6").await;
    assert!(
        body["errors"].is_null(),
        "another address is not limited: {body}"
    );
    assert!(!headers.contains_key("retry-after"));
}

#[tokio::test]
async fn start_chat_is_limited_per_project_key_across_addresses() {
    let (app, admin, _, key) =
        app_with(|settings| settings.rate_limits.public_per_project = 4).await;
    for n in 0..4 {
        let (_, _, body) = start_chat_from(&app, &key, &format!("198.51.100.{n}")).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let (_, _, body) = start_chat_from(&app, &key, "198.51.100.77").await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert!(retry_after_of(&body) >= 1);

    let other = app.project(&admin, "Other").await;
    let other_key = public_key(&app, &admin, &other).await;
    let (_, _, body) = start_chat_from(&app, &other_key, "198.51.100.77").await;
    assert!(
        body["errors"].is_null(),
        "another project is not limited: {body}"
    );
}

#[tokio::test]
async fn a_sites_server_is_limited_per_visitor_it_vouches_for() {
    let (app, admin, project_id, key) =
        app_with(|settings| settings.rate_limits.public_per_ip = 2).await;
    let secret = app
        .graphql(
            Some(&admin.token),
            "query($id: ID!) { project(id: $id) { secretKey } }",
            json!({"id": project_id}),
        )
        .await["data"]["project"]["secretKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = |visitor_ip: &'static str, secret: String| {
        let app = &app;
        let key = key.clone();
        async move {
            let input = json!({"projectKey": key, "visitorIp": visitor_ip, "secretKey": secret});
            post(app, None, &[], START, json!({"i": input})).await.2
        }
    };
    // One caller, many visitors: each visitor has a bucket of its own.
    for visitor_ip in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.1",
    ] {
        let body = start(visitor_ip, secret.clone()).await;
        assert!(body["errors"].is_null(), "{visitor_ip}: {body}");
    }
    let body = start("198.51.100.1", secret.clone()).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    // A wrong key vouches for nobody: the caller's own address pays.
    for _ in 0..2 {
        let body = start("198.51.100.9", "sk_wrong".into()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let body = start("198.51.100.9", "sk_wrong".into()).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn form_submissions_count_against_the_client_address() {
    let (app, _, _, key) = app_with(|settings| settings.rate_limits.public_per_ip = 3).await;
    let (_, _, started) = start_chat_from(&app, &key, "203.0.113.9").await;
    let token = started["data"]["startChat"]["visitorToken"]
        .as_str()
        .expect("a visitor token")
        .to_owned();
    for _ in 0..2 {
        let (_, _, body) = post(
            &app,
            Some(&token),
            &[("x-forwarded-for", "203.0.113.9")],
            SUBMIT,
            json!({"a": []}),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let (_, headers, body) = post(
        &app,
        Some(&token),
        &[("x-forwarded-for", "203.0.113.9")],
        SUBMIT,
        json!({"a": []}),
    )
    .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn failed_logins_lock_the_email_for_longer_each_time() {
    let app = spawn_app_with(|settings| {
        settings.rate_limits.login_email_free_failures = 2;
        settings.rate_limits.login_lock_base = Duration::from_millis(1000);
    })
    .await;
    let ana = app.agent("ana").await;
    let attempt = |password: &'static str| {
        let app = &app;
        let email = ana.email.clone();
        async move { post(app, None, &[], LOGIN, json!({"e": email, "p": password})).await }
    };
    for _ in 0..2 {
        let (_, _, body) = attempt("wrong password").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    // The last free failure locked the email for 1 s: even the right password waits.
    let (_, headers, body) = attempt(PASSWORD).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(retry_after_of(&body), 1);
    assert_eq!(headers["retry-after"], "1");
    // In other case as well.
    let (_, _, body) = post(
        &app,
        None,
        &[],
        LOGIN,
        json!({"e": ana.email.to_uppercase(), "p": PASSWORD}),
    )
    .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, _, body) = attempt("wrong again").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let (_, _, body) = attempt(PASSWORD).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(retry_after_of(&body), 2, "the lock doubled: {body}");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, _, body) = attempt(PASSWORD).await;
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
    // Another agent from the same address was never locked.
    let bob = app.agent("bob").await;
    assert!(!bob.token.is_empty());
}

#[tokio::test]
async fn login_attempts_are_limited_per_client_address() {
    let app = spawn_app_with(|settings| settings.rate_limits.login_per_ip = 3).await;
    for n in 0..3 {
        let (_, _, body) = post(
            &app,
            None,
            &[],
            LOGIN,
            json!({"e": format!("nobody{n}@example.com"), "p": "whatever you say"}),
        )
        .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let (_, headers, body) = post(
        &app,
        None,
        &[],
        LOGIN,
        json!({"e": "nobody9@example.com", "p": "whatever you say"}),
    )
    .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    // Three a minute: the next attempt in 20 s, less the time the three took.
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((15..=20).contains(&retry_after), "{retry_after}");
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap()
}

fn allowed_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|value| value.to_str().unwrap().to_owned())
}

async fn set_origins(app: &TestApp, agent: &TestAgent, project_id: &str, origins: Value) -> Value {
    app.graphql(
        Some(&agent.token),
        SET_ORIGINS,
        json!({"p": project_id, "o": origins}),
    )
    .await
}

#[tokio::test]
async fn preflights_allow_only_listed_widget_origins_and_the_agents_app() {
    let app = spawn_app_with(|settings| {
        settings.agent_app_origins = vec!["https://agents.example".into()];
    })
    .await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;

    let shop = preflight(&app, "https://shop.example").await;
    assert_eq!(allowed_origin(&shop), None, "not listed yet");

    let body = set_origins(&app, &admin, &project_id, json!(["https://shop.example"])).await;
    assert_eq!(
        body["data"]["setAllowedOrigins"]["allowedOrigins"],
        json!(["https://shop.example"]),
        "{body}"
    );
    for (origin, allowed) in [
        ("https://shop.example", true),
        ("https://agents.example", true),
        ("https://evil.example", false),
        ("http://shop.example", false),
        ("null", false),
    ] {
        let response = preflight(&app, origin).await;
        assert!(response.status().is_success(), "{origin}");
        assert_eq!(
            allowed_origin(&response).as_deref(),
            allowed.then_some(origin),
            "{origin}"
        );
        if allowed {
            let methods = response.headers()["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(methods.contains("POST"), "{methods}");
            let headers = response.headers()["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .to_ascii_lowercase();
            assert!(headers.contains("authorization"), "{headers}");
        }
    }

    // Actual requests carry the header the same way.
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", "https://shop.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed_origin(&response).as_deref(),
        Some("https://shop.example")
    );
    assert!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("retry-after")
    );
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", "https://evil.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&response), None);

    // An empty list withdraws the origin at once.
    let body = set_origins(&app, &admin, &project_id, json!([])).await;
    assert_eq!(
        body["data"]["setAllowedOrigins"]["allowedOrigins"],
        json!([])
    );
    assert_eq!(
        allowed_origin(&preflight(&app, "https://shop.example").await),
        None
    );
}

#[tokio::test]
async fn widget_calls_from_a_browser_must_come_from_an_origin_of_their_project() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let shop_a = app.project(&admin, "Shop A").await;
    let shop_b = app.project(&admin, "Shop B").await;
    let key_a = public_key(&app, &admin, &shop_a).await;
    set_origins(&app, &admin, &shop_a, json!(["https://a.example"])).await;
    set_origins(&app, &admin, &shop_b, json!(["https://b.example"])).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let start = |origin: Option<&'static str>| {
        let app = &app;
        let key = key_a.clone();
        async move {
            let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
            post(
                app,
                None,
                &headers,
                START,
                json!({"i": {"projectKey": key}}),
            )
            .await
        }
    };

    let (_, _, body) = start(Some("https://a.example")).await;
    assert!(body["errors"].is_null(), "{body}");
    let token = body["data"]["startChat"]["visitorToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, body) = start(None).await;
    assert!(
        body["errors"].is_null(),
        "a server-side call has no origin: {body}"
    );
    let before = chats(&app).await;
    for origin in ["https://b.example", "https://evil.example", "null"] {
        let (_, _, body) = start(Some(origin)).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{origin}: {body}");
    }
    assert_eq!(chats(&app).await, before, "refused starts write nothing");

    // Pages this server serves itself (GraphiQL) are not widget calls.
    let own = format!("http://{host}");
    let (_, _, body) = post(
        &app,
        None,
        &[("origin", own.as_str())],
        START,
        json!({"i": {"projectKey": key_a}}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");

    let (_, _, body) = post(
        &app,
        Some(&token),
        &[("origin", "https://b.example")],
        SUBMIT,
        json!({"a": []}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, _, body) = post(
        &app,
        Some(&token),
        &[("origin", "https://a.example")],
        SUBMIT,
        json!({"a": []}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn allowed_origins_are_validated_and_only_admins_set_them() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let agent = app.agent("agent").await;
    let outsider = app.agent("outsider").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &agent, "AGENT").await;

    let body = set_origins(
        &app,
        &admin,
        &project_id,
        json!([
            "HTTPS://Shop.Example:443/",
            "http://localhost:3000",
            "https://shop.example"
        ]),
    )
    .await;
    let saved = json!(["http://localhost:3000", "https://shop.example"]);
    assert_eq!(
        body["data"]["setAllowedOrigins"]["allowedOrigins"], saved,
        "{body}"
    );

    for (origins, field) in [
        (json!(["https://ok.example", "shop.example"]), "origins[1]"),
        (json!(["https://shop.example/widget"]), "origins[0]"),
        (json!(["https://*.example"]), "origins[0]"),
        (json!(["ftp://shop.example"]), "origins[0]"),
        (json!(["https://user@shop.example"]), "origins[0]"),
        (
            json!([format!("https://{}.example", "x".repeat(300))]),
            "origins[0]",
        ),
        (
            json!(
                (0..51)
                    .map(|n| format!("https://s{n}.example"))
                    .collect::<Vec<_>>()
            ),
            "origins",
        ),
    ] {
        let body = set_origins(&app, &admin, &project_id, origins).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let body = set_origins(&app, &agent, &project_id, json!([])).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = set_origins(&app, &outsider, &project_id, json!([])).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // Nothing of the refused changes was kept; members read the list.
    let body = app
        .graphql(
            Some(&agent.token),
            "query($id: ID!) { project(id: $id) { allowedOrigins } }",
            json!({"id": project_id}),
        )
        .await;
    assert_eq!(body["data"]["project"]["allowedOrigins"], saved, "{body}");
}

#[tokio::test]
async fn another_instance_learns_of_changed_origins() {
    let mut app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let mut other = app
        .another_instance_with(
            |settings| settings.origins_refresh = Duration::from_millis(200),
            Default::default(),
        )
        .await;
    set_origins(&app, &admin, &project_id, json!(["https://shop.example"])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if allowed_origin(&preflight(&other, "https://shop.example").await).is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never allowed the origin"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    other.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn sigterm_finishes_requests_closes_websockets_and_requeues_exports() {
    // The database and the data come from an in-process app, which then
    // stops; the binary takes over the same database.
    let mut app = spawn_app().await;
    let agent = app.agent("ana").await;
    let project_id = app.project(&agent, "Shop").await;
    let key = public_key(&app, &agent, &project_id).await;
    for n in 0..20 {
        let body = app
            .graphql(
                None,
                START,
                json!({"i": {"projectKey": key, "visitorId": format!("v{n}")}}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    app.stop().await;

    let data_dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(
        &app.settings.database_url,
        data_dir.path(),
        &[
            // Slow exports: 20 rows at one a second, in chunks of 5.
            ("EXPORT_MAX_ROWS_PER_SECOND", "1"),
            ("EXPORT_CHUNK_ROWS", "5"),
            ("EXPORT_POLL_MS", "100"),
            ("SHUTDOWN_GRACE_SECS", "20"),
        ],
    );
    let client = reqwest::Client::new();
    server.wait_until_up(&client).await;
    let url = format!("http://{}/graphql", server.address);
    let graphql = |query: &'static str, variables: Value| {
        let client = client.clone();
        let url = url.clone();
        let token = agent.token.clone();
        async move {
            client
                .post(&url)
                .bearer_auth(token)
                .json(&json!({"query": query, "variables": variables}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    let now = chrono::Utc::now();
    let body = graphql(
        "mutation($p: ID!, $f: String!, $t: String!) { exportContacts(projectId: $p, from: $f, to: $t) { id } }",
        json!({"p": project_id, "f": (now - chrono::Duration::hours(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339()}),
    )
    .await;
    let job_id = body["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = graphql(
            "query($id: ID!) { exportJob(id: $id) { status rowsWritten } }",
            json!({"id": job_id}),
        )
        .await;
        if body["data"]["exportJob"]["status"] == "RUNNING" {
            break;
        }
        assert!(Instant::now() < deadline, "the export never ran: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A subscriber on a websocket.
    let mut request = format!("ws://{}/graphql", server.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", MODERN.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    subscriptions::send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", agent.token)}}),
    )
    .await;
    assert_eq!(
        subscriptions::next(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    subscriptions::send(
        &mut socket,
        json!({"id": "e", "type": "subscribe", "payload": {
            "query": "subscription($j: ID!) { exportUpdated(jobId: $j) { status } }",
            "variables": {"j": job_id},
        }}),
    )
    .await;

    // A request in flight: headers and half of the body sent.
    let body = json!({"query": "{ me { email } }"}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut slow = tokio::net::TcpStream::connect(&server.address)
        .await
        .unwrap();
    slow.write_all(
        format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
            server.address,
            agent.token,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    server.terminate();
    let terminated = Instant::now();

    // The websocket is closed with "going away".
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame within 5 s")
    .expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1001, "{close:?}");

    // The request in flight still gets its answer, while new connections
    // are refused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server must wait for the request in flight"
    );
    assert!(
        tokio::net::TcpStream::connect(&server.address)
            .await
            .is_err(),
        "the server stopped accepting"
    );
    slow.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_string(&mut answer))
        .await
        .expect("the answer within 10 s")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(&agent.email), "{answer}");

    // Then the process ends well, soon.
    let status = server.wait_for_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}: {}", server.log());
    assert!(terminated.elapsed() < Duration::from_secs(15));

    // The running export went back to the queue, without a lease.
    let job = export_job::Entity::find_by_id(job_id.parse::<uuid::Uuid>().unwrap())
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, export_job::ExportStatus::Queued, "{job:?}");
    assert_eq!(job.lease_owner, None, "{job:?}");
    assert_eq!(job.lease_expires_at, None, "{job:?}");
    assert!(server.log().contains("shutting down"), "{}", server.log());
}

/// The name of the test database in a PostgreSQL URL.
fn database_name(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_database_outage_fails_fast_and_the_service_heals_by_itself() {
    let Some(admin_url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!(
            "SKIPPED a_database_outage_fails_fast_and_the_service_heals_by_itself: \
             it cuts PostgreSQL connections; set TEST_DATABASE_URL to run it"
        );
        return;
    };
    let (app, admin, project_id, key) = app_with(|_| {}).await;
    // Logged in, but its token never read since: a token read a moment ago
    // is answered from memory for that moment, outage or not.
    let late = app.agent("late").await;
    let name = database_name(&app.settings.database_url);
    let superuser = Database::connect(&admin_url).await.unwrap();

    // A subscriber from before the outage.
    let mut socket = subscriptions::connect(&app, MODERN).await;
    subscriptions::send(&mut socket, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", admin.token)}})).await;
    assert_eq!(
        subscriptions::next(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    subscriptions::send(
        &mut socket,
        json!({"id": "c", "type": "subscribe", "payload": {
            "query": "subscription($p: ID!) { contactUpdated(projectId: $p) { kind } }",
            "variables": {"p": project_id},
        }}),
    )
    .await;

    // The outage: no new connections, and the open ones cut.
    superuser
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        superuser
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let asked = Instant::now();
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    for _ in 0..3 {
        let asked = Instant::now();
        let (status, _, body) = start_chat_from(&app, &key, "203.0.113.1").await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "INTERNAL", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("unavailable"), "{body}");
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "{:?}",
            asked.elapsed()
        );
    }
    // An agent's request fails at the token check, as clearly.
    let asked = Instant::now();
    let (status, _, body) = post(&app, Some(&late.token), &[], "{ me { id } }", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "INTERNAL", "{body}");
    assert!(asked.elapsed() < Duration::from_secs(5));

    // The database comes back; the service follows without a restart.
    superuser
        .execute_unprepared(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = app
            .client
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, _, body) = start_chat_from(&app, &key, "203.0.113.1").await;
    assert!(body["errors"].is_null(), "{body}");
    let (status, _, body) = post(&app, Some(&admin.token), &[], "{ me { id } }", json!({})).await;
    assert_eq!(status, 200, "{body}");

    // Events flow again once the listening connection is back (it retries
    // with a growing delay, so a few starts may go unheard).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let (_, _, body) = post(
            &app,
            None,
            &[],
            START,
            json!({"i": {"projectKey": key, "visitorId": format!("after-{n}")}}),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
        let heard = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let message: Value = serde_json::from_str(&text).unwrap();
                        if message["type"] == "next" {
                            return message;
                        }
                    }
                    Some(Ok(_)) => continue,
                    other => panic!("the subscription ended: {other:?}"),
                }
            }
        })
        .await;
        if let Ok(message) = heard {
            assert_eq!(
                message["payload"]["data"]["contactUpdated"]["kind"],
                "CREATED"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no event after the outage");
    }
    socket.close(None).await.ok();
}

#[tokio::test]
async fn the_nul_character_is_refused_at_the_door() {
    let (app, _, _, key) = app_with(|_| {}).await;
    let before = chats(&app).await;
    for (query, variables) in [
        (
            START,
            json!({"i": {"projectKey": key, "visitorId": "a\u{0}b"}}),
        ),
        (START, json!({"i": {"projectKey": "\u{0}"}})),
        (
            r#"mutation { startChat(input: {projectKey: "pk\u0000"}) { visitorToken } }"#,
            json!({}),
        ),
        (
            r#"mutation { startChat(input: {projectKey: "pk\u{00}"}) { visitorToken } }"#,
            json!({}),
        ),
    ] {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("NUL")
        );
    }
    assert_eq!(chats(&app).await, before);
    // An escaped backslash followed by u0000 is plain text.
    let query = format!(
        r#"mutation {{ startChat(input: {{projectKey: "{key}", visitorId: "v-1"}}) {{ visitorId }} }}"#
    );
    let text = r#"query { __type(name: "\\u0000") { name } }"#;
    for query in [query.as_str(), text] {
        let (status, _, body) = post(&app, None, &[], query, json!({})).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(body["errors"].is_null(), "{query}: {body}");
    }
}

/// Every path under `root` with group or other permission bits, with them.
fn readable_by_others(root: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            found.push((path.clone(), mode));
        }
        if metadata.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
        }
    }
    found
}

#[tokio::test]
async fn everything_the_server_keeps_under_the_data_dir_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let older = data_dir.path().join("older");
    std::fs::create_dir(&older).unwrap();
    std::fs::write(older.join("notes.txt"), "left by an older version").unwrap();
    std::fs::set_permissions(&older, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        older.join("notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.path().join("contacts.db").display()
    );

    let created = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"))
        .args([
            "create-agent",
            "--email",
            "ana@example.com",
            "--name",
            "Ana",
        ])
        .env_clear()
        .env("DATABASE_URL", &database_url)
        .env("DATA_DIR", data_dir.path())
        .env("CONTACTS_AGENT_PASSWORD", PASSWORD)
        .output()
        .expect("the contacts binary runs");
    assert!(created.status.success(), "{created:?}");

    let mut server =
        ServerProcess::spawn(&database_url, data_dir.path(), &[("EXPORT_POLL_MS", "100")]);
    let client = reqwest::Client::new();
    server.wait_until_up(&client).await;
    let graphql = |token: Option<String>, query: &'static str, variables: Value| {
        let client = client.clone();
        let url = format!("http://{}/graphql", server.address);
        async move {
            let mut request = client
                .post(url)
                .json(&json!({"query": query, "variables": variables}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            assert!(body["errors"].is_null(), "{query}: {body}");
            body["data"].clone()
        }
    };
    let login = graphql(None, LOGIN, json!({"e": "ana@example.com", "p": PASSWORD})).await;
    let token = login["login"]["token"].as_str().unwrap().to_owned();
    let project = graphql(
        Some(token.clone()),
        "mutation { createProject(name: \"Shop\") { id } }",
        json!({}),
    )
    .await;
    let export = graphql(
        Some(token.clone()),
        "mutation($p: ID!) { exportContacts(projectId: $p, from: \"2026-01-01\", to: \"2026-12-31\") { id } }",
        json!({"p": project["createProject"]["id"]}),
    )
    .await;
    let job_id = export["exportContacts"]["id"].clone();

    // Done once the export is completed and its mail written.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = graphql(
            Some(token.clone()),
            "query($id: ID!) { exportJob(id: $id) { status mailSentAt } }",
            json!({"id": job_id}),
        )
        .await;
        if job["exportJob"]["status"] == "COMPLETED" && job["exportJob"]["mailSentAt"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "{job}: {}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for made in ["contacts.db", "link-signing.key", "tmp", "exports", "mail"] {
        assert!(data_dir.path().join(made).exists(), "{made} was made");
    }
    let files_in = |folder: &str| {
        std::fs::read_dir(data_dir.path().join(folder))
            .unwrap()
            .count()
    };
    assert!(files_in("exports") > 0 && files_in("mail") > 0);
    assert_eq!(readable_by_others(data_dir.path()), vec![]);
}
