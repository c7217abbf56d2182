//! The cache of tokens and memberships stays exact: a change made on this
//! instance holds from the next request, one made on another instance
//! within the two seconds sessions allow, and a bus that reconnected drops
//! everything cached, however long entries would otherwise live.

use std::time::{Duration, Instant};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use contacts::startup::Adapters;

use crate::helpers::{TestAgent, TestApp, error_code, spawn_app_with};
use crate::statements::StatementCounter;

const PAGE: &str = "query($p: ID!) { contacts(projectId: $p, first: 1) { edges { cursor } } }";
const ME: &str = "{ me { id } }";

/// Long enough that only an event can explain an entry dropped in a test.
const LONG: Duration = Duration::from_secs(600);

fn is_postgres(app: &TestApp) -> bool {
    app.settings.database_url.starts_with("postgres")
}

async fn page(app: &TestApp, agent: &TestAgent, project_id: &str) -> Value {
    app.graphql(Some(&agent.token), PAGE, json!({"p": project_id}))
        .await
}

fn answered(body: &Value) -> bool {
    body.get("errors").is_none()
}

/// Asks until the answer is an error with `code`; how long that took.
async fn refused_within(
    bound: Duration,
    mut ask: impl AsyncFnMut() -> Value,
    code: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        let body = ask().await;
        if !answered(&body) {
            assert_eq!(error_code(&body), code, "{body}");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "still answered after {bound:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn remove(app: &TestApp, admin: &TestAgent, project_id: &str, member: &TestAgent) {
    let removed = app
        .graphql(
            Some(&admin.token),
            "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }",
            json!({"p": project_id, "a": member.id}),
        )
        .await;
    assert_eq!(
        removed["data"]["removeMember"]["kind"], "REMOVED",
        "{removed}"
    );
}

#[tokio::test]
async fn on_one_instance_a_logout_and_a_removal_hold_from_the_next_request() {
    let app = spawn_app_with(|settings| settings.access_cache = LONG).await;
    let admin = app.agent("admin").await;
    let member = app.agent("member").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &member, "AGENT").await;
    assert!(answered(&page(&app, &member, &project_id).await));
    assert!(answered(
        &app.graphql(Some(&member.token), ME, json!({})).await
    ));

    remove(&app, &admin, &project_id, &member).await;
    assert_eq!(
        error_code(&page(&app, &member, &project_id).await),
        "NOT_FOUND"
    );

    let out = app
        .graphql(Some(&member.token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    let me = app.graphql(Some(&member.token), ME, json!({})).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_role_change_holds_from_the_next_request() {
    let app = spawn_app_with(|settings| settings.access_cache = LONG).await;
    let admin = app.agent("admin").await;
    let other = app.agent("other").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &other, "ADMIN").await;
    let keys = "query($p: ID!) { project(id: $p) { secretKey } }";
    let read = app
        .graphql(Some(&other.token), keys, json!({"p": project_id}))
        .await;
    assert!(read["data"]["project"]["secretKey"].is_string(), "{read}");

    let demoted = app
        .graphql(
            Some(&admin.token),
            "mutation($p: ID!, $a: ID!) { changeRole(projectId: $p, agentId: $a, role: AGENT) { kind } }",
            json!({"p": project_id, "a": other.id}),
        )
        .await;
    assert!(answered(&demoted), "{demoted}");
    let read = app
        .graphql(Some(&other.token), keys, json!({"p": project_id}))
        .await;
    assert!(read["data"]["project"]["secretKey"].is_null(), "{read}");
}

#[tokio::test]
async fn a_logout_and_a_removal_on_one_instance_hold_on_another_within_two_seconds() {
    let first = spawn_app_with(|settings| settings.access_cache = LONG).await;
    if !is_postgres(&first) {
        println!("SQLite: instances share no event bus; checked on PostgreSQL");
        return;
    }
    let second = first.another_instance(Adapters::default()).await;
    let admin = first.agent("admin").await;
    let member = first.agent("member").await;
    let project_id = first.project(&admin, "Shop").await;
    first
        .add_member(&admin, &project_id, &member, "AGENT")
        .await;
    assert!(answered(&page(&second, &member, &project_id).await));

    remove(&first, &admin, &project_id, &member).await;
    let took = refused_within(
        Duration::from_secs(2),
        async || page(&second, &member, &project_id).await,
        "NOT_FOUND",
    )
    .await;
    println!("a removal on one instance held on the other after {took:?}");

    assert!(answered(
        &second.graphql(Some(&member.token), ME, json!({})).await
    ));
    first
        .graphql(Some(&member.token), "mutation { logout }", json!({}))
        .await;
    let took = refused_within(
        Duration::from_secs(2),
        async || second.graphql(Some(&member.token), ME, json!({})).await,
        "UNAUTHENTICATED",
    )
    .await;
    println!("a logout on one instance held on the other after {took:?}");
}

#[tokio::test]
async fn when_the_bus_reconnects_everything_cached_is_read_again() {
    let app = spawn_app_with(|settings| settings.access_cache = LONG).await;
    if !is_postgres(&app) {
        println!("SQLite: the in-process bus never reconnects; checked on PostgreSQL");
        return;
    }
    let admin = app.agent("admin").await;
    let member = app.agent("member").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &member, "AGENT").await;
    // This instance hears its own events back through PostgreSQL; once
    // they have come, what is cached next stays until something clears it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(answered(&page(&app, &member, &project_id).await));
    assert!(answered(
        &app.graphql(Some(&admin.token), ME, json!({})).await
    ));

    // Changes no event announces, as if their events were lost.
    let db = &app.app_services.db;
    let agent_id = |agent: &TestAgent| agent.id.parse::<Uuid>().unwrap();
    entity::membership::Entity::delete_by_id((
        project_id.parse::<Uuid>().unwrap(),
        agent_id(&member),
    ))
    .exec(db)
    .await
    .unwrap();
    entity::access_token::Entity::update_many()
        .col_expr(
            entity::access_token::Column::RevokedAt,
            Expr::value(chrono::Utc::now()),
        )
        .filter(entity::access_token::Column::AgentId.eq(agent_id(&admin)))
        .exec(db)
        .await
        .unwrap();
    // Still cached: nothing said the rows changed.
    assert!(answered(&page(&app, &member, &project_id).await));

    db.execute_unprepared(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND starts_with(query, 'LISTEN')",
    )
    .await
    .unwrap();
    let bound = Duration::from_secs(5);
    refused_within(
        bound,
        async || page(&app, &member, &project_id).await,
        "NOT_FOUND",
    )
    .await;
    refused_within(
        bound,
        async || app.graphql(Some(&admin.token), ME, json!({})).await,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test]
async fn a_page_asked_again_costs_only_its_own_statement() {
    let counter = StatementCounter::installed();
    let app = spawn_app_with(|settings| settings.access_cache = LONG).await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let variables = json!({"p": project_id});
    app.app_services.access_cache.clear();
    let (body, cold) = counter
        .run(&app, &admin.token, PAGE, variables.clone())
        .await;
    assert!(answered(&body), "{body}");
    let (body, warm) = counter.run(&app, &admin.token, PAGE, variables).await;
    assert!(answered(&body), "{body}");
    // The token with its agent and the membership are read once.
    assert_eq!(
        (cold, warm),
        (3, 1),
        "statements of a page, then of the same page again"
    );
}
