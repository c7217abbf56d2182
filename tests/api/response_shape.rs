//! Field errors null the nearest nullable ancestor (GraphQL spec 6.4.4),
//! over HTTP and websockets: no non-null key is left out of an answer.

use serde_json::{Value, json};

use crate::helpers::{public_key, spawn_app};
use crate::subscriptions::{self, MODERN, connect_as, send};

/// A cursor that is not one of ours fails the non-null `chats` field as
/// it runs (sizes out of range are refused before execution instead).
const DETAIL_WITH_A_FOREIGN_CURSOR: &str = "query($id: ID!) {
    contact(id: $id) { id chats(after: \"garbage\") { edges { cursor } } } }";
const NULLABLE_PARENT: &str =
    "query($id: ID!) { contact(id: $id) { id latestChat { id } } me { id } }";

async fn contact_of_a_chat(app: &crate::helpers::TestApp) -> (crate::helpers::TestAgent, String) {
    let admin = app.agent("admin").await;
    let project = app.project(&admin, "Shop").await;
    let key = public_key(app, &admin, &project).await;
    app.start_chat_as(
        "browser",
        &[],
        "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId } }",
        json!({"projectKey": key}),
    )
    .await;
    let id = app.contact_of_browser("browser").await.id.to_string();
    (admin, id)
}

#[tokio::test]
async fn an_error_in_a_non_null_field_nulls_data_instead_of_dropping_the_key() {
    let app = spawn_app().await;
    let (admin, id) = contact_of_a_chat(&app).await;
    let body = app
        .graphql(
            Some(&admin.token),
            DETAIL_WITH_A_FOREIGN_CURSOR,
            json!({"id": id}),
        )
        .await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["contact", "chats"]),
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // Without errors, nothing changes.
    let body = app
        .graphql(Some(&admin.token), NULLABLE_PARENT, json!({"id": id}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["contact"]["id"], id.as_str());

    // The same over a websocket.
    let mut socket = connect_as(&app.ws_url(), MODERN, &admin.token).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": DETAIL_WITH_A_FOREIGN_CURSOR, "variables": {"id": id}}}),
    )
    .await;
    let message = subscriptions::next(&mut socket).await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert!(
        message["payload"].as_object().unwrap().contains_key("data")
            && message["payload"]["data"].is_null(),
        "{message}"
    );
}
