//! Load: visitors start chats and answer the contact form while agents
//! page through contacts and run exports, for a fixed time. Reports
//! throughput, latencies and errors per operation, then checks the
//! database: one contact per visitor credential, every shared email shown
//! as a possible duplicate, no lost chat or answer, every export
//! finished. Exits non-zero when any of that fails.
//!
//! ```sh
//! cargo bench --bench load                                  # SQLite in a temporary folder
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench load
//! ```
//!
//! `LOAD_SECS` (default 40), `LOAD_VISITORS` (concurrent visitor clients,
//! default 48), `LOAD_AGENTS` (default 4), `LOAD_EXPORT_EVERY_SECS`
//! (default 5). All traffic goes to the in-process server on 127.0.0.1.

#[path = "../benches/support/bench_app.rs"]
mod bench_app;
#[allow(dead_code)]
#[path = "../tests/support/geo_fixture.rs"]
mod geo_fixture;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

/// Distinct visitors; a visitor comes back when its number is drawn again.
const VISITOR_SPACE: u64 = 20_000;
/// Distinct emails: fewer than visitors, so that some visitors give an
/// email another visitor gave, and their contacts become possible duplicates.
const EMAIL_SPACE: u64 = 12_000;
/// A few visitors who start chats over and over, often at the same moment.
const HOT_VISITORS: u64 = 16;
const PAGE_SIZE: u32 = 50;

const START: &str =
    "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId visitorToken } }";
const SUBMIT: &str = "mutation($a: [FormAnswerInput!]!) { submitContactForm(answers: $a) { complete contact { email } } }";
const PAGE: &str = "query($p: ID!, $n: Int!, $a: String, $o: ContactOrderInput, $f: ContactFilterInput) {
    contacts(projectId: $p, first: $n, after: $a, orderBy: $o, filter: $f) {
        edges { node { id name email phone createdAt location { countryCode city } latestChat { id } } }
        pageInfo { hasNextPage endCursor } } }";
const EXPORT: &str = "mutation($p: ID!, $f: String!, $t: String!) { exportContacts(projectId: $p, from: $f, to: $t) { id } }";
const JOB: &str = "query($id: ID!) { exportJob(id: $id) { status error rowsWritten } }";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Latencies and failures, per operation.
#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<&'static str, u64>,
    error_samples: Vec<String>,
    /// The credential the server issued to each visitor number, as the
    /// visitor's widget keeps it.
    credentials: HashMap<u64, String>,
    /// Every credential the server issued.
    started_visitors: HashSet<String>,
    chats_started: u64,
    emails_submitted: HashSet<String>,
}

type Shared = Arc<Mutex<Stats>>;

struct Client {
    http: reqwest::Client,
    url: String,
    stats: Shared,
}

impl Client {
    /// One operation; its data, or `None` after recording the failure.
    async fn call(
        &self,
        operation: &'static str,
        token: Option<&str>,
        forwarded_for: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Option<Value> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(ip) = forwarded_for {
            request = request.header("x-forwarded-for", ip);
        }
        let sent = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.json::<Value>().await {
                    Ok(body) if status.is_success() && body["errors"].is_null() => Ok(body),
                    Ok(body) => Err(format!("HTTP {status}: {body}")),
                    Err(error) => Err(format!("HTTP {status}: {error}")),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        let elapsed = sent.elapsed();
        let mut stats = self.stats.lock().unwrap();
        match outcome {
            Ok(body) => {
                stats.latencies.entry(operation).or_default().push(elapsed);
                Some(body["data"].clone())
            }
            Err(error) => {
                *stats.errors.entry(operation).or_default() += 1;
                if stats.error_samples.len() < 10 {
                    stats
                        .error_samples
                        .push(format!("{operation}: {error:.300}"));
                }
                None
            }
        }
    }
}

/// A public-looking address per visitor, so that per-IP limits see many
/// clients as in production (each in a /24 of its own).
fn address_of(visitor: u64) -> String {
    format!(
        "{}.{}.{}.7",
        20 + visitor % 180,
        (visitor / 180) % 250,
        visitor % 250
    )
}

async fn visitor(client: Arc<Client>, key: String, seed: u64, until: Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    while Instant::now() < until {
        let n = if rng.gen_bool(0.1) {
            rng.gen_range(0..HOT_VISITORS)
        } else {
            rng.gen_range(HOT_VISITORS..VISITOR_SPACE)
        };
        // Hot visitors starting twice before their first answer came back
        // are two browsers: each gets a credential of its own.
        let credential = client.stats.lock().unwrap().credentials.get(&n).cloned();
        let ip = address_of(n);
        let Some(data) = client
            .call(
                "startChat",
                None,
                Some(&ip),
                START,
                json!({"i": {"projectKey": key, "visitorId": credential}}),
            )
            .await
        else {
            continue;
        };
        {
            let issued = data["startChat"]["visitorId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut stats = client.stats.lock().unwrap();
            stats.chats_started += 1;
            stats.credentials.insert(n, issued.clone());
            stats.started_visitors.insert(issued);
        }
        if !rng.gen_bool(0.7) {
            continue;
        }
        let token = data["startChat"]["visitorToken"]
            .as_str()
            .unwrap_or_default();
        let email = format!("person{}@example.com", n % EMAIL_SPACE);
        let answers = json!([
            {"key": "name", "value": format!("Visitor {n}")},
            {"key": "email", "value": email},
        ]);
        if client
            .call(
                "submitContactForm",
                Some(token),
                Some(&ip),
                SUBMIT,
                json!({"a": answers}),
            )
            .await
            .is_some()
        {
            client.stats.lock().unwrap().emails_submitted.insert(email);
        }
    }
}

async fn agent(client: Arc<Client>, token: String, project_id: String, seed: u64, until: Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    let orders = ["CREATED_AT", "LAST_SEEN_AT", "NAME", "EMAIL"];
    while Instant::now() < until {
        let order = json!({"field": orders[rng.gen_range(0..orders.len())], "direction": if rng.gen_bool(0.5) { "ASC" } else { "DESC" }});
        let filter = if rng.gen_bool(0.3) {
            json!({"search": format!("person{}", rng.gen_range(1..100))})
        } else {
            json!({})
        };
        let mut after: Option<String> = None;
        for _ in 0..rng.gen_range(1..10) {
            let Some(data) = client
                .call(
                    "contacts page",
                    Some(&token),
                    None,
                    PAGE,
                    json!({"p": project_id, "n": PAGE_SIZE, "a": after, "o": order, "f": filter}),
                )
                .await
            else {
                break;
            };
            let info = &data["contacts"]["pageInfo"];
            if info["hasNextPage"] != true {
                break;
            }
            after = info["endCursor"].as_str().map(str::to_owned);
        }
    }
}

async fn exporter(
    client: Arc<Client>,
    token: String,
    project_id: String,
    every: Duration,
    until: Instant,
) -> Vec<String> {
    let mut jobs = Vec::new();
    while Instant::now() < until {
        let now = chrono::Utc::now();
        let variables = json!({
            "p": project_id,
            "f": (now - chrono::Duration::days(1)).to_rfc3339(),
            "t": (now + chrono::Duration::days(1)).to_rfc3339(),
        });
        if let Some(data) = client
            .call("exportContacts", Some(&token), None, EXPORT, variables)
            .await
            && let Some(id) = data["exportContacts"]["id"].as_str()
        {
            jobs.push(id.to_owned());
        }
        tokio::time::sleep(every).await;
    }
    jobs
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("a check query")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("a count")
}

async fn strings(db: &sea_orm::DatabaseConnection, sql: &str) -> HashSet<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("a check query")
        .into_iter()
        .filter_map(|row| row.try_get::<String>("", "v").ok())
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("LOAD_SECS", 40);
    let visitors: u64 = env_or("LOAD_VISITORS", 48);
    let agents_n: u64 = env_or("LOAD_AGENTS", 4);
    let export_every = Duration::from_secs(env_or("LOAD_EXPORT_EVERY_SECS", 5));

    let owner = bench_app::Owner {
        email: "load@example.com",
        name: "Load",
        password: "load password",
    };
    let app = bench_app::start("contacts_load", owner, |settings| {
        // One project takes all the traffic here, far above what one site
        // sends; the per-address and login limits stay at their defaults.
        settings.rate_limits.public_per_project = 0;
        settings.exports.poll_interval = Duration::from_millis(200);
    })
    .await;
    let db = app.db.clone();
    let project = app.project.clone();
    let url = app.url.clone();

    let stats: Shared = Arc::default();
    let client = Arc::new(Client {
        http: reqwest::Client::new(),
        url,
        stats: stats.clone(),
    });
    let login = client
        .call(
            "login",
            None,
            None,
            "mutation { login(email: \"load@example.com\", password: \"load password\") { token } }",
            json!({}),
        )
        .await
        .expect("login");
    let token = login["login"]["token"].as_str().expect("token").to_owned();
    let project_id = project.id.to_string();
    for (key, label, kind, target) in [
        ("name", "Name", "TEXT", json!({"field": "NAME"})),
        ("email", "Email", "EMAIL", json!({"field": "EMAIL"})),
    ] {
        client
            .call(
                "createFormQuestion",
                Some(&token),
                None,
                "mutation($p: ID!, $q: FormQuestionInput!) { createFormQuestion(projectId: $p, input: $q) { id } }",
                json!({"p": project_id, "q": {"key": key, "label": label, "kind": kind, "target": target}}),
            )
            .await
            .expect("a form question");
    }
    stats.lock().unwrap().latencies.clear();

    let engine = app.engine;
    println!(
        "load: {seconds} s on {engine}, {visitors} visitors, {agents_n} agents paging, an export every {} s",
        export_every.as_secs()
    );
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for n in 0..visitors {
        tasks.push(tokio::spawn(visitor(
            client.clone(),
            project.public_key.clone(),
            n,
            until,
        )));
    }
    for n in 0..agents_n {
        tasks.push(tokio::spawn(agent(
            client.clone(),
            token.clone(),
            project_id.clone(),
            1_000 + n,
            until,
        )));
    }
    let exports = tokio::spawn(exporter(
        client.clone(),
        token.clone(),
        project_id.clone(),
        export_every,
        until,
    ));
    for task in tasks {
        task.await.expect("a client task");
    }
    let jobs = exports.await.expect("the export task");
    let elapsed = started.elapsed();

    // Exports still running finish now; these polls are not part of the load.
    let checker = Client {
        http: client.http.clone(),
        url: client.url.clone(),
        stats: Arc::default(),
    };
    let mut failed_exports = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    for job in &jobs {
        loop {
            let data = checker
                .call("exportJob", Some(&token), None, JOB, json!({"id": job}))
                .await
                .unwrap_or_default();
            match data["exportJob"]["status"].as_str() {
                Some("COMPLETED") => break,
                Some("FAILED" | "CANCELLED") => {
                    failed_exports += 1;
                    println!("  export {job} ended: {}", data["exportJob"]);
                    break;
                }
                _ if Instant::now() > deadline => {
                    failed_exports += 1;
                    println!("  export {job} did not finish: {}", data["exportJob"]);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    let stats = std::mem::take(&mut *stats.lock().unwrap());
    println!(
        "  {:<18} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "operation", "count", "per s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let mut operations: Vec<&&str> = stats.latencies.keys().chain(stats.errors.keys()).collect();
    operations.sort();
    operations.dedup();
    for operation in operations {
        let mut latencies = stats.latencies.get(*operation).cloned().unwrap_or_default();
        latencies.sort();
        let errors = stats.errors.get(*operation).copied().unwrap_or(0);
        if latencies.is_empty() {
            println!(
                "  {operation:<18} {:>8} {:>9} {:>9} {:>9} {:>9} {errors:>7}",
                0, "-", "-", "-", "-"
            );
            continue;
        }
        println!(
            "  {operation:<18} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {errors:>7}",
            latencies.len(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1e3),
        );
    }
    let all: usize = stats.latencies.values().map(Vec::len).sum();
    let errors: u64 = stats.errors.values().sum();
    println!(
        "  all: {all} requests in {:.1} s, {:.0} per s; errors: {errors}",
        elapsed.as_secs_f64(),
        all as f64 / elapsed.as_secs_f64()
    );
    for sample in &stats.error_samples {
        println!("  error: {sample}");
    }

    // What the database says afterwards.
    let duplicate_visitors = count(
        &db,
        "SELECT COUNT(*) AS n FROM (SELECT key_hash FROM visitors \
         GROUP BY key_hash HAVING COUNT(*) > 1) d",
    )
    .await;
    // Contacts sharing an email must be shown as possible duplicates.
    let unpaired_emails = count(
        &db,
        "SELECT COUNT(*) AS n FROM contacts a JOIN contacts b \
         ON a.project_id = b.project_id AND a.email = b.email AND a.id < b.id \
         LEFT JOIN contact_duplicates d ON d.contact_id = a.id AND d.other_id = b.id \
         WHERE d.contact_id IS NULL",
    )
    .await;
    let chats = count(&db, "SELECT COUNT(*) AS n FROM chats").await;
    let contacts = count(&db, "SELECT COUNT(*) AS n FROM contacts").await;
    let known_visitors = strings(&db, "SELECT key_hash AS v FROM visitors").await;
    let lost_visitors = stats
        .started_visitors
        .iter()
        .filter(|credential| {
            !known_visitors.contains(&contacts::domain::visitors::browser_key(
                project.id, credential,
            ))
        })
        .count();
    let stored_emails = strings(
        &db,
        "SELECT email AS v FROM contacts WHERE email IS NOT NULL",
    )
    .await;
    let lost_emails = stats.emails_submitted.difference(&stored_emails).count();
    let lost_chats = i64::try_from(stats.chats_started).unwrap_or(i64::MAX) - chats;
    println!(
        "  database: {contacts} contacts for {} visitors, {chats} chats; visitors on \
         two contacts: {duplicate_visitors}; shared emails not shown as duplicates: {unpaired_emails}; lost: {lost_chats} chats, \
         {lost_visitors} visitors, {lost_emails} emails; exports: {} requested, {failed_exports} not completed",
        stats.started_visitors.len(),
        jobs.len(),
    );

    let clean = errors == 0
        && duplicate_visitors == 0
        && unpaired_emails == 0
        && lost_chats == 0
        && lost_visitors == 0
        && lost_emails == 0
        && failed_exports == 0;

    drop(db);
    app.finish().await;
    if !clean {
        println!("  FAILED: errors, duplicates, losses or unfinished exports above");
        std::process::exit(1);
    }
    println!("  OK: no errors, one contact per visitor, every shared email paired, nothing lost");
}
