//! The README's example operations, run top to bottom against a fresh
//! server on its embedded defaults, as a new user would run them: the
//! owner's password read from the first start's output, tokens read from
//! the mail files, subscriptions over a websocket beside the operation that
//! triggers them.

mod answers;
mod server;
mod walkthrough;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use answers::Answers;
use server::Server;
use walkthrough::Example;

#[tokio::test]
async fn the_readme_examples_run_in_order_on_a_fresh_server() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples = walkthrough::examples(&readme);
    assert!(
        examples.len() > 40,
        "found only {} examples",
        examples.len()
    );
    for example in &examples {
        assert!(
            !example.text.contains('…'),
            "README line {}: an example with a gap (…) cannot run:\n{}",
            example.line,
            example.text
        );
    }

    let server = Server::start().await;
    let mut answers = Answers::new(server.first_start_password(), server.mail_dir());
    let http = reqwest::Client::new();
    let mut authorization: Option<String> = None;
    let mut index = 0;
    while index < examples.len() {
        let example = &examples[index];
        if let Some(change) = example.authorization_change() {
            authorization = change.map(|value| answers.fill_text(&value, example));
        }
        if example.kind() == "subscription" {
            let trigger = if example.is_triggered_by_next() {
                let trigger = examples.get(index + 1).unwrap_or_else(|| {
                    panic!("README line {}: no operation follows", example.line)
                });
                assert_ne!(trigger.kind(), "subscription", "line {}", trigger.line);
                index += 1;
                Some(trigger)
            } else {
                None
            };
            run_subscription(
                &server,
                &http,
                &mut answers,
                &mut authorization,
                example,
                trigger,
            )
            .await;
        } else {
            run(
                &server,
                &http,
                &mut answers,
                authorization.as_deref(),
                example,
            )
            .await;
        }
        index += 1;
    }

    // The export the walkthrough followed ended with a file a person can
    // download from the link.
    let export = answers.latest("exportUpdated");
    assert_eq!(export["status"], "COMPLETED", "{export:#}");
    let link = export["downloadUrl"].as_str().expect("a download link");
    let file = http.get(link).send().await.unwrap();
    assert!(file.status().is_success(), "{link}: {}", file.status());
    let csv = file.text().await.unwrap();
    assert!(csv.contains("ana@example.com"), "{csv}");
    server.stop();
}

async fn run(
    server: &Server,
    http: &reqwest::Client,
    answers: &mut Answers,
    authorization: Option<&str>,
    example: &Example,
) {
    let query = answers.fill_operation(example);
    let mut request = http
        .post(server.graphql_url())
        .json(&json!({ "query": query }));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(
        status.is_success() && body.get("errors").is_none(),
        "README line {}: {query}\nanswered {status}: {body:#}",
        example.line
    );
    answers.record(example, body["data"][example.root_field()].clone());
}

async fn run_subscription(
    server: &Server,
    http: &reqwest::Client,
    answers: &mut Answers,
    authorization: &mut Option<String>,
    example: &Example,
    trigger: Option<&Example>,
) {
    let query = answers.fill_operation(example);
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = connect_async(request).await.unwrap();
    let payload = match authorization.as_deref() {
        Some(value) => json!({ "Authorization": value }),
        None => json!({}),
    };
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    let mut events = Vec::new();
    if let Some(trigger) = trigger {
        // Time for the server to start the subscription before the event.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(change) = trigger.authorization_change() {
            *authorization = change.map(|value| answers.fill_text(&value, trigger));
        }
        run(server, http, answers, authorization.as_deref(), trigger).await;
        let message = receive(&mut socket).await;
        events.push(event_of(&message, example));
        send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    } else {
        loop {
            let message = receive(&mut socket).await;
            if message["type"] == "complete" {
                break;
            }
            events.push(event_of(&message, example));
        }
    }
    let last = events.pop().unwrap_or_else(|| {
        panic!(
            "README line {}: the subscription sent nothing",
            example.line
        )
    });
    answers.record(example, last[example.root_field()].clone());
}

fn event_of(message: &Value, example: &Example) -> Value {
    assert!(
        message["type"] == "next" && message["payload"].get("errors").is_none(),
        "README line {}: the subscription answered {message:#}",
        example.line
    );
    message["payload"]["data"].clone()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next protocol message, skipping pings; a job or an event that takes
/// longer than this is a failure.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("no websocket message within 30 s")
            .expect("the websocket closed")
            .unwrap();
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "ping" {
                send(socket, json!({ "type": "pong" })).await;
                continue;
            }
            return value;
        }
    }
}
