//! The edges of an export job, over the in-process S3 and SMTP servers:
//! exact cancels, clean-up after a crash, attempt numbers, mailed links
//! checked at each click, and log lines attributed to their job.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use contacts::mail::SmtpMailer;
use contacts::startup::Adapters;
use contacts::storage::{S3Settings, S3Store};
use entity::export_job;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::exports::{
    EXPORT, Outside, Scene, csv_ids, finished, job, last_hour, link_in, mail_text, request_export,
    scene, tmp_files,
};
use crate::helpers::{KillableApp, TestAgent, TestApp, error_code, spawn_app_full};
use crate::server_process::ServerProcess;
use crate::subscriptions::{MODERN, connect, next, send};

const CANCEL: &str = "mutation($id: ID!) { cancelExport(id: $id) { id status } }";

/// Adapters for the test servers; with `multipart`, every file goes up as
/// a multipart upload, however small.
fn adapters(outside: &Outside, multipart: bool) -> Adapters {
    store_and_mailer(&outside.s3.endpoint, &outside.smtp.url(), multipart)
}

fn store_and_mailer(s3_endpoint: &str, smtp_url: &str, multipart: bool) -> Adapters {
    let mut settings = S3Settings::new("exports");
    settings.endpoint = Some(s3_endpoint.to_owned());
    settings.force_path_style = true;
    settings.region = Some(crate::s3_server::REGION.to_owned());
    settings.prefix = "contacts".into();
    if multipart {
        settings.multipart_threshold = 1;
    }
    let store = S3Store::with_credentials(
        settings,
        crate::s3_server::ACCESS_KEY,
        crate::s3_server::SECRET_KEY,
    )
    .expect("S3 store");
    Adapters {
        store: Some(Arc::new(store)),
        mailer: Some(Arc::new(
            SmtpMailer::from_url(smtp_url, "Contacts <contacts@example.com>").expect("mailer"),
        )),
    }
}

fn object_key(scene: &Scene, job_id: &str) -> String {
    format!("contacts/{}/{}.csv", scene.project_id, job_id)
}

async fn cancel(app: &TestApp, agent: &TestAgent, job_id: &str) -> Value {
    app.graphql(Some(&agent.token), CANCEL, json!({"id": job_id}))
        .await
}

async fn stored_job(app: &TestApp, job_id: &str) -> export_job::Model {
    export_job::Entity::find_by_id(uuid::Uuid::parse_str(job_id).unwrap())
        .one(&app.app_services.db)
        .await
        .unwrap()
        .expect("the job row")
}

async fn notification_kinds(app: &TestApp, agent: &TestAgent) -> Vec<String> {
    let body = app
        .graphql(
            Some(&agent.token),
            "{ notifications { edges { node { kind } } } }",
            json!({}),
        )
        .await;
    body["data"]["notifications"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|edge| edge["node"]["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_cancel_while_s3_holds_the_upload_delivers_nothing() {
    let outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, adapters(&outside, false)).await;
    let scene = scene(&app, 20).await;
    outside.s3.uploads().hold();
    let job_id = request_export(&app, &scene).await;

    // The file is written and on its way: the last moment a cancel can come.
    outside.s3.uploads().wait_for_held().await;
    let answer = cancel(&app, &scene.agent, &job_id).await;
    assert_eq!(
        answer["data"]["cancelExport"]["status"], "CANCELLED",
        "{answer}"
    );
    outside.s3.uploads().release();

    let done = finished(&app, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "CANCELLED", "{done}");
    assert!(done["downloadUrl"].is_null(), "{done}");
    // The upload went through and was then removed.
    assert!(outside.s3.object(&object_key(&scene, &job_id)).is_none());
    assert!(outside.s3.unfinished_uploads().is_empty());
    assert!(stored_job(&app, &job_id).await.delivered_at.is_none());
    assert!(outside.smtp.messages().is_empty());
    assert!(
        !notification_kinds(&app, &scene.agent)
            .await
            .contains(&"EXPORT_COMPLETED".to_owned())
    );
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));
}

#[tokio::test]
async fn a_completed_export_cannot_be_cancelled_and_stays_delivered() {
    let outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, adapters(&outside, false)).await;
    let scene = scene(&app, 3).await;
    let job_id = request_export(&app, &scene).await;
    assert_eq!(
        finished(&app, &scene.agent, &job_id).await["status"],
        "COMPLETED"
    );
    let refused = cancel(&app, &scene.agent, &job_id).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already completed"),
        "{refused}"
    );
    assert_eq!(
        job(&app, &scene.agent, &job_id).await["status"],
        "COMPLETED"
    );
    assert!(outside.s3.object(&object_key(&scene, &job_id)).is_some());
}

#[tokio::test]
async fn only_the_requester_or_a_project_admin_may_cancel() {
    // No workers: the jobs stay queued while the cancels are tried.
    let app = spawn_app_full(|settings| settings.exports.workers = 0, Adapters::default()).await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let requester = app.agent("requester").await;
    let colleague = app.agent("colleague").await;
    let outsider = app.agent("outsider").await;
    app.add_member(&admin, &project_id, &requester, "AGENT")
        .await;
    app.add_member(&admin, &project_id, &colleague, "AGENT")
        .await;

    let cases: [(&TestAgent, Result<&str, &str>); 4] = [
        (&colleague, Err("FORBIDDEN")),
        (&outsider, Err("NOT_FOUND")),
        (&admin, Ok("CANCELLED")),
        (&requester, Ok("CANCELLED")),
    ];
    for (who, expected) in cases {
        let mut variables = last_hour();
        variables["p"] = json!(project_id);
        let asked = app.graphql(Some(&requester.token), EXPORT, variables).await;
        let job_id = asked["data"]["exportContacts"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{asked}"))
            .to_owned();
        let answer = cancel(&app, who, &job_id).await;
        let after = job(&app, &requester, &job_id).await;
        match expected {
            Ok(status) => {
                assert_eq!(answer["data"]["cancelExport"]["status"], status, "{answer}");
                assert_eq!(after["status"], "CANCELLED");
            }
            Err(code) => {
                assert_eq!(error_code(&answer), code, "{answer}");
                assert_eq!(after["status"], "QUEUED", "{after}");
                // Cancelled by the requester, so as not to hit the limit.
                cancel(&app, &requester, &job_id).await;
            }
        }
    }
}

fn age_file(path: &std::path::Path, age: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

async fn wait_until_gone(path: &std::path::Path, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} is still there",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_temp_folder_is_swept_of_dead_attempts_files_at_start_and_then_periodically() {
    let lease = Duration::from_secs(3);
    let planted = std::sync::Mutex::new(None);
    let app = spawn_app_full(
        |settings| {
            settings.exports.lease = lease;
            let tmp = settings.data_dir.join("tmp");
            std::fs::create_dir_all(&tmp).unwrap();
            // What a worker killed mid-export an hour ago left behind.
            let stale = tmp.join("export-dead-1.csv");
            std::fs::write(&stale, vec![b'x'; 1024 * 1024]).unwrap();
            age_file(&stale, Duration::from_secs(3600));
            // A file written a moment ago, which a live attempt may own.
            let fresh = tmp.join("export-live-1.csv");
            std::fs::write(&fresh, b"id,name\r\n").unwrap();
            *planted.lock().unwrap() = Some((stale, fresh));
        },
        Adapters::default(),
    )
    .await;
    let (stale, fresh) = planted.lock().unwrap().take().unwrap();
    wait_until_gone(&stale, Duration::from_secs(10)).await;
    assert!(fresh.exists(), "a fresh file was swept");
    // Nobody keeps it fresh: it is stale a lease later and goes with a
    // later sweep.
    wait_until_gone(&fresh, lease * 4).await;
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));
}

#[tokio::test]
async fn a_worker_taking_over_aborts_the_dead_attempts_multipart_upload() {
    let outside = Outside::start().await;
    // This instance only answers queries: it runs no export workers.
    let app = spawn_app_full(|settings| settings.exports.workers = 0, Adapters::default()).await;
    let scene = scene(&app, 20).await;
    let job_id = request_export(&app, &scene).await;

    let mut doomed_settings = app.settings.clone();
    doomed_settings.exports.workers = 1;
    doomed_settings.exports.lease = Duration::from_secs(3);
    outside.s3.uploads().hold();
    let (s3, smtp) = (outside.s3.endpoint.clone(), outside.smtp.url());
    let mut doomed =
        KillableApp::spawn(doomed_settings, move || store_and_mailer(&s3, &smtp, true));
    // The dead attempt's upload is started, recorded and in flight.
    outside.s3.uploads().wait_for_held().await;
    let dead_uploads = outside.s3.unfinished_uploads();
    assert_eq!(dead_uploads.len(), 1, "{dead_uploads:?}");
    let recorded = stored_job(&app, &job_id).await;
    assert_eq!(
        recorded.upload_id.as_deref(),
        Some(dead_uploads[0].as_str())
    );
    doomed.kill();
    outside.s3.uploads().release();

    let mut taking_over = app
        .another_instance_with(
            |settings| {
                settings.exports.workers = 1;
                settings.exports.lease = Duration::from_secs(3);
            },
            adapters(&outside, true),
        )
        .await;
    let done = finished(&taking_over, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let shown = taking_over
        .graphql(
            Some(&scene.agent.token),
            "query($id: ID!) { exportJob(id: $id) { attempt } }",
            json!({"id": job_id}),
        )
        .await;
    assert_eq!(shown["data"]["exportJob"]["attempt"], 2, "{shown}");
    assert!(
        outside.s3.unfinished_uploads().is_empty(),
        "left in the bucket: {:?}",
        outside.s3.unfinished_uploads()
    );
    assert_eq!(stored_job(&app, &job_id).await.upload_id, None);
    let object = outside
        .s3
        .object(&object_key(&scene, &job_id))
        .expect("the object of the second attempt");
    assert_eq!(csv_ids(&object), scene.inside);
    taking_over.stop().await;
}

#[tokio::test]
async fn a_retry_is_an_attempt_of_its_own_and_progress_never_goes_back_within_one() {
    let outside = Outside::start().await;
    let app = spawn_app_full(
        |settings| {
            settings.exports.chunk_size = 5;
            settings.exports.max_rows_per_second = 100;
        },
        adapters(&outside, false),
    )
    .await;
    let scene = scene(&app, 40).await;
    // The first attempt's upload fails, with the SDK's own retries.
    outside.s3.uploads().refuse(3);

    // Held until the subscriber is connected: the worker polls every 100 ms.
    let job_id = request_export(&app, &scene).await;
    let mut socket = connect(&app, MODERN).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", scene.agent.token)}})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "e", "type": "subscribe", "payload": {
            "query": "subscription($j: ID!) { exportUpdated(jobId: $j) { status attempt rowsWritten progress } }",
            "variables": {"j": job_id},
        }}),
    )
    .await;
    let mut seen = Vec::new();
    loop {
        let message = next(&mut socket).await.unwrap();
        match message["type"].as_str() {
            Some("next") => seen.push(message["payload"]["data"]["exportUpdated"].clone()),
            Some("complete") => break,
            _ => panic!("unexpected {message}"),
        }
    }
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "COMPLETED", "{seen:#?}");
    let final_attempt = last["attempt"].as_i64().unwrap();
    assert!(final_attempt >= 2, "no retry: {seen:#?}");

    let running: Vec<&Value> = seen.iter().filter(|s| s["status"] == "RUNNING").collect();
    let attempts: BTreeSet<i64> = running
        .iter()
        .map(|s| s["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(
        attempts,
        (1..=final_attempt).collect::<BTreeSet<_>>(),
        "each attempt is heard: {seen:#?}"
    );
    for pair in seen.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let (a, b) = (before["attempt"].as_i64(), after["attempt"].as_i64());
        assert!(a <= b, "attempts went back: {seen:#?}");
        if a == b && after["status"] != "QUEUED" {
            assert!(
                before["rowsWritten"].as_i64() <= after["rowsWritten"].as_i64(),
                "progress went back within attempt {a:?}: {seen:#?}"
            );
        }
    }
    // The retry starts its own count: its first state is not the rows of
    // the attempt before.
    let first_of_retry = running
        .iter()
        .find(|s| s["attempt"] == final_attempt)
        .unwrap();
    assert!(
        first_of_retry["rowsWritten"].as_i64().unwrap() < 40,
        "{seen:#?}"
    );
    assert_eq!(outside.s3.uploads().left_to_refuse(), 0);
    assert_eq!(
        csv_ids(&outside.s3.object(&object_key(&scene, &job_id)).unwrap()),
        scene.inside
    );
}

#[tokio::test]
async fn a_mailed_link_redirects_to_a_short_s3_link_until_the_requester_leaves() {
    let outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, adapters(&outside, false)).await;
    let scene = scene(&app, 4).await;
    let requester = app.agent("requester").await;
    app.add_member(&scene.agent, &scene.project_id, &requester, "AGENT")
        .await;
    let invitations = outside.smtp.messages().len();
    let mut variables = last_hour();
    variables["p"] = json!(scene.project_id);
    let asked = app.graphql(Some(&requester.token), EXPORT, variables).await;
    let job_id = asked["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        finished(&app, &requester, &job_id).await["status"],
        "COMPLETED"
    );
    let mails = outside
        .smtp
        .wait_for(invitations + 1, Duration::from_secs(10))
        .await;
    let link = link_in(&mail_text(&mails[invitations].data_text()));
    assert!(
        link.starts_with(&format!("{}/export-downloads/{job_id}?", app.address)),
        "{link}"
    );

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirects.get(&link).send().await.unwrap();
    let status = answer.status().as_u16();
    assert!(
        [302, 303].contains(&status),
        "{status}: {}",
        answer.text().await.unwrap()
    );
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&outside.s3.endpoint), "{location}");
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    let file = reqwest::get(&location).await.unwrap();
    assert_eq!(file.status(), 200);
    let bytes = file.bytes().await.unwrap();
    assert_eq!(
        bytes.as_ref(),
        outside
            .s3
            .object(&object_key(&scene, &job_id))
            .unwrap()
            .as_slice()
    );
    assert_eq!(csv_ids(&bytes), scene.inside);

    // A tampered link is refused before anything else.
    let tampered = link.replacen("signature=", "signature=00", 1);
    assert_eq!(
        no_redirects.get(&tampered).send().await.unwrap().status(),
        403
    );

    let removed = app
        .graphql(
            Some(&scene.agent.token),
            "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }",
            json!({"p": scene.project_id, "a": requester.id}),
        )
        .await;
    assert!(removed["errors"].is_null(), "{removed}");
    let refused = no_redirects.get(&link).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(body.contains("no longer a member"), "{body}");
}

#[tokio::test]
async fn without_s3_a_mailed_link_streams_the_file_until_the_requester_leaves() {
    let app = spawn_app_full(|_| {}, Adapters::default()).await;
    let scene = scene(&app, 3).await;
    let requester = app.agent("requester").await;
    app.add_member(&scene.agent, &scene.project_id, &requester, "AGENT")
        .await;
    let mut variables = last_hour();
    variables["p"] = json!(scene.project_id);
    let asked = app.graphql(Some(&requester.token), EXPORT, variables).await;
    let job_id = asked["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    finished(&app, &requester, &job_id).await;
    let mut link = None;
    for _ in 0..100 {
        link = app
            .mail_files()
            .iter()
            .map(|raw| mail_text(raw))
            .find(|text| text.contains(&format!("/export-downloads/{job_id}")))
            .map(|text| link_in(&text));
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let link = link.expect("the export mail");
    let file = app.client.get(&link).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(csv_ids(&file.bytes().await.unwrap()), scene.inside);

    app.graphql(
        Some(&scene.agent.token),
        "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }",
        json!({"p": scene.project_id, "a": requester.id}),
    )
    .await;
    let refused = app.client.get(&link).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("no longer a member"));
}

/// The job of the spans a JSON log line was written in (the job's span, or
/// a step's inside it), as the log collector sees them.
fn job_of(line: &Value) -> Option<&str> {
    export_span(line).and_then(|span| span["job"].as_str())
}

fn export_span(line: &Value) -> Option<&Value> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|span| span["name"] == "export")
}

#[tokio::test]
async fn each_log_line_of_concurrent_jobs_names_its_own_job() {
    let outside = Outside::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.path().join("contacts.db").display()
    );
    let smtp_url = outside.smtp.url();
    let mut server = ServerProcess::spawn(
        &database_url,
        data_dir.path(),
        &[
            ("EXPORT_WORKERS", "2"),
            ("EXPORT_POLL_MS", "50"),
            ("S3_BUCKET", "exports"),
            ("S3_ENDPOINT", &outside.s3.endpoint),
            ("S3_REGION", crate::s3_server::REGION),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("AWS_ACCESS_KEY_ID", crate::s3_server::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", crate::s3_server::SECRET_KEY),
            ("SMTP_URL", &smtp_url),
        ],
    );
    let client = reqwest::Client::new();
    server.wait_until_up(&client).await;
    let password = std::fs::read_to_string(data_dir.path().join("first-start-login.txt"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("password: ").map(str::to_owned))
        .unwrap();
    let graphql = |token: Option<String>, query: &str, variables: Value| {
        let mut request = client
            .post(format!("http://{}/graphql", server.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let login = graphql(
        None,
        "mutation($p: String!) { login(email: \"owner@contacts.local\", password: $p) { token } }",
        json!({"p": password}),
    )
    .await;
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let project = graphql(
        Some(token.clone()),
        "mutation { createProject(name: \"Logs\") { id } }",
        json!({}),
    )
    .await;
    let project_id = project["data"]["createProject"]["id"].as_str().unwrap();

    // Two jobs at once, one per worker.
    let mut job_ids = BTreeSet::new();
    for _ in 0..2 {
        let mut variables = last_hour();
        variables["p"] = json!(project_id);
        let asked = graphql(Some(token.clone()), EXPORT, variables).await;
        job_ids.insert(
            asked["data"]["exportContacts"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{asked}"))
                .to_owned(),
        );
    }
    outside.smtp.wait_for(2, Duration::from_secs(30)).await;
    // The mail is sent before it is recorded: wait for the record too.
    for id in &job_ids {
        for _ in 0..100 {
            let state = graphql(
                Some(token.clone()),
                "query($id: ID!) { exportJob(id: $id) { mailSentAt } }",
                json!({"id": id}),
            )
            .await;
            if state["data"]["exportJob"]["mailSentAt"].is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    server.terminate();
    server.wait_for_exit(Duration::from_secs(30)).await;

    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for message in [
        "export attempt started",
        "export uploaded",
        "export completed",
        "export link mailed",
        "mail sent",
    ] {
        let attributed: Vec<Option<&str>> = lines
            .iter()
            .filter(|line| line["fields"]["message"] == message)
            .map(job_of)
            .collect();
        let named: BTreeSet<String> = attributed
            .iter()
            .flatten()
            .map(|id| id.to_string())
            .collect();
        assert_eq!(attributed.len(), 2, "{message}: {attributed:?}\n{log}");
        assert_eq!(named, job_ids, "{message}: {attributed:?}\n{log}");
    }
    // Whatever a job's span covers names that job, its project and its attempt.
    for line in lines.iter().filter(|line| export_span(line).is_some()) {
        let span = export_span(line).unwrap();
        assert!(job_ids.contains(job_of(line).unwrap()), "{line}");
        assert_eq!(span["project"], project_id, "{line}");
        assert_eq!(span["attempt"], 1, "{line}");
    }
    // The steps are spans of their own inside the job's.
    for (message, step) in [
        ("export uploaded", "export file"),
        ("export link mailed", "export mail"),
    ] {
        for line in lines
            .iter()
            .filter(|line| line["fields"]["message"] == message)
        {
            assert!(
                line["spans"]
                    .as_array()
                    .is_some_and(|spans| spans.iter().any(|span| span["name"] == step)),
                "{message} outside {step}: {line}"
            );
        }
    }
    // The upload and the delivery say how much was exported.
    for message in ["export uploaded", "export completed"] {
        for line in lines
            .iter()
            .filter(|line| line["fields"]["message"] == message)
        {
            assert_eq!(line["fields"]["rows"], 0, "{line}");
            assert!(
                line["fields"]["bytes"]
                    .as_u64()
                    .is_some_and(|bytes| bytes > 0),
                "{line}"
            );
        }
    }
    // The signing key of the links never reaches the log.
    let key: String = {
        let db = sea_orm::Database::connect(&database_url).await.unwrap();
        entity::server_secret::Entity::find_by_id("export_link_key".to_owned())
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .secret
    };
    assert!(!log.contains(&key), "the link key is in the log");
}
