//! Nested fields of lists load in batches: a page of exports, of
//! notifications or of projects costs the same number of statements
//! whatever its size, and download links are signed without calling the
//! store.

use std::sync::Arc;

use chrono::Utc;
use contacts::startup::Adapters;
use contacts::storage::{S3Settings, S3Store};
use entity::{export_job, notification};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestAgent, TestApp, spawn_app_full};
use crate::statements::StatementCounter;

/// An S3 store whose endpoint nothing listens on: any request to it fails,
/// so a page that answers made none.
fn unreachable_store() -> Adapters {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    drop(listener);
    let mut settings = S3Settings::new("exports");
    settings.endpoint = Some(endpoint);
    settings.force_path_style = true;
    settings.region = Some(crate::s3_server::REGION.to_owned());
    let store = S3Store::with_credentials(
        settings,
        crate::s3_server::ACCESS_KEY,
        crate::s3_server::SECRET_KEY,
    )
    .expect("S3 store");
    Adapters {
        store: Some(Arc::new(store)),
        mailer: None,
    }
}

/// A completed export of `project_id` asked for by `requested_by`, and the
/// notification `notified` got about it.
async fn completed_export(app: &TestApp, project_id: &str, requested_by: &str, notified: &str) {
    let db = &app.app_services.db;
    let now = Utc::now();
    let job_id = Uuid::now_v7();
    let project_id = Uuid::parse_str(project_id).expect("a project id");
    export_job::ActiveModel {
        id: Set(job_id),
        project_id: Set(project_id),
        requested_by: Set(Uuid::parse_str(requested_by).expect("an agent id")),
        range_from: Set(now - chrono::Duration::days(1)),
        range_to: Set(now),
        status: Set(export_job::ExportStatus::Completed),
        attempts: Set(1),
        max_attempts: Set(5),
        run_after: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        rows_written: Set(3),
        rows_total: Set(Some(3)),
        object_key: Set(Some(format!("exports/{job_id}.csv"))),
        file_bytes: Set(Some(100)),
        error: Set(None),
        cancel_requested: Set(false),
        delivered_at: Set(Some(now)),
        mail_sent_at: Set(None),
        mail_attempts: Set(0),
        mail_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(Some(now)),
        finished_at: Set(Some(now)),
        format: Set("CSV".into()),
        filter: Set(None),
        columns: Set(None),
        time_zone: Set(None),
        upload_id: Set(None),
        file_expired_at: Set(None),
    }
    .insert(db)
    .await
    .expect("export inserted");
    notification::ActiveModel {
        id: Set(Uuid::now_v7()),
        agent_id: Set(Uuid::parse_str(notified).expect("an agent id")),
        project_id: Set(project_id),
        kind: Set("EXPORT_COMPLETED".into()),
        title: Set("Your export is ready".into()),
        body: Set("3 contacts".into()),
        export_job_id: Set(Some(job_id)),
        read_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("notification inserted");
}

/// The fewest statements of three runs: a stalled machine may split a
/// batch in two, never make one per row.
async fn statements_of(
    counter: &StatementCounter,
    app: &TestApp,
    agent: &TestAgent,
    query: &str,
    variables: serde_json::Value,
    check: impl Fn(&serde_json::Value),
) -> usize {
    let mut fewest = usize::MAX;
    for _ in 0..3 {
        let (body, count) = counter
            .run(app, &agent.token, query, variables.clone())
            .await;
        assert!(body["errors"].is_null(), "{body}");
        check(&body["data"]);
        fewest = fewest.min(count);
    }
    fewest
}

#[tokio::test]
async fn exports_and_notifications_load_their_jobs_and_agents_in_batches() {
    let counter = StatementCounter::installed();
    // Counted with the token and membership read on every request.
    let app = spawn_app_full(
        |settings| {
            settings.exports.workers = 0;
            settings.access_cache = std::time::Duration::ZERO;
        },
        unreachable_store(),
    )
    .await;
    let ana = app.agent("ana").await;
    let project_id = app.project(&ana, "Shop").await;
    for i in 0..20 {
        let member = app.agent(&format!("member{i}")).await;
        app.add_member(&ana, &project_id, &member, "AGENT").await;
        completed_export(&app, &project_id, &member.id, &ana.id).await;
    }

    let exports = "query($p: ID!, $n: Int) { exports(projectId: $p, first: $n) {
        edges { node { id requestedBy { email } downloadUrl } } } }";
    let notifications = "query($n: Int) { notifications(first: $n) {
        edges { node { id exportJob { id downloadUrl requestedBy { email } } } } } }";
    let mut export_costs = Vec::new();
    let mut notification_costs = Vec::new();
    for n in [1, 5, 20] {
        let page = |data: &serde_json::Value, list: &str| {
            let edges = data[list]["edges"].as_array().expect("edges").clone();
            assert_eq!(edges.len(), n, "{data}");
            edges
        };
        export_costs.push(
            statements_of(
                &counter,
                &app,
                &ana,
                exports,
                json!({"p": project_id, "n": n}),
                |data| {
                    for edge in page(data, "exports") {
                        assert!(edge["node"]["requestedBy"]["email"].is_string(), "{edge}");
                        assert!(edge["node"]["downloadUrl"].is_string(), "{edge}");
                    }
                },
            )
            .await,
        );
        notification_costs.push(
            statements_of(
                &counter,
                &app,
                &ana,
                notifications,
                json!({"n": n}),
                |data| {
                    for edge in page(data, "notifications") {
                        let job = &edge["node"]["exportJob"];
                        assert!(job["downloadUrl"].is_string(), "{edge}");
                        assert!(job["requestedBy"]["email"].is_string(), "{edge}");
                    }
                },
            )
            .await,
        );
    }
    eprintln!("statements: exports {export_costs:?}, notifications {notification_costs:?}");
    // The token with its agent, the membership check, the page, then one
    // batch for the agents who asked.
    assert_eq!(export_costs, vec![4, 4, 4], "exports pages of 1, 5, 20");
    // The token, the page, then one batch each for the jobs, the caller's
    // memberships of their projects and the agents who asked.
    assert_eq!(
        notification_costs,
        vec![5, 5, 5],
        "notification pages of 1, 5, 20"
    );
}

#[tokio::test]
async fn projects_load_their_members_and_origins_in_batches() {
    let counter = StatementCounter::installed();
    let app = spawn_app_full(
        |settings| settings.access_cache = std::time::Duration::ZERO,
        Adapters::default(),
    )
    .await;
    let ana = app.agent("ana").await;
    let query = "{ me { projects { id members { role agent { id } } allowedOrigins } } }";
    let mut costs = Vec::new();
    for projects in [1, 5, 15] {
        while costs.len() < projects {
            let project_id = app.project(&ana, &format!("Shop {}", costs.len())).await;
            for i in 0..3 {
                let member = app.agent(&format!("member{i}")).await;
                app.add_member(&ana, &project_id, &member, "AGENT").await;
            }
            let body = app
                .graphql(
                    Some(&ana.token),
                    "mutation($p: ID!) { setAllowedOrigins(projectId: $p, origins: [\"https://a.example\", \"https://b.example\"]) { id } }",
                    json!({"p": project_id}),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
            costs.push(0);
        }
        let fewest = statements_of(&counter, &app, &ana, query, json!({}), |data| {
            let listed = data["me"]["projects"].as_array().expect("projects");
            assert_eq!(listed.len(), projects, "{data}");
            for project in listed {
                assert_eq!(project["members"].as_array().map(Vec::len), Some(4));
                assert_eq!(project["allowedOrigins"].as_array().map(Vec::len), Some(2));
            }
        })
        .await;
        costs[projects - 1] = fewest;
    }
    let measured = [costs[0], costs[4], costs[14]];
    eprintln!("statements for 1, 5, 15 projects: {measured:?}");
    // The token, the caller's memberships and their projects, then one
    // batch each for the members (memberships, agents) and the origins.
    assert_eq!(measured, [6, 6, 6], "statements for 1, 5, 15 projects");
}
