use serde_json::json;

use crate::helpers::{PASSWORD, error_code, spawn_app, spawn_app_with};

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token expiresAt agent { email } } }";

#[tokio::test]
async fn login_with_the_right_password_gives_a_token_that_works() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let body = app
        .graphql(
            None,
            LOGIN,
            json!({"e": agent.email.to_uppercase(), "p": PASSWORD}),
        )
        .await;
    let token = body["data"]["login"]["token"].as_str().expect("a token");
    assert_eq!(body["data"]["login"]["agent"]["email"], agent.email);

    let me = app
        .graphql(Some(token), "{ me { id email name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["id"], agent.id.as_str());
    assert_eq!(me["data"]["me"]["name"], "ana");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let wrong_password = app
        .graphql(
            None,
            LOGIN,
            json!({"e": agent.email, "p": "not the password"}),
        )
        .await;
    let unknown_email = app
        .graphql(
            None,
            LOGIN,
            json!({"e": "nobody@example.com", "p": PASSWORD}),
        )
        .await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(wrong_password["data"], serde_json::Value::Null);
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_email["errors"][0]["message"]
    );
    assert_eq!(error_code(&unknown_email), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_is_refused_after_logout() {
    let app = spawn_app().await;
    let agent = app.agent("ana").await;
    let other_session = app.login(&agent.email, PASSWORD).await;

    let body = app
        .graphql(Some(&agent.token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(body["data"]["logout"], true, "{body}");

    let after = app
        .graphql(Some(&agent.token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED");
    // Only the token used for logout is revoked.
    let other = app
        .graphql(Some(&other_session), "{ me { id } }", json!({}))
        .await;
    assert_eq!(other["data"]["me"]["id"], agent.id.as_str());
}

#[tokio::test]
async fn anonymous_and_forged_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    for token in [None, Some("cta_forged"), Some("garbage")] {
        let body = app.graphql(token, "{ me { id } }", json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{token:?}");
    }
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app =
        spawn_app_with(|settings| settings.token_ttl = std::time::Duration::from_secs(1)).await;
    let agent = app.agent("ana").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let body = app
        .graphql(Some(&agent.token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_first_start_creates_an_owner_whose_printed_login_works() {
    let app = spawn_app_with(|settings| settings.bootstrap_owner = true).await;
    let login = app
        .owner_login
        .clone()
        .expect("an owner login on an empty database");
    let token = app.login(&login.email, &login.password).await;
    let body = app
        .graphql(
            Some(&token),
            "{ me { email projects { name viewerRole } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["me"]["email"], login.email.as_str());
    assert_eq!(body["data"]["me"]["projects"][0]["viewerRole"], "ADMIN");
    // A second start on the same database creates nothing more.
    assert!(
        contacts::bootstrap::ensure_owner(&app.app_services.db)
            .await
            .unwrap()
            .is_none()
    );
}
