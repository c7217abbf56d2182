//! Throughput of `startChat` over HTTP with 32 concurrent clients.
//!
//! Run with `cargo bench --bench start_chat` (SQLite in a temporary folder),
//! or with `BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres`
//! to run on a fresh PostgreSQL database that is dropped afterwards.
//! `BENCH_REQUESTS` sets the number of requests (default 6,400).

#[allow(dead_code)]
#[path = "../tests/support/geo_fixture.rs"]
mod geo_fixture;

use std::time::{Duration, Instant};

use contacts::config::Settings;
use contacts::domain::{agents, projects};
use contacts::startup::App;
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

const CLIENTS: usize = 32;
const VISITORS_PER_CLIENT: usize = 50;
const ADDRESSES: [&str; 6] = [
    geo_fixture::US_CALIFORNIA_IP,
    geo_fixture::SPAIN_MALAGA_IP,
    geo_fixture::ITALY_ROME_IP,
    geo_fixture::GERMANY_BAVARIA_IPV6,
    geo_fixture::SWITZERLAND_COUNTRY_ONLY_IP,
    geo_fixture::NOT_IN_FIXTURE_IP,
];

#[tokio::main]
async fn main() {
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(6_400);
    let dir = tempfile::tempdir().expect("temporary folder");
    let geo_path = dir.path().join("city.mmdb");
    geo_fixture::write_city_fixture(&geo_path, geo_fixture::FixtureVariant::Initial);

    let postgres = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let database_name = format!("contacts_bench_{}", uuid::Uuid::now_v7().simple());
    let database_url = match &postgres {
        Some(admin_url) => {
            let admin = Database::connect(admin_url).await.expect("PostgreSQL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{database_name}\""))
                .await
                .expect("create the bench database");
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(base, _)| base);
            format!("{base}/{database_name}")
        }
        None => contacts::config::sqlite_url_in(dir.path()),
    };

    let mut settings = Settings::from_lookup(|_| None).expect("settings");
    settings.listen_addr = "127.0.0.1:0".parse().expect("address");
    settings.data_dir = dir.path().to_path_buf();
    settings.database_url = database_url;
    settings.bootstrap_owner = false;
    settings.geo.database = Some(geo_path);
    settings.trusted_proxies = "127.0.0.1".parse().expect("proxy");
    // Six addresses and one project carry the traffic of many sites here:
    // the rate limits would measure themselves, not startChat.
    settings.rate_limits.public_per_ip = 0;
    settings.rate_limits.public_per_project = 0;
    let app = App::build(settings).await.expect("app");
    let db = app.services().db.clone();
    let owner = agents::create_agent(&db, "bench@example.com", "Bench", "bench password")
        .await
        .expect("agent");
    let project = projects::create_project(&db, owner.id, "Bench")
        .await
        .expect("project");
    let url = format!("http://{}/graphql", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));

    let engine = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("startChat, {requests} requests, {CLIENTS} concurrent clients, {engine}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let per_client = requests / CLIENTS;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client_no| {
            let client = client.clone();
            let url = url.clone();
            let key = project.public_key.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for n in 0..per_client {
                    // The first round creates contacts, later rounds find them.
                    let visitor = format!("bench-{client_no}-{}", n % VISITORS_PER_CLIENT);
                    let body = json!({
                        "query": "mutation($i: StartChatInput!) { startChat(input: $i) { visitorToken } }",
                        "variables": {"i": {"projectKey": key, "visitorId": visitor}},
                    });
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("x-forwarded-for", ADDRESSES[n % ADDRESSES.len()])
                        .json(&body)
                        .send()
                        .await
                        .expect("response");
                    let answer: serde_json::Value = response.json().await.expect("JSON");
                    assert!(answer["errors"].is_null(), "{answer}");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "  {:.0} startChat/s, p50 {:.1} ms, p99 {:.1} ms ({} requests in {:.2} s; {} contacts)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        latencies.len(),
        elapsed.as_secs_f64(),
        CLIENTS * VISITORS_PER_CLIENT,
    );

    if let Some(admin_url) = postgres {
        drop(db);
        let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
        let _ = admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{database_name}\" WITH (FORCE)"
            ))
            .await;
    }
}
