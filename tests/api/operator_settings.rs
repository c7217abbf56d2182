//! Settings an operator meets first, on the real binary: no first-start
//! owner with `BOOTSTRAP_OWNER=false`; a loud warning and loopback links
//! when the server listens on an unspecified address without `PUBLIC_URL`;
//! the command-line export's links built like the server's.

use std::time::{Duration, Instant};

use sea_orm::Database;
use serde_json::{Value, json};

use crate::exports::{link_in, mail_text};
use crate::helpers::unstarted_app;
use crate::server_process::ServerProcess;

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn warnings(log: &str) -> Vec<String> {
    json_lines(log)
        .into_iter()
        .filter(|line| line["level"] == "WARN")
        .filter_map(|line| line["fields"]["message"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn bootstrap_owner_false_creates_no_owner() {
    let unstarted = unstarted_app().await;
    let settings = &unstarted.settings;
    let client = reqwest::Client::new();
    let mut server = ServerProcess::spawn(
        &settings.database_url,
        &settings.data_dir,
        &[("BOOTSTRAP_OWNER", "false")],
    );
    server.wait_until_up(&client).await;
    server.terminate();
    server.wait_for_exit(Duration::from_secs(30)).await;

    let db = Database::connect(&settings.database_url).await.unwrap();
    assert_eq!(contacts::domain::agents::count(&db).await.unwrap(), 0);
    db.close().await.unwrap();
    assert!(!settings.data_dir.join("first-start-login.txt").exists());
    let log = server.log();
    assert!(
        warnings(&log)
            .iter()
            .any(|message| message.contains("BOOTSTRAP_OWNER is off")),
        "{log}"
    );
}

async fn graphql(
    client: &reqwest::Client,
    address: &str,
    token: Option<&str>,
    query: &str,
) -> Value {
    let mut request = client
        .post(format!("http://{address}/graphql"))
        .json(&json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn an_unspecified_listen_address_is_warned_about_and_mailed_links_use_loopback() {
    let unstarted = unstarted_app().await;
    let settings = &unstarted.settings;
    let client = reqwest::Client::new();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let listen = format!("0.0.0.0:{port}");
    let mut server = ServerProcess::spawn(
        &settings.database_url,
        &settings.data_dir,
        &[("LISTEN_ADDR", &listen)],
    );
    // Reached on loopback, which the unspecified address includes.
    server.address = format!("127.0.0.1:{port}");
    server.wait_until_up(&client).await;
    let log = server.log();
    assert!(
        warnings(&log)
            .iter()
            .any(|message| message.contains("PUBLIC_URL is not set")
                && message.contains("0.0.0.0")
                && message.contains(&format!("http://127.0.0.1:{port}"))),
        "no warning about the links in:\n{log}"
    );

    // The owner mails itself an export; the link in the mail is usable here.
    let written = std::fs::read_to_string(settings.data_dir.join("first-start-login.txt")).unwrap();
    let password = written
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .unwrap();
    let address = server.address.clone();
    let login = graphql(
        &client,
        &address,
        None,
        &format!("mutation {{ login(email: \"owner@contacts.local\", password: \"{password}\") {{ token }} }}"),
    )
    .await;
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let me = graphql(
        &client,
        &address,
        Some(&token),
        "{ me { projects { id } } }",
    )
    .await;
    let project = me["data"]["me"]["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let export = graphql(
        &client,
        &address,
        Some(&token),
        &format!("mutation {{ exportContacts(projectId: \"{project}\", from: \"2020-01-01\", to: \"2030-01-01\") {{ id }} }}"),
    )
    .await;
    assert!(export["errors"].is_null(), "{export}");
    let mail_dir = settings.data_dir.join("mail");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mail = loop {
        let mails: Vec<_> = std::fs::read_dir(&mail_dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(path) = mails.first() {
            break std::fs::read_to_string(path).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no export mail: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let link = link_in(&mail_text(&mail));
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{port}/export-downloads/")),
        "{link}"
    );
    assert_eq!(client.get(&link).send().await.unwrap().status(), 200);
    assert!(!mail.contains("0.0.0.0"), "{mail}");
}

/// Runs the binary with `args` on the test's database, as an operator does.
fn command(
    database_url: &str,
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_command_line_export_builds_links_like_the_server() {
    let unstarted = unstarted_app().await;
    let (url, dir) = (
        &unstarted.settings.database_url,
        &unstarted.settings.data_dir,
    );
    command(
        url,
        dir,
        &[],
        &[
            "create-agent",
            "--email",
            "ana@example.com",
            "--name",
            "Ana",
            "--password",
            "a long enough password",
        ],
    );
    let created = command(
        url,
        dir,
        &[],
        &[
            "create-project",
            "--name",
            "Shop",
            "--owner",
            "ana@example.com",
        ],
    );
    let project = created
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let export = [
        "export",
        "--project",
        &project,
        "--agent",
        "ana@example.com",
        "--from",
        "2020-01-01",
        "--to",
        "2030-01-01",
    ];
    let link_of = |stdout: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("link: "))
            .unwrap_or_else(|| panic!("no link in {stdout}"))
            .to_owned()
    };

    let public = command(
        url,
        dir,
        &[("PUBLIC_URL", "https://contacts.example.test/")],
        &export,
    );
    assert!(
        link_of(&public).starts_with("https://contacts.example.test/exports/"),
        "{public}"
    );
    let listening = command(url, dir, &[("LISTEN_ADDR", "127.0.0.2:9123")], &export);
    assert!(
        link_of(&listening).starts_with("http://127.0.0.2:9123/exports/"),
        "{listening}"
    );
    let unspecified = command(url, dir, &[("LISTEN_ADDR", "0.0.0.0:9124")], &export);
    assert!(
        link_of(&unspecified).starts_with("http://127.0.0.1:9124/exports/"),
        "{unspecified}"
    );
}
