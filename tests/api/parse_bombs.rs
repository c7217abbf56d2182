//! Requests built to crash or stall the parser, sent to the real binary in
//! a process of its own: a stack overflow there aborts that process, not
//! the tests. Each must get a client's error, and the server must go on.

use std::time::Duration;

use entity::chat;
use futures_util::SinkExt;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, public_key, spawn_app};
use crate::server_process::ServerProcess;
use crate::subscriptions::{self, MODERN, Socket, close_code, connect_as};

/// The binary on a database that has an agent and a project.
struct Target {
    server: ServerProcess,
    token: String,
    project_key: String,
    client: reqwest::Client,
    /// Holds the database (and the SQLite file) for the binary.
    app: TestApp,
    _data_dir: tempfile::TempDir,
}

async fn target() -> Target {
    let mut app = spawn_app().await;
    let agent = app.agent("ana").await;
    let project_id = app.project(&agent, "Shop").await;
    let project_key = public_key(&app, &agent, &project_id).await;
    app.stop().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(&app.settings.database_url, data_dir.path(), &[]);
    // The hang guard: an answer that takes this long is a stall.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    server.wait_until_up(&client).await;
    Target {
        server,
        token: agent.token,
        project_key,
        client,
        app,
        _data_dir: data_dir,
    }
}

impl Target {
    /// POSTs a body as it is; the status and the JSON answer.
    async fn post_raw(&self, body: String) -> (u16, Value) {
        let response = self
            .client
            .post(format!("http://{}/graphql", self.server.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|error| panic!("no answer: {error}\n{}", self.server.log()));
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    async fn post(&self, query: &str, variables: Value) -> (u16, Value) {
        self.post_raw(json!({"query": query, "variables": variables}).to_string())
            .await
    }

    async fn socket(&self) -> Socket {
        let url = format!("ws://{}/graphql", self.server.address);
        connect_as(&url, MODERN, &self.token).await
    }

    /// The process is alive and answers an agent's query.
    async fn assert_still_serving(&mut self) {
        assert!(
            self.server.is_alive(),
            "the server died: {}",
            self.server.log()
        );
        let response = self
            .client
            .post(format!("http://{}/graphql", self.server.address))
            .bearer_auth(&self.token)
            .json(&json!({"query": "{ me { email } }"}))
            .send()
            .await
            .expect("the server answers");
        let body: Value = response.json().await.unwrap();
        assert!(body["data"]["me"]["email"].is_string(), "{body}");
    }

    async fn chats(&self) -> u64 {
        chat::Entity::find()
            .count(&self.app.app_services.db)
            .await
            .unwrap()
    }
}

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// A refusal by the input guard: HTTP 400, BAD_USER_INPUT, naming `limit`.
fn assert_refused(status: u16, body: &Value, limit: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(limit), "{message}");
}

/// The `error` message that ends operation `id`, with its first error.
async fn refused_on_socket(socket: &mut Socket, id: &str) -> Value {
    let message = subscriptions::next(socket).await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], id, "{message}");
    let error = message["payload"][0].clone();
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{message}");
    error
}

async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    subscriptions::send(
        socket,
        json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}),
    )
    .await;
}

/// The socket still runs operations: `{ __typename }` gets `next` and
/// `complete`, and nothing else comes first.
async fn assert_socket_still_serves(socket: &mut Socket) {
    subscribe(socket, "check", "{ __typename }", json!({})).await;
    let next = subscriptions::next(socket).await.unwrap();
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["id"], "check", "{next}");
    assert_eq!(next["payload"]["data"]["__typename"], "QueryRoot", "{next}");
    let complete = subscriptions::next(socket).await.unwrap();
    assert_eq!(complete["type"], "complete", "{complete}");
}

#[tokio::test]
async fn a_list_2000_deep_in_an_argument_is_refused() {
    let mut target = target().await;
    let query = format!("{{ __typename(a: {}) }}", nested("[", "1", "]", 2_000));
    let (status, body) = target.post(&query, json!({})).await;
    assert_refused(status, &body, "64");
    target.assert_still_serving().await;
}

#[tokio::test]
async fn an_object_value_2000_deep_is_refused() {
    let mut target = target().await;
    let query = format!("{{ __typename(a: {}) }}", nested("{a: ", "1", "}", 2_000));
    let (status, body) = target.post(&query, json!({})).await;
    assert_refused(status, &body, "64");
    target.assert_still_serving().await;
}

#[tokio::test]
async fn a_variable_default_2000_deep_is_refused() {
    let mut target = target().await;
    let query = format!(
        "query($v: [Int] = {}) {{ __typename }}",
        nested("[", "1", "]", 2_000)
    );
    let (status, body) = target.post(&query, json!({})).await;
    assert_refused(status, &body, "64");
    target.assert_still_serving().await;
}

#[tokio::test]
async fn nesting_at_the_limit_is_served_and_one_level_more_is_refused() {
    let mut target = target().await;
    // `{` and `(` count: 62 more levels reach the limit of 64.
    type QueryNestedBy = fn(usize) -> String;
    let shapes: [(&str, QueryNestedBy); 3] = [
        ("list", |depth| {
            format!("{{ __typename(a: {}) }}", nested("[", "1", "]", depth))
        }),
        ("object", |depth| {
            format!("{{ __typename(a: {}) }}", nested("{a: ", "1", "}", depth))
        }),
        ("variable default", |depth| {
            format!(
                "query($v: [Int] = {}) {{ __typename }}",
                nested("[", "1", "]", depth + 1)
            )
        }),
    ];
    for (shape, query) in shapes {
        let (status, body) = target.post(&query(62), json!({})).await;
        // Served: whatever validation says of the argument, it is an
        // answer, not a crash or a refusal at the door.
        assert_eq!(status, 200, "{shape}: {body}");
        assert!(target.server.is_alive(), "{shape}: {}", target.server.log());
        let (status, body) = target.post(&query(63), json!({})).await;
        assert_refused(status, &body, "64");
    }
    target.assert_still_serving().await;
}

#[tokio::test]
async fn deep_variables_are_refused() {
    let mut target = target().await;
    let query = "query($v: [Int]) { __typename }";
    // Under serde_json's own limit of 128 levels, over the guard's 32.
    let (status, body) = target
        .post(
            query,
            json!({"v": serde_json::from_str::<Value>(&nested("[", "1", "]", 100)).unwrap()}),
        )
        .await;
    assert_refused(status, &body, "32");
    // Deeper than serde_json parses, as variables and as a whole body.
    for body in [
        format!(
            r#"{{"query": "{query}", "variables": {{"v": {}}}}}"#,
            nested("[", "1", "]", 2_000)
        ),
        nested("[", "", "]", 30_000),
        nested("{\"a\": ", "1", "}", 8_000),
    ] {
        let (status, answer) = target.post_raw(body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    target.assert_still_serving().await;
}

#[tokio::test]
async fn many_tokens_over_a_websocket_are_refused() {
    let mut target = target().await;
    let mut socket = target.socket().await;
    // 60 KB: under the message size limit, 30,000 tokens.
    let query = format!("{{ {}}}", "a ".repeat(30_000));
    subscribe(&mut socket, "many", &query, json!({})).await;
    let error = refused_on_socket(&mut socket, "many").await;
    assert!(
        error["message"].as_str().unwrap().contains("15000"),
        "{error}"
    );
    assert_socket_still_serves(&mut socket).await;
    let (status, body) = target.post(&query, json!({})).await;
    assert_refused(status, &body, "15000");
    target.assert_still_serving().await;
}

#[tokio::test]
async fn long_escapes_get_a_client_error() {
    let mut target = target().await;
    let mut socket = target.socket().await;
    let braced = format!(
        r#"{{ __type(name: "\u{{{}41}}") {{ name }} }}"#,
        "0".repeat(60_000)
    );
    let backslashes = format!(
        r#"{{ __type(name: "{}") {{ name }} }}"#,
        "\\".repeat(30_001)
    );
    for (n, query) in [braced, backslashes].iter().enumerate() {
        let (status, body) = target.post(query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        let id = format!("escape{n}");
        subscribe(&mut socket, &id, query, json!({})).await;
        refused_on_socket(&mut socket, &id).await;
    }
    // Many valid escapes are text like any other.
    let accents = format!(
        r#"{{ __type(name: "{}") {{ name }} }}"#,
        "\\u00e9".repeat(9_000)
    );
    let (status, body) = target.post(&accents, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["__type"].is_null(), "{body}");
    assert_socket_still_serves(&mut socket).await;
    target.assert_still_serving().await;
}

#[tokio::test]
async fn huge_numbers_get_a_client_error() {
    let mut target = target().await;
    let mut socket = target.socket().await;
    let digits = "9".repeat(60_000);
    for (n, number) in ["1e999999", digits.as_str()].iter().enumerate() {
        let query = format!("{{ __typename(a: {number}) }}");
        let (status, body) = target.post(&query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        let id = format!("number{n}");
        subscribe(&mut socket, &id, &query, json!({})).await;
        refused_on_socket(&mut socket, &id).await;

        let body = format!(
            r#"{{"query": "query($v: Float) {{ __typename }}", "variables": {{"v": {number}}}}}"#
        );
        let (status, answer) = target.post_raw(body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    assert_socket_still_serves(&mut socket).await;
    target.assert_still_serving().await;
}

#[tokio::test]
async fn a_64_mib_websocket_message_is_refused_with_1009() {
    let mut target = target().await;
    let mut socket = target.socket().await;
    let padding = "x".repeat(64 * 1024 * 1024);
    let message = json!({"id": "big", "type": "subscribe",
        "payload": {"query": "{ __typename }", "variables": {"padding": padding}}});
    // The server refuses the frame by its header and closes; the client may
    // still be writing the rest, which then fails.
    match socket.send(Message::text(message.to_string())).await {
        Ok(()) => assert_eq!(close_code(&mut socket).await, 1009),
        Err(error) => eprintln!("the server cut the upload short: {error}"),
    }
    target.assert_still_serving().await;
}

#[tokio::test]
async fn nul_over_a_websocket_is_refused_as_over_http_and_nothing_is_stored() {
    let mut target = target().await;
    let before = target.chats().await;
    let key = target.project_key.clone();
    let escaped = format!(
        r#"mutation {{ startChat(input: {{projectKey: "{key}", visitorId: "a\u0000b"}}) {{ visitorToken }} }}"#
    );
    let with_variables = "mutation($i: StartChatInput!) { startChat(input: $i) { visitorToken } }";
    let variables = json!({"i": {"projectKey": key, "visitorId": "a\u{0}b"}});
    let mut socket = target.socket().await;
    for (n, (query, variables)) in [(escaped.as_str(), json!({})), (with_variables, variables)]
        .into_iter()
        .enumerate()
    {
        let (status, body) = target.post(query, variables.clone()).await;
        assert_refused(status, &body, "NUL");
        let id = format!("nul{n}");
        subscribe(&mut socket, &id, query, variables).await;
        let error = refused_on_socket(&mut socket, &id).await;
        assert_eq!(error["message"], body["errors"][0]["message"], "{error}");
    }
    assert_socket_still_serves(&mut socket).await;
    assert_eq!(target.chats().await, before);
    target.assert_still_serving().await;
}

/// The guard's refusals all name a limit of the guard, or NUL.
fn is_guard_refusal(error: &Value) -> bool {
    let message = error["message"].as_str().unwrap_or_default();
    [
        "64 levels",
        "4000 tokens",
        "32 levels",
        "10000 values",
        "NUL",
    ]
    .iter()
    .any(|limit| message.contains(limit))
}

#[tokio::test]
async fn the_standard_introspection_query_passes_the_input_guard() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let query = include_str!("../support/introspection_query.graphql");
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert!(!errors.iter().any(is_guard_refusal), "{body}");

    let mut socket = connect_as(&app.ws_url(), MODERN, &agent.token).await;
    subscribe(&mut socket, "schema", query, json!({})).await;
    let result = subscriptions::next(&mut socket).await.unwrap();
    let errors = match result["type"].as_str() {
        Some("error") => result["payload"].as_array().cloned().unwrap_or_default(),
        _ => result["payload"]["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(!errors.iter().any(is_guard_refusal), "{result}");
}

/// Fragments that each spread the next one twice: 1 KB of text that
/// async-graphql's validation walked as 2^30 fields, tens of minutes of a
/// worker, before the expansion was bounded.
fn fragment_fan_out(levels: usize) -> String {
    let fragments: String = (0..levels)
        .map(|i| {
            format!(
                "fragment F{i} on QueryRoot {{ ...F{} ...F{} }} ",
                i + 1,
                i + 1
            )
        })
        .collect();
    format!("query {{ ...F0 }} {fragments} fragment F{levels} on QueryRoot {{ __typename }}")
}

#[tokio::test]
async fn fragments_spreading_each_other_twice_are_refused_before_validation() {
    let mut target = target().await;
    let query = fragment_fan_out(30);
    assert!(query.len() < 2_000);
    let (status, body) = target.post(&query, json!({})).await;
    assert_refused(status, &body, "once its fragments are spread");
    let mut socket = target.socket().await;
    subscribe(&mut socket, "fan-out", &query, json!({})).await;
    let error = refused_on_socket(&mut socket, "fan-out").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("fragments are spread"),
        "{error}"
    );
    assert_socket_still_serves(&mut socket).await;
    // A few levels stay an ordinary document.
    let (status, body) = target.post(&fragment_fan_out(4), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["__typename"], "QueryRoot", "{body}");
    target.assert_still_serving().await;
}

/// The same fan-out ending in a fragment nobody defined: it holds no field
/// at all, and async-graphql walked its 2^22 paths (10 s of a worker)
/// before reporting the unknown fragment.
#[tokio::test]
async fn a_fan_out_of_spreads_ending_in_an_unknown_fragment_is_refused_at_once() {
    let mut target = target().await;
    let fragments: String = (0..22)
        .map(|i| {
            format!(
                "fragment F{i} on QueryRoot {{ ...F{} ...F{} }} ",
                i + 1,
                i + 1
            )
        })
        .collect();
    let query = format!("{{ ...F0 }} {fragments} fragment F22 on QueryRoot {{ ...Missing }}");
    let (status, body) = target.post(&query, json!({})).await;
    assert_refused(status, &body, "does not define");
    let cycle =
        "{ ...A } fragment A on QueryRoot { __typename ...B } fragment B on QueryRoot { ...A }";
    let (status, body) = target.post(cycle, json!({})).await;
    assert_refused(status, &body, "cycle");
    target.assert_still_serving().await;
}
