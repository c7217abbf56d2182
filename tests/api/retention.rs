//! Retention against the real server: rows and files aged by setting their
//! times back are deleted by the periodic retention run, fresh ones stay;
//! an expired export's job says so and its link answers 410 Gone; with S3,
//! the object leaves the bucket.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Duration as Age, Utc};
use entity::{
    access_token, export_job, invitation, membership::Role, notification, password_reset,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::exports::Outside;
use crate::helpers::{TestAgent, TestApp, spawn_app_full, spawn_app_with};

macro_rules! insert {
    ($app:expr, $row:expr) => {{
        let row = $row;
        let id = row.id.clone().unwrap();
        row.insert(&$app.app_services.db).await.unwrap();
        id
    }};
}

const EXPORT: &str = "mutation($p: ID!) {
    exportContacts(projectId: $p, from: \"2020-01-01\", to: \"2030-01-01\") { id } }";
const JOB: &str = "query($id: ID!) { exportJob(id: $id) { status downloadUrl fileExpiredAt } }";

/// Runs a retention pass every 200 ms, on the default periods.
fn frequent_retention(settings: &mut contacts::config::Settings) {
    settings.retention.interval = Some(Duration::from_millis(200));
}

fn ago(days: i64) -> DateTime<Utc> {
    Utc::now() - Age::days(days)
}

fn id(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

/// Waits until `done` holds, for a few retention runs at most.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn job(app: &TestApp, agent: &TestAgent, job_id: &str) -> Value {
    let body = app
        .graphql(Some(&agent.token), JOB, json!({"id": job_id}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["exportJob"].clone()
}

/// Asks for an export and waits until it completed; gives its id.
async fn completed_export(app: &TestApp, agent: &TestAgent, project_id: &str) -> String {
    let body = app
        .graphql(Some(&agent.token), EXPORT, json!({"p": project_id}))
        .await;
    let job_id = body["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = job(app, agent, &job_id).await;
        if state["status"] == "COMPLETED" {
            return job_id;
        }
        assert!(Instant::now() < deadline, "export never completed: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sets the export's end `days` back, as if it had finished then.
async fn finished_days_ago(app: &TestApp, job_id: &str, days: i64) {
    export_job::Entity::update_many()
        .col_expr(export_job::Column::FinishedAt, Expr::value(ago(days)))
        .filter(export_job::Column::Id.eq(id(job_id)))
        .exec(&app.app_services.db)
        .await
        .unwrap();
}

async fn object_key(app: &TestApp, job_id: &str) -> String {
    export_job::Entity::find_by_id(id(job_id))
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap()
        .object_key
        .unwrap()
}

fn set_mtime(path: &std::path::Path, days: u64) {
    let then = SystemTime::now() - Duration::from_secs(days * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

async fn exists<E: EntityTrait>(app: &TestApp, id: Uuid) -> bool
where
    Uuid: Into<<E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType>,
{
    E::find_by_id(id)
        .one(&app.app_services.db)
        .await
        .unwrap()
        .is_some()
}

fn token_row(
    agent: Uuid,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
) -> access_token::ActiveModel {
    access_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        agent_id: Set(agent),
        token_hash: Set(Uuid::now_v7().simple().to_string()),
        created_at: Set(ago(60)),
        expires_at: Set(expires_at),
        revoked_at: Set(revoked_at),
        last_used_at: Set(None),
        user_agent: Set(None),
        ip: Set(None),
    }
}

fn reset_row(
    agent: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
) -> password_reset::ActiveModel {
    password_reset::ActiveModel {
        id: Set(Uuid::now_v7()),
        agent_id: Set(agent),
        token_hash: Set(Uuid::now_v7().simple().to_string()),
        created_at: Set(ago(60)),
        expires_at: Set(expires_at),
        used_at: Set(used_at),
    }
}

fn invitation_row(
    project: Uuid,
    state: invitation::InvitationState,
    expires_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
) -> invitation::ActiveModel {
    let n = Uuid::now_v7().simple().to_string();
    invitation::ActiveModel {
        id: Set(Uuid::now_v7()),
        project_id: Set(project),
        email: Set(format!("invitee-{n}@example.com")),
        role: Set(Role::Agent),
        state: Set(state),
        token_hash: Set(n),
        invited_by: Set(None),
        created_at: Set(ago(60)),
        expires_at: Set(expires_at),
        closed_at: Set(closed_at),
    }
}

fn notification_row(
    agent: Uuid,
    project: Uuid,
    created_at: DateTime<Utc>,
) -> notification::ActiveModel {
    notification::ActiveModel {
        id: Set(Uuid::now_v7()),
        agent_id: Set(agent),
        project_id: Set(project),
        kind: Set("EXPORT_COMPLETED".into()),
        title: Set("Export ready".into()),
        body: Set("Your export is ready.".into()),
        export_job_id: Set(None),
        read_at: Set(None),
        created_at: Set(created_at),
    }
}

#[tokio::test]
async fn a_retention_run_deletes_aged_rows_and_files_and_keeps_fresh_ones() {
    let app = spawn_app_with(frequent_retention).await;
    let ana = app.agent("ana").await;
    let project_id = app.project(&ana, "Shop").await;
    let (agent, project) = (id(&ana.id), id(&project_id));

    // Tokens: expired or revoked long ago go; one expired an hour ago is
    // kept for the grace period, and the live one works throughout.
    let old_expired_token = insert!(app, token_row(agent, ago(30), None));
    let old_revoked_token = insert!(app, token_row(agent, ago(-20), Some(ago(10))));
    let recently_expired_token = insert!(app, token_row(agent, Utc::now() - Age::hours(1), None));
    let old_reset = insert!(app, reset_row(agent, ago(30), None));
    let old_used_reset = insert!(
        app,
        reset_row(agent, Utc::now() + Age::hours(1), Some(ago(8)))
    );
    let fresh_reset = insert!(app, reset_row(agent, Utc::now() + Age::hours(1), None));
    use invitation::InvitationState::{Accepted, Pending, Revoked};
    let old_accepted = insert!(
        app,
        invitation_row(project, Accepted, ago(-1), Some(ago(10)))
    );
    let old_revoked = insert!(
        app,
        invitation_row(project, Revoked, ago(-1), Some(ago(10)))
    );
    let old_expired = insert!(app, invitation_row(project, Pending, ago(8), None));
    let pending = insert!(app, invitation_row(project, Pending, ago(-7), None));
    let just_accepted = insert!(
        app,
        invitation_row(project, Accepted, ago(-7), Some(ago(1)))
    );
    let old_notification = insert!(app, notification_row(agent, project, ago(91)));
    let fresh_notification = insert!(app, notification_row(agent, project, ago(89)));

    // Exports in the local store: one finished long ago, one just now.
    let old_job = completed_export(&app, &ana, &project_id).await;
    let old_link = job(&app, &ana, &old_job).await["downloadUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.client.get(&old_link).send().await.unwrap().status(),
        200
    );
    let fresh_job = completed_export(&app, &ana, &project_id).await;
    let exports_dir = app.settings.data_dir.join("exports");
    let old_file = exports_dir.join(object_key(&app, &old_job).await);
    let fresh_file = exports_dir.join(object_key(&app, &fresh_job).await);
    assert!(old_file.is_file() && fresh_file.is_file());
    finished_days_ago(&app, &old_job, 8).await;

    // Mail files: the export mails are fresh; an old one and a file that
    // is no mail are set back 31 days.
    let mail_dir = app.settings.data_dir.join("mail");
    eventually("the export mails are written", || async {
        app.mail_files().len() >= 2
    })
    .await;
    let fresh_mails = app.mail_files().len();
    let old_mail = mail_dir.join("0000-old.eml");
    let not_mail = mail_dir.join("notes.txt");
    for path in [&old_mail, &not_mail] {
        std::fs::write(path, "x").unwrap();
        set_mtime(path, 31);
    }

    eventually("aged rows and files are deleted", || async {
        !exists::<access_token::Entity>(&app, old_expired_token).await
            && !exists::<access_token::Entity>(&app, old_revoked_token).await
            && !exists::<password_reset::Entity>(&app, old_reset).await
            && !exists::<password_reset::Entity>(&app, old_used_reset).await
            && !exists::<invitation::Entity>(&app, old_accepted).await
            && !exists::<invitation::Entity>(&app, old_revoked).await
            && !exists::<invitation::Entity>(&app, old_expired).await
            && !exists::<notification::Entity>(&app, old_notification).await
            && !old_file.exists()
            && job(&app, &ana, &old_job).await["fileExpiredAt"].is_string()
            && !old_mail.exists()
    })
    .await;

    assert!(exists::<access_token::Entity>(&app, recently_expired_token).await);
    assert!(exists::<password_reset::Entity>(&app, fresh_reset).await);
    assert!(exists::<invitation::Entity>(&app, pending).await);
    assert!(exists::<invitation::Entity>(&app, just_accepted).await);
    assert!(exists::<notification::Entity>(&app, fresh_notification).await);
    assert!(fresh_file.is_file());
    assert!(not_mail.exists());
    assert_eq!(app.mail_files().len(), fresh_mails);
    // The live token still works: nothing of it was touched.
    let me = app
        .graphql(Some(&ana.token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["id"], ana.id, "{me}");

    // The expired export says so, offers no link, and its old link is gone.
    let expired = job(&app, &ana, &old_job).await;
    assert!(expired["downloadUrl"].is_null(), "{expired}");
    let response = app.client.get(&old_link).send().await.unwrap();
    assert_eq!(response.status(), 410);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("expired") && text.contains("new export"),
        "{text}"
    );
    let fresh = job(&app, &ana, &fresh_job).await;
    assert!(fresh["fileExpiredAt"].is_null(), "{fresh}");
    let fresh_link = fresh["downloadUrl"].as_str().unwrap();
    assert_eq!(
        app.client.get(fresh_link).send().await.unwrap().status(),
        200
    );
    let left = export_job::Entity::find()
        .filter(export_job::Column::FileExpiredAt.is_not_null())
        .count(&app.app_services.db)
        .await
        .unwrap();
    assert_eq!(left, 1);
}

#[tokio::test]
async fn expired_export_files_leave_the_s3_bucket() {
    let outside = Outside::start().await;
    let app = spawn_app_full(frequent_retention, outside.adapters()).await;
    let ana = app.agent("ana").await;
    let project_id = app.project(&ana, "Shop").await;
    let old_job = completed_export(&app, &ana, &project_id).await;
    let fresh_job = completed_export(&app, &ana, &project_id).await;
    // The adapters store under the prefix `contacts/`.
    let old_object = format!("contacts/{}", object_key(&app, &old_job).await);
    let fresh_object = format!("contacts/{}", object_key(&app, &fresh_job).await);
    assert!(outside.s3.object(&old_object).is_some());
    assert!(outside.s3.object(&fresh_object).is_some());

    finished_days_ago(&app, &old_job, 8).await;
    eventually("the old export's object is deleted", || async {
        job(&app, &ana, &old_job).await["fileExpiredAt"].is_string()
    })
    .await;
    assert!(outside.s3.object(&old_object).is_none());
    assert!(job(&app, &ana, &old_job).await["downloadUrl"].is_null());
    assert!(outside.s3.object(&fresh_object).is_some());
    let fresh = job(&app, &ana, &fresh_job).await;
    assert!(
        fresh["fileExpiredAt"].is_null() && fresh["downloadUrl"].is_string(),
        "{fresh}"
    );
}

#[tokio::test]
async fn zero_keeps_things_for_ever() {
    let app = spawn_app_with(|settings| {
        frequent_retention(settings);
        settings.retention.notifications = None;
    })
    .await;
    let ana = app.agent("ana").await;
    let project_id = app.project(&ana, "Shop").await;
    let (agent, project) = (id(&ana.id), id(&project_id));
    let ancient_notification = insert!(app, notification_row(agent, project, ago(3650)));
    let old_token = insert!(app, token_row(agent, ago(30), None));
    // The token's deletion shows a pass ran; the notification stays.
    eventually("a retention run", || async {
        !exists::<access_token::Entity>(&app, old_token).await
    })
    .await;
    assert!(exists::<notification::Entity>(&app, ancient_notification).await);
}

/// On PostgreSQL a pass runs under an advisory lock: while something else
/// holds it, no instance deletes anything; once it is free, one does.
#[tokio::test]
async fn instances_wait_for_the_retention_lock_on_postgres() {
    use contacts::retention::schedule::RETENTION_LOCK_KEY;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app_with(frequent_retention).await;
    if app.app_services.db.get_database_backend() != DbBackend::Postgres {
        println!("SQLite: one file is one server's; the retention lock is checked on PostgreSQL");
        return;
    }
    let second = app.another_instance(Default::default()).await;
    let ana = app.agent("ana").await;
    // A connection of its own holds the lock, as a running pass would.
    let holder = Database::connect(app.settings.database_url.as_str())
        .await
        .unwrap();
    holder
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_advisory_lock({RETENTION_LOCK_KEY})"),
        ))
        .await
        .unwrap();
    let old_token = insert!(app, token_row(id(&ana.id), ago(30), None));
    // Several passes of both instances would have run in this time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(exists::<access_token::Entity>(&app, old_token).await);

    holder
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_advisory_unlock({RETENTION_LOCK_KEY})"),
        ))
        .await
        .unwrap();
    eventually("a pass once the lock is free", || async {
        !exists::<access_token::Entity>(&app, old_token).await
    })
    .await;
    holder.close().await.unwrap();
    drop(second);
}
