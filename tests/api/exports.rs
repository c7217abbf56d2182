use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use contacts::mail::SmtpMailer;
use contacts::startup::Adapters;
use contacts::storage::{S3Settings, S3Store};
use entity::{contact, export_job};
use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};

use crate::helpers::{
    KillableApp, TestAgent, TestApp, error_code, spawn_app, spawn_app_full, spawn_app_with,
};
use crate::s3_server::S3TestServer;
use crate::smtp_sink::SmtpSink;
use crate::subscriptions::{MODERN, Socket, connect, next, send};

pub(crate) const EXPORT: &str = "mutation($p: ID!, $from: String!, $to: String!, $tz: String) {
    exportContacts(projectId: $p, from: $from, to: $to, timeZone: $tz) { id status } }";
const JOB: &str = "query($id: ID!) { exportJob(id: $id) { id status rowsWritten rowsTotal error attempts downloadUrl mailSentAt } }";

/// Real S3 and SMTP servers on 127.0.0.1, and adapters that talk to them.
pub(crate) struct Outside {
    pub(crate) s3: S3TestServer,
    pub(crate) smtp: SmtpSink,
}

impl Outside {
    pub(crate) async fn start() -> Outside {
        Outside {
            s3: S3TestServer::start("exports").await,
            smtp: SmtpSink::start().await,
        }
    }

    pub(crate) fn adapters(&self) -> Adapters {
        adapters_for(&self.s3.endpoint, &self.smtp.url())
    }
}

pub(crate) fn adapters_for(s3_endpoint: &str, smtp_url: &str) -> Adapters {
    let mut settings = S3Settings::new("exports");
    settings.endpoint = Some(s3_endpoint.to_owned());
    settings.force_path_style = true;
    settings.region = Some(crate::s3_server::REGION.to_owned());
    settings.prefix = "contacts".into();
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

pub(crate) struct Scene {
    pub(crate) agent: TestAgent,
    pub(crate) project_id: String,
    /// Ids of the contacts inside the exported range.
    pub(crate) inside: BTreeSet<String>,
}

/// A project with `inside` contacts created within the last minute (one of
/// them with formula-like text) and three created a year ago.
pub(crate) async fn scene(app: &TestApp, inside: usize) -> Scene {
    let agent = app.agent("exporter").await;
    let project_id = app.project(&agent, "Shop").await;
    let project = uuid::Uuid::parse_str(&project_id).unwrap();
    let db = &app.app_services.db;
    let mut ids = BTreeSet::new();
    let mut rows = Vec::with_capacity(inside + 3);
    for n in 0..inside + 3 {
        let old = n >= inside;
        let created = if old {
            Utc::now() - ChronoDuration::days(365)
        } else {
            // Distinct, out-of-order creation times: the file must come out
            // sorted, with ties of the clock broken by id.
            Utc::now()
                - ChronoDuration::seconds(30)
                - ChronoDuration::microseconds((n * 7919 % 1000) as i64)
        };
        let id = uuid::Uuid::now_v7();
        rows.push(contact::ActiveModel {
            id: Set(id),
            project_id: Set(project),
            name: Set(Some(if n == 0 {
                "=HYPERLINK(\"evil\")".into()
            } else {
                format!("Contact {n}")
            })),
            email: Set(Some(format!("c{n}@example.com"))),
            phone: Set(None),
            company: Set(None),
            custom_attributes: Set(json!({"plan": "Pro", "seats": n})),
            last_ip: Set(None),
            country_code: Set(Some("ES".into())),
            country_name: Set(None),
            state_name: Set(Some("Andalusia".into())),
            state_code: Set(None),
            province_name: Set(Some("Málaga".into())),
            province_code: Set(None),
            city: Set(Some("Málaga".into())),
            postal_code: Set(None),
            time_zone: Set(None),
            latitude: Set(None),
            longitude: Set(None),
            accuracy_radius_km: Set(None),
            location_corrected: Set(false),
            external_id: Set(None),
            field_sources: Set(json!({})),
            first_seen_at: Set(created),
            last_seen_at: Set(created),
            created_at: Set(created),
            updated_at: Set(created),
        });
        if !old {
            ids.insert(id.to_string());
        }
    }
    for batch in rows.chunks(100) {
        contact::Entity::insert_many(batch.to_vec())
            .exec(db)
            .await
            .expect("contacts");
    }
    Scene {
        agent,
        project_id,
        inside: ids,
    }
}

pub(crate) fn last_hour() -> Value {
    let now = Utc::now();
    json!({"from": (now - ChronoDuration::hours(1)).to_rfc3339(), "to": (now + ChronoDuration::hours(1)).to_rfc3339()})
}

pub(crate) async fn request_export(app: &TestApp, scene: &Scene) -> String {
    let mut variables = last_hour();
    variables["p"] = json!(scene.project_id);
    let body = app
        .graphql(Some(&scene.agent.token), EXPORT, variables)
        .await;
    assert_eq!(body["data"]["exportContacts"]["status"], "QUEUED", "{body}");
    body["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn job(app: &TestApp, agent: &TestAgent, id: &str) -> Value {
    let body = app
        .graphql(Some(&agent.token), JOB, json!({"id": id}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["exportJob"].clone()
}

/// Polls until the job is in a final state.
pub(crate) async fn finished(app: &TestApp, agent: &TestAgent, id: &str) -> Value {
    for _ in 0..300 {
        let current = job(app, agent, id).await;
        if ["COMPLETED", "FAILED", "CANCELLED"].contains(&current["status"].as_str().unwrap()) {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("export {id} did not finish: {}", job(app, agent, id).await);
}

/// The ids in a downloaded CSV, checking its header and that no id repeats.
pub(crate) fn csv_ids(bytes: &[u8]) -> BTreeSet<String> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "name",
            "email",
            "phone",
            "company",
            "country",
            "state",
            "province",
            "city",
            "postal_code",
            "time_zone",
            "created_at",
            "last_seen_at",
            "plan",
            "seats"
        ]
    );
    let mut ids = BTreeSet::new();
    for row in reader.records() {
        let row = row.unwrap();
        if row[1].contains("HYPERLINK") {
            assert!(
                row[1].starts_with('\''),
                "formula not neutralised: {:?}",
                &row[1]
            );
        }
        assert_eq!(&row[7], "Málaga");
        assert!(ids.insert(row[0].to_owned()), "row {} twice", &row[0]);
    }
    ids
}

/// The mail's text body, with quoted-printable soft breaks and escapes undone.
pub(crate) fn mail_text(raw: &str) -> String {
    let body = raw.split_once("\r\n\r\n").map_or(raw, |(_, body)| body);
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

pub(crate) fn link_in(text: &str) -> String {
    text.split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_owned()
}

pub(crate) fn tmp_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(app.settings.data_dir.join("tmp"))
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

async fn subscribe_to_export(app: &TestApp, agent: &TestAgent, job_id: &str) -> Socket {
    let mut socket = connect(app, MODERN).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", agent.token)}})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "e", "type": "subscribe", "payload": {
            "query": "subscription($j: ID!) { exportUpdated(jobId: $j) { status rowsWritten rowsTotal progress downloadUrl } }",
            "variables": {"j": job_id},
        }}),
    )
    .await;
    socket
}

/// Every state the subscriber was sent, until the stream completes.
async fn states(socket: &mut Socket) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next(socket).await.unwrap();
        match message["type"].as_str() {
            Some("next") => seen.push(message["payload"]["data"]["exportUpdated"].clone()),
            Some("complete") => return seen,
            _ => panic!("unexpected {message}"),
        }
    }
}

#[tokio::test]
async fn an_export_lands_in_s3_and_its_link_arrives_by_mail_and_subscription() {
    let outside = Outside::start().await;
    let app = spawn_app_full(
        |settings| {
            settings.exports.chunk_size = 7;
            settings.exports.max_rows_per_second = 200;
        },
        outside.adapters(),
    )
    .await;
    let other_member = app.agent("colleague").await;
    let scene = scene(&app, 60).await;
    app.add_member(&scene.agent, &scene.project_id, &other_member, "AGENT")
        .await;
    // The colleague's invitation went out before the export began.
    let invitations = outside.smtp.messages().len();

    // Held until the subscriber is connected: the worker polls every 100 ms.
    let job_id = request_export(&app, &scene).await;
    let mut socket = subscribe_to_export(&app, &scene.agent, &job_id).await;
    let seen = states(&mut socket).await;
    let statuses: Vec<&str> = seen.iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"RUNNING"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"COMPLETED"));
    assert!(
        seen.iter().any(|s| s["status"] == "RUNNING"
            && s["rowsWritten"].as_i64().unwrap() > 0
            && s["rowsTotal"] == 60),
        "no progress while running: {seen:?}"
    );
    let link = seen.last().unwrap()["downloadUrl"]
        .as_str()
        .expect("a link when completed")
        .to_owned();

    // The object is in the bucket, and the pre-signed link downloads it.
    let key = format!("contacts/{}/{}.csv", scene.project_id, job_id);
    let object = outside.s3.object(&key).expect("the object in the bucket");
    let downloaded = reqwest::get(&link).await.unwrap();
    assert_eq!(downloaded.status(), 200);
    let downloaded = downloaded.bytes().await.unwrap();
    assert_eq!(downloaded.as_ref(), object.as_slice());
    assert_eq!(csv_ids(&downloaded), scene.inside);

    // One mail, to the agent who asked and to no one else, with a working link.
    let mails = outside
        .smtp
        .wait_for(invitations + 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outside.smtp.messages().len(), invitations + 1);
    let export_mail = &mails[invitations];
    assert_eq!(export_mail.recipients, vec![scene.agent.email.clone()]);
    let text = mail_text(&export_mail.data_text());
    let mailed = reqwest::get(link_in(&text))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(mailed.as_ref(), object.as_slice());

    let done = job(&app, &scene.agent, &job_id).await;
    assert_eq!(done["rowsWritten"], 60);
    assert_eq!(done["attempts"], 1);
    assert!(done["mailSentAt"].is_string(), "{done}");
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));

    // An in-app notification for the agent who asked, none for the other.
    let notifications =
        "{ notifications { edges { node { id kind readAt exportJob { id downloadUrl } } } } }";
    let mine = app
        .graphql(Some(&scene.agent.token), notifications, json!({}))
        .await;
    let node = &mine["data"]["notifications"]["edges"][0]["node"];
    assert_eq!(node["kind"], "EXPORT_COMPLETED", "{mine}");
    assert_eq!(node["exportJob"]["id"], job_id.as_str());
    assert!(
        node["exportJob"]["downloadUrl"]
            .as_str()
            .unwrap()
            .starts_with(&outside.s3.endpoint)
    );
    let theirs = app
        .graphql(Some(&other_member.token), notifications, json!({}))
        .await;
    assert_eq!(theirs["data"]["notifications"]["edges"], json!([]));
    let read = app
        .graphql(
            Some(&scene.agent.token),
            "mutation($id: ID!) { markNotificationRead(id: $id) { readAt } }",
            json!({"id": node["id"]}),
        )
        .await;
    assert!(
        read["data"]["markNotificationRead"]["readAt"].is_string(),
        "{read}"
    );
    let stolen = app
        .graphql(
            Some(&other_member.token),
            "mutation($id: ID!) { markNotificationRead(id: $id) { readAt } }",
            json!({"id": node["id"]}),
        )
        .await;
    assert_eq!(error_code(&stolen), "NOT_FOUND");

    // A tampered link is refused by the S3 server.
    let at = link.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &link[at..at + 1] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &link[..at], &link[at + 1..]);
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
}

#[tokio::test]
async fn with_s3_down_the_export_is_retried_then_fails_with_a_reason() {
    let mut outside = Outside::start().await;
    let app = spawn_app_full(
        |settings| settings.exports.max_attempts = 3,
        outside.adapters(),
    )
    .await;
    let scene = scene(&app, 5).await;
    outside.s3.stop().await;
    let job_id = request_export(&app, &scene).await;
    let done = finished(&app, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["error"], "the file store could not be reached");
    assert!(done["downloadUrl"].is_null());
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));
    assert!(outside.smtp.messages().is_empty());
    let notes = app
        .graphql(
            Some(&scene.agent.token),
            "{ notifications { edges { node { kind body } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        notes["data"]["notifications"]["edges"][0]["node"],
        json!({"kind": "EXPORT_FAILED", "body": "the file store could not be reached"})
    );
}

#[tokio::test]
async fn cancelled_exports_deliver_nothing_and_leave_no_file() {
    let outside = Outside::start().await;
    let app = spawn_app_full(
        |settings| {
            settings.exports.chunk_size = 5;
            settings.exports.max_rows_per_second = 20;
            settings.exports.lease = Duration::from_secs(3);
        },
        outside.adapters(),
    )
    .await;
    let scene = scene(&app, 40).await;
    let job_id = request_export(&app, &scene).await;
    for _ in 0..100 {
        let current = job(&app, &scene.agent, &job_id).await;
        if current["status"] == "RUNNING" && current["rowsWritten"].as_i64().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancel = app
        .graphql(
            Some(&scene.agent.token),
            "mutation($id: ID!) { cancelExport(id: $id) { id } }",
            json!({"id": job_id}),
        )
        .await;
    assert!(cancel["errors"].is_null(), "{cancel}");
    let done = finished(&app, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "CANCELLED", "{done}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(tmp_files(&app).is_empty());
    assert!(outside.smtp.messages().is_empty());
    assert!(
        outside
            .s3
            .object(&format!("contacts/{}/{}.csv", scene.project_id, job_id))
            .is_none()
    );

    // A finished export cannot be cancelled.
    let again = app
        .graphql(
            Some(&scene.agent.token),
            "mutation($id: ID!) { cancelExport(id: $id) { id } }",
            json!({"id": job_id}),
        )
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_agent_who_left_the_project_gets_no_link() {
    let outside = Outside::start().await;
    let app = spawn_app_full(
        |settings| {
            settings.exports.chunk_size = 5;
            settings.exports.max_rows_per_second = 20;
        },
        outside.adapters(),
    )
    .await;
    let scene = scene(&app, 30).await;
    let leaver = app.agent("leaver").await;
    app.add_member(&scene.agent, &scene.project_id, &leaver, "AGENT")
        .await;
    // The leaver's invitation is the only mail before the export.
    let invitations = outside.smtp.messages().len();
    let mut variables = last_hour();
    variables["p"] = json!(scene.project_id);
    let job_id =
        app.graphql(Some(&leaver.token), EXPORT, variables).await["data"]["exportContacts"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    app.graphql(
        Some(&scene.agent.token),
        "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }",
        json!({"p": scene.project_id, "a": leaver.id}),
    )
    .await;
    let done = finished(&app, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(
        done["error"],
        "the agent who asked is no longer a member of the project"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outside.smtp.messages().len(), invitations);
    assert!(
        outside
            .s3
            .object(&format!("contacts/{}/{}.csv", scene.project_id, job_id))
            .is_none()
    );
}

#[tokio::test]
async fn a_server_killed_mid_export_finishes_the_job_once_after_a_restart() {
    let outside = Outside::start().await;
    // This instance only answers queries: it runs no export workers.
    let app = spawn_app_full(|settings| settings.exports.workers = 0, Adapters::default()).await;
    let scene = scene(&app, 40).await;
    let job_id = request_export(&app, &scene).await;

    // The first server takes the job and dies while writing it.
    let mut slow = app.settings.clone();
    slow.exports.workers = 1;
    slow.exports.chunk_size = 4;
    slow.exports.max_rows_per_second = 10;
    slow.exports.lease = Duration::from_secs(3);
    let (s3, smtp) = (outside.s3.endpoint.clone(), outside.smtp.url());
    let mut doomed = KillableApp::spawn(slow.clone(), move || adapters_for(&s3, &smtp));
    assert!(doomed.address.starts_with("http://127.0.0.1:"));
    for _ in 0..100 {
        let current = job(&app, &scene.agent, &job_id).await;
        if current["status"] == "RUNNING" && current["rowsWritten"].as_i64().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    doomed.kill();
    let stuck = job(&app, &scene.agent, &job_id).await;
    assert_eq!(stuck["status"], "RUNNING", "{stuck}");

    // A new server takes it over once the dead one's lease runs out.
    let mut restarted = app
        .another_instance_with(
            |settings| {
                settings.exports.workers = 1;
                settings.exports.lease = Duration::from_secs(3);
            },
            outside.adapters(),
        )
        .await;
    let done = finished(&restarted, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["attempts"], 2);
    let key = format!("contacts/{}/{}.csv", scene.project_id, job_id);
    assert_eq!(csv_ids(&outside.s3.object(&key).unwrap()), scene.inside);
    outside.smtp.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outside.smtp.messages().len(), 1);
    restarted.stop().await;
}

#[tokio::test]
async fn two_instances_run_a_job_once_and_both_hear_of_it() {
    let outside = Outside::start().await;
    let first = spawn_app_full(|_| {}, outside.adapters()).await;
    let second = first.another_instance(outside.adapters()).await;
    let scene = scene(&first, 25).await;
    let job_id = request_export(&first, &scene).await;
    let shared_bus = first.settings.database_url.starts_with("postgres");
    let mut socket = subscribe_to_export(&second, &scene.agent, &job_id).await;
    let done = finished(&first, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["attempts"], 1);
    outside.smtp.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outside.smtp.messages().len(), 1);
    if shared_bus {
        // Events cross instances through PostgreSQL LISTEN/NOTIFY.
        let seen = states(&mut socket).await;
        assert_eq!(seen.last().unwrap()["status"], "COMPLETED", "{seen:?}");
        assert!(seen.last().unwrap()["downloadUrl"].is_string());
    } else {
        println!(
            "SQLite: instances share no event bus; cross-instance delivery is checked on PostgreSQL"
        );
    }
}

#[tokio::test]
async fn without_s3_the_server_serves_the_file_at_a_signed_link_and_mail_goes_to_files() {
    let app = spawn_app().await;
    let scene = scene(&app, 3).await;
    let job_id = request_export(&app, &scene).await;
    let done = finished(&app, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let link = done["downloadUrl"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/exports/", app.address)),
        "{link}"
    );
    let response = app.client.get(link).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(csv_ids(&response.bytes().await.unwrap()), scene.inside);
    let forged = link.replacen("signature=", "signature=00", 1);
    assert_eq!(app.client.get(&forged).send().await.unwrap().status(), 403);

    for _ in 0..50 {
        if job(&app, &scene.agent, &job_id).await["mailSentAt"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mail_dir = app.settings.data_dir.join("mail");
    let mails: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(mails.len(), 1);
    let text = mail_text(&std::fs::read_to_string(mails[0].path()).unwrap());
    assert!(
        text.contains(&scene.agent.email)
            || std::fs::read_to_string(mails[0].path())
                .unwrap()
                .contains(&scene.agent.email)
    );
    // The mailed link points at this server's checked links.
    assert!(link_in(&text).starts_with(&format!("{}/export-downloads/", app.address)));
}

/// A subscriber who comes after the end hears the final state and the end
/// of the stream at once, though no further event will ever come.
#[tokio::test]
async fn following_a_finished_export_sends_its_state_and_completes() {
    let app = spawn_app().await;
    let scene = scene(&app, 2).await;
    let job_id = request_export(&app, &scene).await;
    assert_eq!(
        finished(&app, &scene.agent, &job_id).await["status"],
        "COMPLETED"
    );
    // The mail is the job's last change; after it nothing is published.
    for _ in 0..100 {
        if job(&app, &scene.agent, &job_id).await["mailSentAt"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut socket = subscribe_to_export(&app, &scene.agent, &job_id).await;
    let seen = states(&mut socket).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["status"], "COMPLETED");
    assert!(seen[0]["downloadUrl"].is_string(), "{seen:?}");
}

/// Larger than a chunk (one query) and than the batches the reader hands
/// the writer, so that every boundary between them is crossed.
#[tokio::test]
async fn an_export_of_many_chunks_has_every_row_once_in_creation_order() {
    let app = spawn_app_with(|settings| settings.exports.chunk_size = 1_200).await;
    let scene = scene(&app, 2_650).await;
    let job_id = request_export(&app, &scene).await;
    let done = finished(&app, &scene.agent, &job_id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["rowsWritten"], 2_650);
    let link = done["downloadUrl"].as_str().unwrap();
    let bytes = app
        .client
        .get(link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(csv_ids(&bytes), scene.inside);

    // The file's times are to the second: the order is checked against
    // the stored instants.
    let mut reader = csv::Reader::from_reader(bytes.as_ref());
    let in_file: Vec<String> = reader
        .records()
        .map(|row| row.unwrap()[0].to_owned())
        .collect();
    let mut stored: Vec<(chrono::DateTime<Utc>, uuid::Uuid)> = contact::Entity::find()
        .all(&app.app_services.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|contact| scene.inside.contains(&contact.id.to_string()))
        .map(|contact| (contact.created_at, contact.id))
        .collect();
    stored.sort();
    let expected: Vec<String> = stored.iter().map(|(_, id)| id.to_string()).collect();
    assert_eq!(in_file, expected, "rows out of (created_at, id) order");
}

#[tokio::test]
async fn export_requests_are_validated_and_scoped_to_members() {
    let app = spawn_app().await;
    let scene = scene(&app, 1).await;
    let outsider = app.agent("outsider").await;
    let cases = [
        (json!({"from": "2026-02-01", "to": "2026-01-01"}), "to"),
        (json!({"from": "last week", "to": "2026-01-01"}), "from"),
        (
            json!({"from": "2026-01-01", "to": "2026-01-31", "tz": "Nowhere/City"}),
            "timeZone",
        ),
    ];
    for (mut variables, field) in cases {
        variables["p"] = json!(scene.project_id);
        let body = app
            .graphql(Some(&scene.agent.token), EXPORT, variables.clone())
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    assert_eq!(
        export_job::Entity::find()
            .all(&app.app_services.db)
            .await
            .unwrap()
            .len(),
        0
    );

    let mut variables = last_hour();
    variables["p"] = json!(scene.project_id);
    let foreign = app.graphql(Some(&outsider.token), EXPORT, variables).await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    let job_id = request_export(&app, &scene).await;
    let peek = app
        .graphql(Some(&outsider.token), JOB, json!({"id": job_id}))
        .await;
    let missing = app
        .graphql(
            Some(&outsider.token),
            JOB,
            json!({"id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(error_code(&peek), "NOT_FOUND");
    assert_eq!(
        peek["errors"][0]["message"],
        missing["errors"][0]["message"]
    );

    let listed = app
        .graphql(Some(&scene.agent.token), "query($p: ID!) { exports(projectId: $p, first: 10) { edges { node { id requestedBy { email } from to } } pageInfo { hasNextPage } } }", json!({"p": scene.project_id}))
        .await;
    assert_eq!(
        listed["data"]["exports"]["edges"][0]["node"]["id"],
        job_id.as_str(),
        "{listed}"
    );
    assert_eq!(
        listed["data"]["exports"]["edges"][0]["node"]["requestedBy"]["email"],
        scene.agent.email.as_str()
    );
}

#[tokio::test]
async fn one_agent_may_have_only_a_few_exports_waiting_at_once() {
    // No workers: every export stays queued.
    let app = crate::helpers::spawn_app_with(|settings| settings.exports.workers = 0).await;
    let ana = app.agent("ana").await;
    let project = app.project(&ana, "Shop").await;
    let aliases: String = (0..8)
        .map(|i| format!("e{i}: exportContacts(projectId: $p, from: \"2026-01-01\", to: \"2026-01-31\") {{ id }} "))
        .collect();
    let body = app
        .graphql(
            Some(&ana.token),
            &format!("mutation($p: ID!) {{ {aliases} }}"),
            json!({"p": project}),
        )
        .await;
    let limit = contacts::domain::exports::MAX_ACTIVE_EXPORTS_PER_AGENT as usize;
    // The refused fields are non-null, so `data` is null (GraphQL 6.4.4);
    // the first exports were queued all the same.
    let queued: Vec<String> = export_job::Entity::find()
        .all(&app.app_services.db)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.id.to_string())
        .collect();
    assert_eq!(queued.len(), limit, "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 8 - limit, "{body}");
    assert!(
        errors
            .iter()
            .all(|error| error["extensions"]["code"] == "RATE_LIMITED"),
        "{body}"
    );
    // A cancelled export makes room for another.
    let cancel = app
        .graphql(
            Some(&ana.token),
            "mutation($id: ID!) { cancelExport(id: $id) { status } }",
            json!({"id": queued[0]}),
        )
        .await;
    assert_eq!(
        cancel["data"]["cancelExport"]["status"], "CANCELLED",
        "{cancel}"
    );
    let again = app
        .graphql(
            Some(&ana.token),
            "mutation($p: ID!) { exportContacts(projectId: $p, from: \"2026-01-01\", to: \"2026-01-31\") { id } }",
            json!({"p": project}),
        )
        .await;
    assert!(again["errors"].is_null(), "{again}");
}
