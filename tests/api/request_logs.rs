//! The request log as an operator reads it: the release binary's JSON
//! lines, one per GraphQL request over HTTP and two per websocket
//! operation, failed logins with the email masked, slow requests at warn,
//! and never a password or token.

use std::time::Duration;

use serde_json::{Value, json};

use crate::server_process::ServerProcess;
use crate::subscriptions::{MODERN, connect_as, next, send};

const OWNER: &str = "owner@contacts.local";

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("contacts.db").display())
}

fn lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

/// The lines whose message is `message`, their fields.
fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["fields"]["message"] == message)
        .map(|line| &line["fields"])
        .collect()
}

fn first_password(data_dir: &std::path::Path) -> String {
    std::fs::read_to_string(data_dir.join("first-start-login.txt"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .expect("the file holds the password")
        .to_owned()
}

async fn post(
    client: &reqwest::Client,
    server: &ServerProcess,
    body: Value,
    headers: &[(&str, &str)],
) -> Value {
    let mut request = client
        .post(format!("http://{}/graphql", server.address))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn each_request_and_websocket_operation_is_one_line_with_no_secret() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = ServerProcess::spawn(&sqlite_url(data_dir.path()), data_dir.path(), &[]);
    server.wait_until_up(&client).await;
    let password = first_password(data_dir.path());

    let wrong = post(
        &client,
        &server,
        json!({"query": "mutation signIn($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
               "variables": {"email": OWNER, "password": "not-the-password"}}),
        &[],
    )
    .await;
    assert_eq!(
        wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{wrong}"
    );
    let signed_in = post(
        &client,
        &server,
        json!({"query": "mutation signIn($email: String!, $password: String!) { login(email: $email, password: $password) { token agent { id } } }",
               "variables": {"email": OWNER, "password": password}}),
        &[],
    )
    .await;
    let token = signed_in["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent_id = signed_in["data"]["login"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");

    let me = post(
        &client,
        &server,
        json!({"query": "query whoAmI { me { id } ...more } fragment more on QueryRoot { projects { id } }"}),
        &[("authorization", &bearer), ("x-request-id", "request-from-the-test")],
    )
    .await;
    assert_eq!(me["data"]["me"]["id"], agent_id.as_str(), "{me}");
    let refused = client
        .post(format!("http://{}/graphql", server.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    let ws_url = format!("ws://{}/graphql", server.address);
    let mut socket = connect_as(&ws_url, MODERN, &token).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription watch { notifications { id } }"}}),
    )
    .await;
    send(
        &mut socket,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "query again { me { id } }"}}),
    )
    .await;
    // The query's answer and end come after the subscription has started.
    assert_eq!(next(&mut socket).await.unwrap()["type"], "next");
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
    send(&mut socket, json!({"id": "1", "type": "complete"})).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.terminate();
    server.wait_for_exit(Duration::from_secs(30)).await;
    let log = server.log();
    assert!(
        !log.contains(&password),
        "the password is in the log:\n{log}"
    );
    assert!(!log.contains(&token), "the token is in the log:\n{log}");
    assert!(
        !log.contains("not-the-password"),
        "a tried password is in the log:\n{log}"
    );
    // Only the first-start event names the owner, for the operator to log in.
    assert!(
        log.lines()
            .filter(|line| line.contains(OWNER))
            .all(|line| line.contains("first start")),
        "the email is in the log unmasked:\n{log}"
    );
    let lines = lines(&log);

    let failed = with_message(&lines, "login failed: wrong email or password");
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(failed[0]["email"], "o***@contacts.local");

    let requests = with_message(&lines, "graphql request");
    assert_eq!(requests.len(), 4, "one line per HTTP request:\n{log}");
    let sign_ins: Vec<_> = requests
        .iter()
        .filter(|line| line["operation"] == "signIn")
        .collect();
    assert_eq!(sign_ins.len(), 2);
    assert_eq!(sign_ins[0]["operation_type"], "mutation");
    assert_eq!(sign_ins[0]["root_fields"], "login");
    assert_eq!(sign_ins[0]["error_codes"], "UNAUTHENTICATED");
    assert_eq!(sign_ins[0]["agent"], "");
    assert_eq!(sign_ins[1]["error_codes"], "");

    let who = requests
        .iter()
        .find(|line| line["operation"] == "whoAmI")
        .expect("whoAmI's line");
    assert_eq!(who["operation_type"], "query");
    assert_eq!(who["root_fields"], "me,projects");
    assert_eq!(who["status"], 200);
    assert_eq!(who["error_codes"], "");
    assert_eq!(who["agent"], agent_id.as_str());
    assert_eq!(who["request_id"], "request-from-the-test");
    assert!(
        who["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{who}"
    );

    let bad_body = requests
        .iter()
        .find(|line| line["status"] == 400)
        .expect("the refused body's line");
    assert_eq!(bad_body["error_codes"], "BAD_USER_INPUT");
    assert_eq!(bad_body["operation"], "");
    // Every request gets an id, given or made.
    assert!(
        requests
            .iter()
            .all(|line| line["request_id"].as_str().is_some_and(|id| !id.is_empty())),
        "{log}"
    );

    let started = with_message(&lines, "websocket operation started");
    let ended = with_message(&lines, "websocket operation ended");
    let watch_start = started
        .iter()
        .find(|line| line["operation"] == "watch")
        .expect("watch started");
    assert_eq!(watch_start["operation_type"], "subscription");
    assert_eq!(watch_start["root_fields"], "notifications");
    assert_eq!(watch_start["agent"], agent_id.as_str());
    let watch_end = ended
        .iter()
        .find(|line| line["operation"] == "watch")
        .expect("watch ended");
    assert_eq!(watch_end["outcome"], "stopped");
    let again_end = ended
        .iter()
        .find(|line| line["operation"] == "again")
        .expect("again ended");
    assert_eq!(again_end["outcome"], "completed");
    assert_eq!(again_end["operation_type"], "query");
}

#[tokio::test]
async fn requests_slower_than_the_setting_are_logged_at_warn_and_lockouts_are_logged() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = ServerProcess::spawn(
        &sqlite_url(data_dir.path()),
        data_dir.path(),
        &[("SLOW_REQUEST_MS", "0"), ("LOGIN_FAILURES_PER_EMAIL", "1")],
    );
    server.wait_until_up(&client).await;
    let login = json!({"query": "mutation { login(email: \"Owner@Contacts.Local\", password: \"wrong\") { token } }"});
    let mut codes = Vec::new();
    for _ in 0..3 {
        let answer = post(&client, &server, login.clone(), &[]).await;
        codes.push(answer["errors"][0]["extensions"]["code"].clone());
    }
    assert!(
        codes.contains(&json!("RATE_LIMITED")),
        "the email was never locked: {codes:?}"
    );

    server.terminate();
    server.wait_for_exit(Duration::from_secs(30)).await;
    let log = server.log();
    let lines = lines(&log);
    let slow: Vec<_> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "slow graphql request")
        .collect();
    assert_eq!(slow.len(), 3, "{log}");
    assert!(slow.iter().all(|line| line["level"] == "WARN"), "{log}");
    assert!(with_message(&lines, "graphql request").is_empty(), "{log}");
    let locked = with_message(
        &lines,
        "login refused: locked after failures or too many attempts",
    );
    assert!(!locked.is_empty(), "{log}");
    assert_eq!(locked[0]["email"], "O***@Contacts.Local");
    assert!(!log.contains("Owner@Contacts.Local"), "{log}");
}
