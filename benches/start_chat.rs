//! Throughput of `startChat` over HTTP with 32 concurrent clients.
//!
//! Run with `cargo bench --bench start_chat` (SQLite in a temporary folder),
//! or with `BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres`
//! to run on a fresh PostgreSQL database that is dropped afterwards.
//! `BENCH_REQUESTS` sets the number of requests (default 6,400).

#[path = "support/bench_app.rs"]
mod bench_app;
#[allow(dead_code)]
#[path = "../tests/support/geo_fixture.rs"]
mod geo_fixture;

use std::time::{Duration, Instant};

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
    let owner = bench_app::Owner {
        email: "bench@example.com",
        name: "Bench",
        password: "bench password",
    };
    let app = bench_app::start("contacts_bench", owner, |settings| {
        // Six addresses and one project carry the traffic of many sites
        // here: the rate limits would measure themselves, not startChat.
        settings.rate_limits.public_per_ip = 0;
        settings.rate_limits.public_per_project = 0;
    })
    .await;
    let url = app.url.clone();
    let project = app.project.clone();
    let engine = app.engine;
    println!("startChat, {requests} requests, {CLIENTS} concurrent clients, {engine}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let per_client = requests / CLIENTS;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            let key = project.public_key.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                // The credentials the server issued, as each visitor's widget
                // keeps them: the first round creates contacts, later rounds
                // find them.
                let mut credentials: Vec<Option<String>> = vec![None; VISITORS_PER_CLIENT];
                for n in 0..per_client {
                    let visitor = n % VISITORS_PER_CLIENT;
                    let body = json!({
                        "query": "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId visitorToken } }",
                        "variables": {"i": {"projectKey": key, "visitorId": credentials[visitor]}},
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
                    credentials[visitor] = answer["data"]["startChat"]["visitorId"]
                        .as_str()
                        .map(str::to_owned);
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

    app.finish().await;
}
