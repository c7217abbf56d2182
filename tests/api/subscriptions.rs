use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::{TestApp, spawn_app};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const MODERN: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";

pub async fn connect(app: &TestApp, protocol: &str) -> Socket {
    connect_to(&app.ws_url(), protocol).await
}

/// A websocket to `url` (`ws://host:port/graphql`) speaking `protocol`.
pub async fn connect_to(url: &str, protocol: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (socket, response) = connect_async(request).await.expect("websocket handshake");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        protocol
    );
    socket
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next message, as JSON, or a description of how the connection ended.
pub async fn next(socket: &mut Socket) -> Result<Value, String> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .map_err(|_| "no message within 10 s".to_owned())?;
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ka" || value["type"] == "ping" {
                    continue;
                }
                return Ok(value);
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => return Err(format!("unexpected {other:?}")),
            Some(Err(error)) => return Err(format!("error: {error}")),
            None => return Err("closed".into()),
        }
    }
}

/// A connection acknowledged for the agent holding `token`.
pub async fn connect_as(url: &str, protocol: &str, token: &str) -> Socket {
    let mut socket = connect_to(url, protocol).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    )
    .await;
    let ack = next(&mut socket).await;
    assert_eq!(
        ack.as_ref().map(|ack| &ack["type"]),
        Ok(&json!("connection_ack")),
        "{ack:?}"
    );
    socket
}

/// The code of the close frame that ends the connection, after any
/// keep-alives; panics on any other message or an end without a frame.
pub async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("the connection ends within 30 s");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Text(text))) if text.contains(r#""type":"ka""#) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_connection_without_a_valid_token_is_refused() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    app.graphql(Some(&agent.token), "mutation { logout }", json!({}))
        .await;
    for protocol in [MODERN, LEGACY] {
        for payload in [
            json!({}),
            json!({"authorization": "Bearer cta_forged"}),
            json!({"authorization": format!("Bearer {}", agent.token)}),
        ] {
            let mut socket = connect(&app, protocol).await;
            send(
                &mut socket,
                json!({"type": "connection_init", "payload": payload}),
            )
            .await;
            match next(&mut socket).await {
                Ok(message) => {
                    assert_eq!(
                        message["type"], "connection_error",
                        "{protocol} {payload}: {message}"
                    );
                    // The legacy protocol reports, then the connection ends.
                    assert!(next(&mut socket).await.is_err());
                }
                Err(ended) => assert!(ended.contains("closed"), "{protocol}: {ended}"),
            }
        }
    }
}

async fn subscribe_to_members(
    app: &TestApp,
    protocol: &str,
    token: &str,
    project_id: &str,
) -> Socket {
    let mut socket = connect(app, protocol).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    let start = if protocol == MODERN {
        "subscribe"
    } else {
        "start"
    };
    send(
        &mut socket,
        json!({"id": "1", "type": start, "payload": {
            "query": "subscription($p: ID!) { membershipChanged(projectId: $p) { kind role agentId projectId } }",
            "variables": {"p": project_id},
        }}),
    )
    .await;
    // The subscription is registered asynchronously after the message.
    tokio::time::sleep(Duration::from_millis(300)).await;
    socket
}

#[tokio::test]
async fn members_are_told_of_membership_changes_over_both_protocols() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let newcomer = app.agent("newcomer").await;
    let project_id = app.project(&admin, "Shop").await;

    for (protocol, data_type) in [(MODERN, "next"), (LEGACY, "data")] {
        let mut socket = subscribe_to_members(&app, protocol, &admin.token, &project_id).await;
        if protocol == MODERN {
            app.add_member(&admin, &project_id, &newcomer, "AGENT")
                .await;
        } else {
            app.graphql(
                Some(&admin.token),
                "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }",
                json!({"p": project_id, "a": newcomer.id}),
            )
            .await;
        }
        let message = next(&mut socket).await.unwrap();
        assert_eq!(message["type"], data_type, "{message}");
        assert_eq!(message["id"], "1");
        let change = &message["payload"]["data"]["membershipChanged"];
        assert_eq!(change["agentId"], newcomer.id.as_str());
        assert_eq!(change["projectId"], project_id.as_str());
        if protocol == MODERN {
            assert_eq!(change["kind"], "ADDED");
            assert_eq!(change["role"], "AGENT");
        } else {
            assert_eq!(change["kind"], "REMOVED");
            assert!(change["role"].is_null());
        }
    }
}

#[tokio::test]
async fn a_subscription_to_a_foreign_project_is_not_found() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let outsider = app.agent("outsider").await;
    let project_id = app.project(&admin, "Shop").await;
    let mut socket = subscribe_to_members(&app, MODERN, &outsider.token, &project_id).await;
    let message = next(&mut socket).await.unwrap();
    // The stream fails at once with the error, and carries no data.
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"]["data"].is_null());
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
}

#[tokio::test]
async fn members_see_contacts_created_and_updated_by_the_form() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = crate::helpers::public_key(&app, &admin, &project_id).await;
    app.graphql(
        Some(&admin.token),
        "mutation($p: ID!) { createFormQuestion(projectId: $p, input: {key: \"email\", label: \"Email\", kind: EMAIL, target: {field: EMAIL}}) { id } }",
        json!({"p": project_id}),
    )
    .await;

    let mut socket = connect(&app, MODERN).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", admin.token)}})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "c", "type": "subscribe", "payload": {
            "query": "subscription($p: ID!) { contactUpdated(projectId: $p) { kind contactId contact { id email } } }",
            "variables": {"p": project_id},
        }}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = app
        .graphql(
            None,
            "mutation($i: StartChatInput!) { startChat(input: $i) { visitorToken } }",
            json!({"i": {"projectKey": key, "visitorId": "watched"}}),
        )
        .await;
    let created = next(&mut socket).await.unwrap();
    assert_eq!(
        created["payload"]["data"]["contactUpdated"]["kind"], "CREATED",
        "{created}"
    );
    assert_eq!(
        created["payload"]["data"]["contactUpdated"]["contact"]["id"],
        created["payload"]["data"]["contactUpdated"]["contactId"]
    );

    let token = started["data"]["startChat"]["visitorToken"]
        .as_str()
        .unwrap();
    app.graphql(Some(token), "mutation { submitContactForm(answers: [{key: \"email\", value: \"w@example.com\"}]) { complete } }", json!({}))
        .await;
    let updated = next(&mut socket).await.unwrap();
    let update = &updated["payload"]["data"]["contactUpdated"];
    assert_eq!(update["kind"], "UPDATED", "{updated}");
    assert_eq!(update["contact"]["email"], "w@example.com");
}

#[tokio::test]
async fn a_removed_member_stops_receiving_contact_updates() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let agent = app.agent("agent").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &agent, "AGENT").await;
    let key = crate::helpers::public_key(&app, &admin, &project_id).await;

    let mut socket = connect(&app, MODERN).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", agent.token)}})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "c", "type": "subscribe", "payload": {
            "query": "subscription($p: ID!) { contactUpdated(projectId: $p) { kind contactId } }",
            "variables": {"p": project_id},
        }}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.graphql(
        Some(&admin.token),
        "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }",
        json!({"p": project_id, "a": agent.id}),
    )
    .await;
    app.graphql(
        None,
        "mutation($i: StartChatInput!) { startChat(input: $i) { visitorToken } }",
        json!({"i": {"projectKey": key, "visitorId": "after-removal"}}),
    )
    .await;
    // Ended by the removal itself, as for any project the agent is not in.
    let message = next(&mut socket).await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], "c", "{message}");
    assert_eq!(message["payload"][0]["extensions"]["code"], "NOT_FOUND");
}
