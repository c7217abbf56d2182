//! The websocket protocols as graphql-ws and Apollo clients rely on them:
//! handshake, close codes, operation lifecycle, and the caller's context.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, public_key, spawn_app};
use crate::subscriptions::{LEGACY, MODERN, Socket, close_code, connect, connect_as, next, send};

const MEMBERS: &str = "subscription($p: ID!) { membershipChanged(projectId: $p) { kind } }";

async fn acked(app: &TestApp, protocol: &str, token: &str) -> Socket {
    connect_as(&app.ws_url(), protocol, token).await
}

fn subscribe(id: &str, query: &str, variables: Value) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
}

#[tokio::test]
async fn an_init_without_a_live_token_is_forbidden() {
    let app = spawn_app().await;
    let revoked = app.agent("ana").await;
    app.graphql(Some(&revoked.token), "mutation { logout }", json!({}))
        .await;
    for payload in [
        json!({}),
        json!(null),
        json!({"authorization": "Bearer cta_forged"}),
        json!({"token": revoked.token}),
    ] {
        let mut socket = connect(&app, MODERN).await;
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        assert_eq!(close_code(&mut socket).await, 4403, "{payload}");

        let mut socket = connect(&app, LEGACY).await;
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        let refused = next(&mut socket).await.unwrap();
        assert_eq!(refused["type"], "connection_error", "{refused}");
        assert_eq!(refused["payload"]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(close_code(&mut socket).await, 4403, "{payload}");
    }
}

#[tokio::test]
async fn the_token_may_come_under_each_documented_key() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    for payload in [
        json!({"authorization": format!("Bearer {}", agent.token)}),
        json!({"Authorization": format!("Bearer {}", agent.token)}),
        json!({"token": agent.token}),
    ] {
        let mut socket = connect(&app, MODERN).await;
        send(
            &mut socket,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    }
}

#[tokio::test]
async fn no_init_in_time_closes_with_4408() {
    let app = spawn_app().await;
    let mut socket = connect(&app, MODERN).await;
    assert_eq!(close_code(&mut socket).await, 4408);
}

#[tokio::test]
async fn a_second_init_closes_with_4429() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let mut socket = acked(&app, MODERN, &agent.token).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"token": agent.token}}),
    )
    .await;
    assert_eq!(close_code(&mut socket).await, 4429);
}

#[tokio::test]
async fn an_operation_before_the_ack_closes_with_4401() {
    let app = spawn_app().await;
    for (protocol, start) in [(MODERN, "subscribe"), (LEGACY, "start")] {
        let mut socket = connect(&app, protocol).await;
        send(
            &mut socket,
            json!({"id": "1", "type": start, "payload": {"query": "{ __typename }"}}),
        )
        .await;
        assert_eq!(close_code(&mut socket).await, 4401, "{protocol}");
    }
}

#[tokio::test]
async fn malformed_messages_close_with_4400() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    for message in [
        "not json".to_owned(),
        json!({"type": "shout"}).to_string(),
        json!({"type": "subscribe", "payload": {"query": "{ __typename }"}}).to_string(),
        json!({"type": "subscribe", "id": "1"}).to_string(),
        json!({"type": "subscribe", "id": "1", "payload": {"variables": {}}}).to_string(),
        json!({"type": "start", "id": "1", "payload": {"query": "{ __typename }"}}).to_string(),
        json!({"type": "complete"}).to_string(),
    ] {
        let mut socket = acked(&app, MODERN, &agent.token).await;
        socket.send(Message::text(message.clone())).await.unwrap();
        assert_eq!(close_code(&mut socket).await, 4400, "{message}");
    }
}

#[tokio::test]
async fn a_running_operation_id_used_again_closes_with_4409() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let mut socket = acked(&app, MODERN, &admin.token).await;
    let members = subscribe("twice", MEMBERS, json!({"p": project_id}));
    send(&mut socket, members.clone()).await;
    send(&mut socket, members).await;
    let frame = loop {
        match socket.next().await {
            Some(Ok(Message::Close(Some(frame)))) => break frame,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(frame.code), 4409);
    assert_eq!(frame.reason.as_str(), "Subscriber for twice already exists");
}

#[tokio::test]
async fn ping_gets_pong() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let mut socket = acked(&app, MODERN, &agent.token).await;
    send(&mut socket, json!({"type": "ping"})).await;
    let pong = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .unwrap();
    let Some(Ok(Message::Text(pong))) = pong else {
        panic!("{pong:?}");
    };
    assert_eq!(
        serde_json::from_str::<Value>(&pong).unwrap()["type"],
        "pong"
    );
}

#[tokio::test]
async fn complete_from_the_client_stops_its_operation() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let mut socket = acked(&app, MODERN, &admin.token).await;
    send(
        &mut socket,
        subscribe("1", MEMBERS, json!({"p": project_id})),
    )
    .await;
    send(&mut socket, json!({"id": "1", "type": "complete"})).await;
    // The id is free again: the first operation is gone, not 4409.
    send(&mut socket, subscribe("1", "{ __typename }", json!({}))).await;
    let result = next(&mut socket).await.unwrap();
    assert_eq!(result["type"], "next", "{result}");
    assert_eq!(result["payload"]["data"]["__typename"], "QueryRoot");
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
}

#[tokio::test]
async fn queries_and_mutations_run_with_next_and_complete() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let mut socket = acked(&app, MODERN, &agent.token).await;
    send(&mut socket, subscribe("me", "{ me { email } }", json!({}))).await;
    let result = next(&mut socket).await.unwrap();
    assert_eq!(
        result,
        json!({"id": "me", "type": "next", "payload": {"data": {"me": {"email": agent.email}}}})
    );
    assert_eq!(
        next(&mut socket).await.unwrap(),
        json!({"id": "me", "type": "complete"})
    );
}

#[tokio::test]
async fn request_errors_end_the_operation_with_error_and_no_complete() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let mut socket = acked(&app, MODERN, &agent.token).await;
    for (id, query) in [("syntax", "{ me { "), ("validation", "{ noSuchField }")] {
        send(&mut socket, subscribe(id, query, json!({}))).await;
        let error = next(&mut socket).await.unwrap();
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["id"], id);
        assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    // The next message belongs to the next operation: no `complete` came.
    send(&mut socket, subscribe("after", "{ __typename }", json!({}))).await;
    let result = next(&mut socket).await.unwrap();
    assert_eq!(result["id"], "after", "{result}");
}

#[tokio::test]
async fn a_token_revoked_since_init_closes_with_4401_at_the_next_operation() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let mut socket = acked(&app, MODERN, &agent.token).await;
    // Revoked behind the server's back, without the event `logout` sends:
    // the next operation still finds out.
    entity::access_token::Entity::update_many()
        .col_expr(
            entity::access_token::Column::RevokedAt,
            Expr::value(chrono::Utc::now()),
        )
        .filter(entity::access_token::Column::AgentId.eq(agent.id.parse::<uuid::Uuid>().unwrap()))
        .exec(&app.app_services.db)
        .await
        .unwrap();
    send(&mut socket, subscribe("1", "{ me { email } }", json!({}))).await;
    assert_eq!(close_code(&mut socket).await, 4401);
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let mut socket = acked(&app, MODERN, &agent.token).await;
    let limit = app.settings.limits.max_body_bytes;
    let padding = "x".repeat(limit);
    let message = subscribe("big", "{ __typename }", json!({"padding": padding}));
    send(&mut socket, message).await;
    assert_eq!(close_code(&mut socket).await, 1009);
}

#[tokio::test]
async fn operations_past_the_limit_per_connection_get_an_error() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let mut socket = acked(&app, MODERN, &admin.token).await;
    for n in 0..100 {
        send(
            &mut socket,
            subscribe(&n.to_string(), MEMBERS, json!({"p": project_id})),
        )
        .await;
    }
    send(
        &mut socket,
        subscribe("one-more", MEMBERS, json!({"p": project_id})),
    )
    .await;
    let error = next(&mut socket).await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "one-more");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        error["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("100")
    );
    // Stopping one makes room.
    send(&mut socket, json!({"id": "0", "type": "complete"})).await;
    send(&mut socket, subscribe("room", "{ __typename }", json!({}))).await;
    assert_eq!(next(&mut socket).await.unwrap()["id"], "room");
}

#[tokio::test]
async fn operations_see_the_browser_origin_of_the_upgrade() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = public_key(&app, &admin, &project_id).await;
    let mut request = app.ws_url().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", MODERN.parse().unwrap());
    headers.insert("Origin", "https://elsewhere.example".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"token": admin.token}}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        subscribe(
            "chat",
            "mutation($i: StartChatInput!) { startChat(input: $i) { visitorToken } }",
            json!({"i": {"projectKey": key}}),
        ),
    )
    .await;
    let result = next(&mut socket).await.unwrap();
    assert_eq!(
        result["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{result}"
    );
}

#[tokio::test]
async fn the_legacy_protocol_keeps_alive_and_confirms_stop() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let mut socket = connect(&app, LEGACY).await;
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"token": admin.token}}),
    )
    .await;
    let mut texts = Vec::new();
    while texts.len() < 2 {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                texts.push(serde_json::from_str::<Value>(&text).unwrap()["type"].clone())
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(texts, [json!("connection_ack"), json!("ka")]);
    send(
        &mut socket,
        json!({"id": "m", "type": "start", "payload": {"query": MEMBERS, "variables": {"p": project_id}}}),
    )
    .await;
    send(&mut socket, json!({"id": "m", "type": "stop"})).await;
    assert_eq!(
        next(&mut socket).await.unwrap(),
        json!({"id": "m", "type": "complete"})
    );
    send(
        &mut socket,
        json!({"id": "q", "type": "start", "payload": {"query": "{ nope }"}}),
    )
    .await;
    let error = next(&mut socket).await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    send(&mut socket, json!({"type": "connection_terminate"})).await;
    assert!(next(&mut socket).await.is_err());
}
