//! What `contacts serve` writes, read as a log collector and as a person
//! read it: JSON mode is one JSON object per line with no password in it;
//! the pretty format has no colour codes outside a terminal.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server_process::ServerProcess;

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("contacts.db").display())
}

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("a line that is not JSON: {line:?}\nin:\n{log}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

#[tokio::test]
async fn json_logs_are_json_only_and_the_first_password_goes_to_an_owner_only_file() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = ServerProcess::spawn(&sqlite_url(data_dir.path()), data_dir.path(), &[]);
    server.wait_until_up(&client).await;

    let password_file = data_dir.path().join("first-start-login.txt");
    let written = std::fs::read_to_string(&password_file).unwrap();
    let password = written
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .expect("the file holds the password")
        .to_owned();
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the password file is readable by others: {mode:o}"
    );

    let login: Value = client
        .post(format!("http://{}/graphql", server.address))
        .json(&json!({ "query": format!(
            "mutation {{ login(email: \"owner@contacts.local\", password: \"{password}\") {{ token }} }}"
        ) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(login["data"]["login"]["token"].is_string(), "{login}");

    server.terminate();
    server.wait_for_exit(Duration::from_secs(30)).await;
    let log = server.log();
    assert!(
        !log.contains(&password),
        "the password is in the log:\n{log}"
    );
    let lines = json_lines(&log);
    let banner = lines
        .iter()
        .find(|line| line["fields"]["password_file"].is_string())
        .unwrap_or_else(|| panic!("no first-start event in:\n{log}"));
    assert_eq!(
        banner["fields"]["password_file"],
        password_file.display().to_string()
    );
}

#[tokio::test]
async fn a_start_that_fails_in_json_mode_says_so_in_json() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(
        &sqlite_url(data_dir.path()),
        data_dir.path(),
        &[("MAX_BODY_BYTES", "a lot")],
    );
    let status = server.wait_for_exit(Duration::from_secs(30)).await;
    assert!(!status.success());
    let log = server.log();
    let lines = json_lines(&log);
    assert!(
        lines.iter().any(|line| line["level"] == "ERROR"
            && line["fields"]["error"]
                .as_str()
                .is_some_and(|error| error.contains("MAX_BODY_BYTES"))),
        "{log}"
    );
}

#[tokio::test]
async fn the_pretty_log_has_no_colour_codes_in_a_file_and_shows_the_first_password_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = ServerProcess::spawn(
        &sqlite_url(data_dir.path()),
        data_dir.path(),
        &[("LOG_FORMAT", "pretty")],
    );
    server.wait_until_up(&client).await;
    server.terminate();
    server.wait_for_exit(Duration::from_secs(30)).await;
    let log = server.log();
    assert!(!log.contains('\u{1b}'), "colour codes in a file:\n{log}");
    assert_eq!(log.matches("password: ").count(), 1, "{log}");
    assert!(!data_dir.path().join("first-start-login.txt").exists());
}
