//! Argument values out of range (page sizes, ids) are refused before any
//! resolver runs: a request error with no `data`, naming the argument,
//! over HTTP and websockets alike.

use serde_json::{Value, json};

use crate::helpers::{TestAgent, TestApp, public_key, spawn_app};
use crate::subscriptions::{self, MODERN, connect_as, send};

/// The example of issue 13: a page far over the limit, nested in a detail.
const DETAIL_WITH_HUGE_PAGE: &str =
    "query($id: ID!) { contact(id: $id) { id chats(first: 100000) { edges { node { id } } } } }";

async fn contact_of_a_chat(app: &TestApp) -> (TestAgent, String, String) {
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
    (admin, project, id)
}

fn assert_refused(body: &Value, argument: &str) {
    assert!(
        body.as_object()
            .is_some_and(|body| !body.contains_key("data")),
        "a request error has no data: {body}"
    );
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(error["extensions"]["field"], argument, "{body}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|message| message.starts_with(&format!("{argument}: "))),
        "{body}"
    );
}

#[tokio::test]
async fn out_of_range_page_sizes_and_malformed_ids_are_request_errors() {
    let app = spawn_app().await;
    let (admin, project, id) = contact_of_a_chat(&app).await;
    let cases = [
        (DETAIL_WITH_HUGE_PAGE, json!({"id": id}), "first"),
        (
            "query($id: ID!) { contact(id: $id) { history(first: -1) { hasNextPage } } }",
            json!({"id": id}),
            "first",
        ),
        (
            "query($p: ID!, $n: Int) { contacts(projectId: $p, last: $n) { totalCount } }",
            json!({"p": project, "n": 101}),
            "last",
        ),
        (
            "query($p: ID!) { exports(projectId: $p, first: 1000) { edges { cursor } } }",
            json!({"p": project}),
            "first",
        ),
        (
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({"id": "not-an-id"}),
            "id",
        ),
        (
            "mutation { reorderFormQuestions(projectId: \"x\", ids: []) { id } }",
            json!({}),
            "projectId",
        ),
        (
            "query($id: ID!, $after: ID) { contact(id: $id) { history(after: $after) { hasNextPage } } }",
            json!({"id": id, "after": "42"}),
            "after",
        ),
    ];
    for (query, variables, argument) in cases {
        let body = app.graphql(Some(&admin.token), query, variables).await;
        assert_refused(&body, argument);
    }

    // At the limit, the same operation runs.
    let body = app
        .graphql(
            Some(&admin.token),
            "query($id: ID!) { contact(id: $id) { id chats(first: 100) { edges { cursor } } } }",
            json!({"id": id}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["contact"]["id"], id.as_str());
}

#[tokio::test]
async fn a_document_parsed_before_is_checked_again_with_each_requests_variables() {
    let app = spawn_app().await;
    let (admin, project, _) = contact_of_a_chat(&app).await;
    let page =
        "query($p: ID!, $n: Int) { contacts(projectId: $p, first: $n) { edges { cursor } } }";
    for (n, refused) in [(1, false), (101, true), (1, false), (-1, true)] {
        let body = app
            .graphql(Some(&admin.token), page, json!({"p": project, "n": n}))
            .await;
        if refused {
            assert_refused(&body, "first");
        } else {
            assert!(body["errors"].is_null(), "{n}: {body}");
            assert_eq!(
                body["data"]["contacts"]["edges"].as_array().map(Vec::len),
                Some(1)
            );
        }
    }
    // And the caller too: the same text without a token is refused.
    let body = app.graphql(None, page, json!({"p": project, "n": 1})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
}

#[tokio::test]
async fn the_check_comes_before_authentication_and_any_resolver() {
    let app = spawn_app().await;
    // No token at all: the malformed id is refused before `contact` could
    // answer UNAUTHENTICATED.
    let body = app
        .graphql(
            None,
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({"id": "1 OR 1=1"}),
        )
        .await;
    assert_refused(&body, "id");
}

#[tokio::test]
async fn a_websocket_operation_is_refused_the_same_way() {
    let app = spawn_app().await;
    let (admin, project, id) = contact_of_a_chat(&app).await;
    let mut socket = connect_as(&app.ws_url(), MODERN, &admin.token).await;
    let operations = [
        (DETAIL_WITH_HUGE_PAGE.to_owned(), json!({"id": id}), "first"),
        (
            "subscription($p: ID!) { contactUpdated(projectId: $p) { contactId } }".to_owned(),
            json!({"p": format!("{project}x")}),
            "projectId",
        ),
    ];
    for (at, (query, variables, argument)) in operations.into_iter().enumerate() {
        send(
            &mut socket,
            json!({"id": at.to_string(), "type": "subscribe",
                   "payload": {"query": query, "variables": variables}}),
        )
        .await;
        let message = loop {
            let message = subscriptions::next(&mut socket).await.unwrap();
            // The `complete` that follows the previous refusal.
            if message["type"] != "complete" {
                break message;
            }
        };
        assert_eq!(message["id"], at.to_string(), "{message}");
        let body = match message["type"].as_str() {
            Some("error") => json!({"errors": message["payload"]}),
            Some("next") => message["payload"].clone(),
            _ => panic!("expected a refusal: {message}"),
        };
        assert_refused(&body, argument);
    }
}
