use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_query_nested_past_the_depth_limit_is_rejected() {
    let app = spawn_app_with(|settings| settings.limits.max_query_depth = 5).await;
    let ana = app.agent("ana").await;
    let deep =
        "{ me { projects { members { agent { projects { members { agent { id } } } } } } } }";
    let body = app.graphql(Some(&ana.token), deep, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 5 levels"),
        "{body}"
    );
    assert!(body["data"].is_null());

    let shallow = app
        .graphql(Some(&ana.token), "{ me { projects { id } } }", json!({}))
        .await;
    assert!(shallow["errors"].is_null(), "{shallow}");
}

#[tokio::test]
async fn a_query_past_the_complexity_limit_is_rejected() {
    let app = spawn_app_with(|settings| settings.limits.max_query_complexity = 10).await;
    let ana = app.agent("ana").await;
    let aliases: String = (0..20).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let body = app
        .graphql(Some(&ana.token), &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex")
    );
}

#[tokio::test]
async fn an_oversized_body_is_rejected_with_a_clear_code() {
    let app = spawn_app_with(|settings| settings.limits.max_body_bytes = 4096).await;
    let padding = "x".repeat(10_000);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({"query": "{ me { id } }", "variables": {"padding": padding}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("4096")
    );
}

#[tokio::test]
async fn a_body_that_is_not_a_graphql_request_is_rejected() {
    let app = spawn_app().await;
    for body in ["not json", "[]", "{\"variables\": {}}"] {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn syntax_and_validation_errors_carry_a_code() {
    let app = spawn_app().await;
    for query in ["{ me { ", "{ noSuchField }", "{ project { id } }"] {
        let body = app.graphql(None, query, json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
    }
}

#[tokio::test]
async fn the_standard_introspection_query_passes_at_the_default_limits() {
    let app = spawn_app().await;
    let query = include_str!("../support/introspection_query.graphql");
    let body = app.graphql(None, query, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Contact"), "{body}");

    // Introspection keeps a rule of its own: one __schema per document,
    // ofType at most nine levels deep, as graphql-js 16.9 and later (and
    // so GraphiQL 4) ask for.
    let twice = "{ a: __schema { queryType { name } } b: __schema { queryType { name } } }";
    let body = app.graphql(None, twice, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let of_type = |levels: usize| {
        format!(
            "{{ __type(name: \"Contact\") {{ {}name{} }} }}",
            "ofType { ".repeat(levels),
            " }".repeat(levels)
        )
    };
    let body = app.graphql(None, &of_type(9), json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app.graphql(None, &of_type(10), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ofType")
    );
}
