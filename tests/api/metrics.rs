//! `/metrics` scraped as Prometheus does, after known traffic: the counts
//! must be those of the requests, websockets, refusals and exports sent.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::exports::finished;
use crate::geo_fixture::{FixtureVariant, write_city_fixture};
use crate::helpers::{TestApp, spawn_app_with};
use crate::subscriptions::{MODERN, connect_as, next, send};

/// The value of the sample `name` whose labels are exactly `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, found) = match series.split_once('{') {
                Some((series_name, rest)) => (series_name, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let found: BTreeMap<&str, &str> = found
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key, value.trim_matches('"')))
                })
                .collect();
            (found == wanted).then(|| value.parse().ok()).flatten()
        })
}

/// `base` is `http://host:port`.
async fn scrape(client: &reqwest::Client, base: &str) -> String {
    let response = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    text
}

async fn me_query(app: &TestApp, token: Option<&str>) {
    app.graphql(token, "query mine { me { id } }", json!({}))
        .await;
}

#[tokio::test]
async fn requests_websockets_refusals_and_exports_are_counted() {
    let geo_dir = tempfile::tempdir().unwrap();
    let geo_path = geo_dir.path().join("city.mmdb");
    write_city_fixture(&geo_path, FixtureVariant::Initial);
    let built = maxminddb::Reader::open_readfile(&geo_path)
        .unwrap()
        .metadata()
        .build_epoch;
    let app = spawn_app_with(|settings| {
        settings.geo.database = Some(geo_path.clone());
        settings.rate_limits.login_email_free_failures = 1;
    })
    .await;
    let agent = app.agent("metrics").await;
    let project_id = app.project(&agent, "Metrics").await;
    contacts::seed::seed_contacts(
        &app.app_services.db,
        project_id.parse().unwrap(),
        7,
        1,
        |_| {},
    )
    .await
    .unwrap();

    for _ in 0..3 {
        me_query(&app, Some(&agent.token)).await;
    }
    me_query(&app, None).await;
    // Failures past the free one lock the email: RATE_LIMITED.
    let mut locked = 0;
    for _ in 0..4 {
        let body = app
            .graphql(
                None,
                "mutation { login(email: \"nobody@example.com\", password: \"wrong\") { token } }",
                json!({}),
            )
            .await;
        if crate::helpers::error_code(&body) == "RATE_LIMITED" {
            locked += 1;
        }
    }
    assert!(locked > 0, "no login was refused");

    let now = Utc::now();
    let requested = app
        .graphql(
            Some(&agent.token),
            "mutation($p: ID!, $from: String!, $to: String!) { exportContacts(projectId: $p, from: $from, to: $to) { id } }",
            json!({"p": project_id, "from": (now - chrono::Duration::days(3650)).to_rfc3339(), "to": (now + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    let job_id = requested["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{requested}"))
        .to_owned();
    let done = finished(&app, &agent, &job_id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");

    let mut socket = connect_as(&app.ws_url(), MODERN, &agent.token).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { notifications { id } }"}}),
    )
    .await;
    send(
        &mut socket,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "{ me { id } }"}}),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "next");
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
    // The pool is sampled once a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let text = scrape(&app.client, &app.address).await;
    let ok = [
        ("root_field", "me"),
        ("operation_type", "query"),
        ("error_code", "OK"),
    ];
    assert_eq!(
        sample(&text, "contacts_graphql_requests_total", &ok),
        Some(3.0),
        "{text}"
    );
    let unauthenticated = [
        ("root_field", "me"),
        ("operation_type", "query"),
        ("error_code", "UNAUTHENTICATED"),
    ];
    assert_eq!(
        sample(&text, "contacts_graphql_requests_total", &unauthenticated),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "contacts_graphql_request_duration_seconds_count",
            &[("root_field", "me")]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "contacts_rate_limit_refusals_total",
            &[("root_field", "login")]
        ),
        Some(f64::from(locked)),
        "{text}"
    );
    assert_eq!(
        sample(&text, "contacts_websocket_connections", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "contacts_active_subscriptions", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "contacts_export_jobs", &[("status", "COMPLETED")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "contacts_export_jobs", &[("status", "QUEUED")]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "contacts_export_queue_depth", &[]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "contacts_export_rows_written", &[]),
        Some(7.0),
        "{text}"
    );
    assert!(
        sample(&text, "contacts_export_bytes_written", &[]).is_some_and(|bytes| bytes > 100.0),
        "{text}"
    );
    assert!(
        sample(&text, "contacts_db_pool_connections", &[]).is_some_and(|size| size >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "contacts_db_pool_idle_connections", &[]).is_some(),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "contacts_db_pool_acquire_duration_seconds_count",
            &[]
        )
        .is_some_and(|count| count >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "contacts_geoip_database_build_timestamp_seconds",
            &[]
        ),
        Some(built as f64),
        "{text}"
    );

    // Every series the dashboard plots is one the server writes.
    let dashboard = include_str!("../../ops/grafana-dashboard.json");
    let mut plotted: Vec<&str> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("contacts_"))
        .collect();
    plotted.dedup();
    assert!(plotted.len() >= 8, "{plotted:?}");
    for series in plotted {
        assert!(
            text.lines().any(|line| line.starts_with(series)),
            "the dashboard plots {series}, which /metrics does not have:\n{text}"
        );
    }

    // The socket's end lowers both gauges.
    send(&mut socket, json!({"id": "1", "type": "complete"})).await;
    drop(socket);
    let mut gauges = (None, None);
    for _ in 0..50 {
        let text = scrape(&app.client, &app.address).await;
        gauges = (
            sample(&text, "contacts_websocket_connections", &[]),
            sample(&text, "contacts_active_subscriptions", &[]),
        );
        if gauges == (Some(0.0), Some(0.0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gauges, (Some(0.0), Some(0.0)));
}

#[tokio::test]
async fn with_metrics_addr_the_metrics_are_served_apart_only() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_address = format!("127.0.0.1:{port}");
    let address = metrics_address.clone();
    let app = spawn_app_with(move |settings| {
        settings.metrics_addr = Some(address.parse().unwrap());
    })
    .await;
    me_query(&app, None).await;
    let public = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let text = scrape(&app.client, &format!("http://{metrics_address}")).await;
    let refused = [
        ("root_field", "me"),
        ("operation_type", "query"),
        ("error_code", "UNAUTHENTICATED"),
    ];
    assert_eq!(
        sample(&text, "contacts_graphql_requests_total", &refused),
        Some(1.0),
        "{text}"
    );
}
