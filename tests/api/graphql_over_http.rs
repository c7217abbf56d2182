//! GraphQL over HTTP: queries over GET, mutations refused there, content
//! negotiation with `application/graphql-response+json`, automatic persisted
//! queries, and `INTROSPECTION=false`.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, error_code, spawn_app, spawn_app_with};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn endpoint(app: &TestApp) -> String {
    format!("{}/graphql", app.address)
}

async fn get(
    app: &TestApp,
    token: Option<&str>,
    parameters: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.client.get(endpoint(app)).query(parameters);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.expect("a JSON body"))
}

async fn post(
    app: &TestApp,
    accept: Option<&str>,
    body: Value,
) -> (reqwest::StatusCode, String, Value) {
    let mut request = app.client.post(endpoint(app)).json(&body);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (
        status,
        content_type,
        response.json().await.expect("a JSON body"),
    )
}

#[tokio::test]
async fn a_query_runs_over_get_with_its_variables_and_the_callers_token() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project = app.project(&admin, "Shop over GET").await;
    let variables = json!({"id": project}).to_string();
    let (status, headers, body) = get(
        &app,
        Some(&admin.token),
        &[
            (
                "query",
                "query Project($id: ID!) { project(id: $id) { id name } }",
            ),
            ("variables", &variables),
            ("operationName", "Project"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(body["data"]["project"]["name"], "Shop over GET", "{body}");

    // Without the token, the same as over POST: a field error, and null
    // where the schema allows it.
    let (status, _, body) = get(
        &app,
        None,
        &[
            ("query", "query($id: ID!) { project(id: $id) { id } }"),
            ("variables", &variables),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let over_post = app
        .graphql(
            None,
            "query($id: ID!) { project(id: $id) { id } }",
            json!({"id": project}),
        )
        .await;
    assert_eq!(body, over_post);

    // The input guard holds for GET as for POST.
    let deep = format!("{{ me {}id{} }}", "{ a ".repeat(70), " }".repeat(70));
    let (status, _, body) = get(&app, None, &[("query", &deep)]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let (status, _, body) = get(
        &app,
        None,
        &[("query", "{ __typename }"), ("variables", "[1")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn mutations_and_subscriptions_over_get_are_refused_with_405() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    for parameters in [
        vec![(
            "query",
            "mutation { createProject(name: \"By GET\") { id } }",
        )],
        vec![("query", "subscription { notifications { id } }")],
        vec![
            (
                "query",
                "query Me { me { id } } mutation Make { createProject(name: \"By GET\") { id } }",
            ),
            ("operationName", "Make"),
        ],
    ] {
        let (status, headers, body) = get(&app, Some(&admin.token), &parameters).await;
        assert_eq!(status, 405, "{parameters:?}: {body}");
        assert_eq!(headers["allow"], "POST");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    let projects = app
        .graphql(Some(&admin.token), "{ projects { name } }", json!({}))
        .await;
    assert_eq!(
        projects["data"]["projects"],
        json!([]),
        "nothing was created"
    );

    // The query of the same document still runs over GET.
    let (status, _, body) = get(
        &app,
        Some(&admin.token),
        &[
            (
                "query",
                "query Me { me { id } } mutation Make { createProject(name: \"By GET\") { id } }",
            ),
            ("operationName", "Me"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["id"], admin.id.as_str());
}

#[tokio::test]
async fn a_get_that_is_neither_a_query_nor_a_page_request_is_a_400() {
    let app = spawn_app().await;
    let (status, _, body) = get(&app, None, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn graphql_response_json_is_answered_when_asked_for_with_400_for_request_errors() {
    let app = spawn_app().await;
    let (status, content_type, body) = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        json!({"query": "{ __typename }"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
    assert_eq!(body["data"]["__typename"], "QueryRoot");

    let invalid = json!({"query": "{ noSuchField }"});
    let (status, content_type, body) = post(&app, Some(GRAPHQL_RESPONSE), invalid.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");

    // application/json clients keep what they always had: 200.
    for accept in [Some("application/json"), Some("*/*"), None] {
        let (status, content_type, body) = post(&app, accept, invalid.clone()).await;
        assert_eq!(status, 200, "{accept:?}: {body}");
        assert_eq!(content_type, "application/json");
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
    }

    // Refusals of the document checks (an argument value out of range,
    // depth, cost) are request errors too, answered the same way.
    let over_limits = [
        "{ contacts(projectId: \"0190a5b2-0000-7000-8000-000000000000\", first: 101) { edges { cursor } } }",
        "{ a { a { a { a { a { a { a { a { a { a { a { a { a { id } } } } } } } } } } } } } }",
    ];
    for query in over_limits {
        let refused = json!({ "query": query });
        let (status, _, body) = post(&app, Some(GRAPHQL_RESPONSE), refused.clone()).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
        assert!(body.get("data").is_none(), "{body}");
        let (status, _, body) = post(&app, Some("application/json"), refused).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
    }

    // A field error is no request error: 200 in either type.
    let (status, _, body) = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        json!({"query": "{ me { id } }"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    // And over GET.
    let response = app
        .client
        .get(endpoint(&app))
        .query(&[("query", "{ noSuchField }")])
        .header(ACCEPT, GRAPHQL_RESPONSE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_unacceptable_accept_is_a_406() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(endpoint(&app))
        .header(ACCEPT, "text/plain")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let response = app
        .client
        .get(endpoint(&app))
        .query(&[("query", "{ __typename }")])
        .header(ACCEPT, "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

#[tokio::test]
async fn persisted_queries_miss_then_register_then_hit_over_post_and_get() {
    let app = spawn_app().await;
    let agent = app.agent("agent").await;
    let query = "query Me { me { id email } }";
    let hash = hex::encode(Sha256::digest(query.as_bytes()));
    let hash_only = json!({"extensions": persisted(&hash)});

    let send = |body: Value| {
        app.client
            .post(endpoint(&app))
            .bearer_auth(&agent.token)
            .json(&body)
            .send()
    };
    let miss = send(hash_only.clone()).await.unwrap();
    assert_eq!(miss.status(), 200);
    let miss: Value = miss.json().await.unwrap();
    assert_eq!(
        miss["errors"][0]["message"], "PersistedQueryNotFound",
        "{miss}"
    );
    assert_eq!(error_code(&miss), "PERSISTED_QUERY_NOT_FOUND");

    let registered: Value = send(json!({"query": query, "extensions": persisted(&hash)}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        registered["data"]["me"]["email"],
        agent.email.as_str(),
        "{registered}"
    );

    let hit: Value = send(hash_only).await.unwrap().json().await.unwrap();
    assert_eq!(hit["data"]["me"]["id"], agent.id.as_str(), "{hit}");

    // Over GET, as Apollo's link sends hashed queries when told to.
    let extensions = persisted(&hash).to_string();
    let (status, _, body) = get(&app, Some(&agent.token), &[("extensions", &extensions)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["id"], agent.id.as_str(), "{body}");

    // A query that is not the hash's is refused, and not stored.
    let other = "{ __typename }";
    let other_hash = hex::encode(Sha256::digest(other.as_bytes()));
    let response = send(json!({"query": "{ me { id } }", "extensions": persisted(&other_hash)}))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body: Value = send(json!({"extensions": persisted(&other_hash)}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");

    // A malformed extension is a client error too.
    let response =
        send(json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}))
            .await
            .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn with_introspection_off_schema_and_type_are_refused_and_typename_works() {
    let app = spawn_app_with(|settings| settings.introspection = false).await;
    for query in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"Contact\") { name } }",
        "{ ...Q } fragment Q on QueryRoot { __schema { types { name } } }",
        include_str!("../support/introspection_query.graphql"),
    ] {
        let body = app.graphql(None, query, json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("introspection is disabled"),
            "{body}"
        );
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    }
    let (status, _, body) = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        json!({"query": "{ __schema { queryType { name } } }"}),
    )
    .await;
    assert_eq!(status, 400, "a request error: {body}");

    let body = app.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "QueryRoot", "{body}");

    let on = spawn_app().await;
    let body = on
        .graphql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "QueryRoot");
}
