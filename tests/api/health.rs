use serde_json::{Value, json};

use crate::exports::Outside;
use crate::helpers::{TestApp, spawn_app, spawn_app_full, spawn_app_with};

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn probes_answer_when_the_database_is_up() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    // The embedded defaults depend on the database alone.
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok"}})
    );
}

#[tokio::test]
async fn readyz_reports_a_stopped_smtp_or_s3_server_as_down() {
    let mut outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, outside.adapters()).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "s3": "ok", "smtp": "ok"}})
    );

    outside.smtp.stop().await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    let down = |check: &Value| {
        check
            .as_str()
            .is_some_and(|text| text.starts_with("down: "))
    };
    assert!(down(&body["checks"]["smtp"]), "{body}");
    assert_eq!(body["checks"]["s3"], "ok");
    assert_eq!(body["checks"]["database"], "ok");

    outside.s3.stop().await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(down(&body["checks"]["s3"]), "{body}");
    // Short reasons only: no addresses, hosts or error text.
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");

    // Liveness does not ask the dependencies.
    let alive = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), 200);
}

#[tokio::test]
async fn readyz_reports_a_redis_that_is_not_running_as_down() {
    // Nothing listens on port 1.
    let app = spawn_app_with(|settings| {
        settings.rate_limits.redis_url = Some("redis://127.0.0.1:1".into());
    })
    .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    let redis = body["checks"]["redis"].as_str().unwrap();
    assert!(redis.starts_with("down: "), "{body}");
    assert_eq!(body["checks"]["database"], "ok");

    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let app = spawn_app_with(|settings| settings.rate_limits.redis_url = Some(url)).await;
            let (status, body) = readyz(&app).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["checks"]["redis"], "ok");
        }
        _ => eprintln!(
            "SKIPPED the live half of readyz_reports_a_redis_that_is_not_running_as_down: set TEST_REDIS_URL"
        ),
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}
