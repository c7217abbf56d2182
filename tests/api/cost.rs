//! The row cost limit: documents that may read too many rows are refused
//! before they run, over HTTP and websockets alike; the README's examples
//! stay well within the default limit.

use std::time::Duration;

use async_graphql::Variables;
use async_graphql::parser::parse_query;
use contacts::config::Limits;
use contacts::graphql::cost::CostModel;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

/// One page of 100 contacts, each with 100 chats and 100 history events.
const PAGE_WITH_NESTED_PAGES: &str = "contacts(projectId: $p, first: 100) { edges { node {
    chats(first: 100) { edges { node { id } } } history(first: 100) { events { id } } } } }";

/// 200 aliases of the page: some four million rows asked in one document.
fn two_hundred_pages() -> String {
    let aliases: String = (0..200)
        .map(|i| format!("a{i}: {PAGE_WITH_NESTED_PAGES} "))
        .collect();
    format!("query($p: ID!) {{ {aliases} }}")
}

const TWO_HUNDRED_PAGES_COST: &str = "14260000";

fn assert_refused_for_cost(errors: &Value, cost: &str, limit: &str) {
    let error = &errors[0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{errors}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("costs {cost} rows")) && message.contains(limit),
        "{errors}"
    );
}

#[tokio::test]
async fn a_document_asking_for_millions_of_rows_is_refused_before_it_runs() {
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    let project_id = app.project(&ana, "Shop").await;

    let body = app
        .graphql(
            Some(&ana.token),
            &two_hundred_pages(),
            json!({"p": project_id}),
        )
        .await;
    assert_refused_for_cost(&body["errors"], TWO_HUNDRED_PAGES_COST, "50000");
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn projects_of_members_of_projects_are_refused() {
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    app.project(&ana, "Shop").await;

    let nested =
        "{ me { projects { members { agent { projects { members { agent { id } } } } } } } }";
    let body = app.graphql(Some(&ana.token), nested, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("more than the limit of 50000"),
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn a_document_at_the_limit_runs_and_one_row_more_is_refused() {
    // 1 (me) + 100 projects × (1 + id).
    let query = "{ me { projects { id } } }";
    let at_limit = spawn_app_with(|settings| settings.limits.max_query_cost = 201).await;
    let ana = at_limit.agent("ana").await;
    at_limit.project(&ana, "Shop").await;
    let body = at_limit.graphql(Some(&ana.token), query, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(
        body["data"]["me"]["projects"][0]["id"].is_string(),
        "{body}"
    );

    let below = spawn_app_with(|settings| settings.limits.max_query_cost = 200).await;
    let bob = below.agent("bob").await;
    let body = below.graphql(Some(&bob.token), query, json!({})).await;
    assert_refused_for_cost(&body["errors"], "201", "200");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next protocol message other than keep-alives.
async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the connection is open")
            .expect("a websocket message");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value["type"] != "ping" && value["type"] != "ka" {
                return value;
            }
        }
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

#[tokio::test]
async fn a_costly_document_is_refused_over_a_websocket_too() {
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    let project_id = app.project(&ana, "Shop").await;

    let mut request = app.ws_url().into_client_request().expect("a request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    let (mut socket, _) = connect_async(request).await.expect("websocket handshake");
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", ana.token)}}),
    )
    .await;
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");

    // 1 + 300 × (1 + 100 chats × (1 + edges (1 + node (1 + id)))) for
    // every event.
    let contacts: String = (0..300)
        .map(|i| format!("c{i}: contact {{ chats(first: 100) {{ edges {{ node {{ id }} }} }} }} "))
        .collect();
    let subscription =
        format!("subscription($p: ID!) {{ contactUpdated(projectId: $p) {{ {contacts} }} }}");
    let costly = [
        (two_hundred_pages(), TWO_HUNDRED_PAGES_COST),
        (subscription, "120301"),
    ];
    for (id, (query, cost)) in costly.iter().enumerate() {
        send(
            &mut socket,
            json!({"id": id.to_string(), "type": "subscribe",
                   "payload": {"query": query, "variables": {"p": project_id}}}),
        )
        .await;
        let answer = loop {
            let answer = next_message(&mut socket).await;
            // The `complete` that follows a refusal of the previous one.
            if answer["type"] != "complete" {
                break answer;
            }
        };
        assert_eq!(answer["id"], id.to_string(), "{answer}");
        let errors = match answer["type"].as_str() {
            Some("error") => &answer["payload"],
            Some("next") => &answer["payload"]["errors"],
            _ => panic!("expected the document refused: {answer}"),
        };
        assert_refused_for_cost(errors, cost, "50000");
    }
}

/// The operations of the README's `graphql` code blocks.
fn readme_operations() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let mut operations = Vec::new();
    for block in readme.split("```graphql").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        let text = block
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let (mut depth, mut start) = (0usize, None);
        for (at, character) in text.char_indices() {
            if start.is_none() && !character.is_whitespace() {
                start = Some(at);
            }
            match character {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let from = start.take().expect("an operation started");
                        operations.push(text[from..=at].to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    operations
}

#[tokio::test]
async fn every_readme_example_is_within_the_default_limit() {
    let operations = readme_operations();
    assert!(operations.len() > 20, "{operations:#?}");

    let model = CostModel::of_served_schema();
    let limit = Limits::default().max_query_cost;
    let mut costs: Vec<(u64, &str)> = operations
        .iter()
        .map(|operation| {
            let document = parse_query(operation).expect("a README example parses");
            let cost = model
                .cost_of(&document, None, &Variables::default())
                .expect("one operation");
            (cost, operation.as_str())
        })
        .collect();
    costs.sort();
    let (largest, example) = costs.last().expect("examples");
    eprintln!("the costliest README example costs {largest} rows: {example}");
    assert!(*largest <= limit, "{largest} rows: {example}");

    // And the server does not refuse them for their cost (their `…` ids
    // and missing tokens get other answers).
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    let queries: Vec<&String> = operations
        .iter()
        .filter(|operation| operation.starts_with("query"))
        .collect();
    assert!(queries.len() >= 5, "{queries:#?}");
    for query in queries {
        let body = app.graphql(Some(&ana.token), query, json!({})).await;
        for error in body["errors"].as_array().into_iter().flatten() {
            assert!(
                error["extensions"]["cost"].is_null(),
                "{query} was refused for its cost: {body}"
            );
        }
    }
}
