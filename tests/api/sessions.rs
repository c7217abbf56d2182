//! Sessions that end when they should (logout, expiry, removal from a
//! project, a role change), on every instance, and requests that meet on
//! one unique key.

use std::time::{Duration, Instant};

use contacts::domain::agents;
use contacts::startup::{Adapters, App};
use futures_util::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestAgent, TestApp, public_key, spawn_app, unstarted_app};
use crate::subscriptions::{LEGACY, MODERN, Socket, connect_as, next, send};

const MEMBERS: &str = "subscription($p: ID!) { membershipChanged(projectId: $p) { kind agentId } }";
const CONTACTS: &str = "subscription($p: ID!) { contactUpdated(projectId: $p) { kind contactId } }";

/// The bound the issue sets for a close after `logout` or expiry (one
/// second), with room for a loaded machine; it only stops a hang.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

fn is_postgres(app: &TestApp) -> bool {
    app.settings.database_url.starts_with("postgres")
}

/// `subscribe` (graphql-transport-ws) or `start` (legacy).
fn subscribe(protocol: &str, id: &str, query: &str, variables: Value) -> Value {
    let kind = if protocol == LEGACY {
        "start"
    } else {
        "subscribe"
    };
    json!({"id": id, "type": kind, "payload": {"query": query, "variables": variables}})
}

/// Reads messages until one of operation `id` has type `kind`; panics on a
/// close or another message of that operation.
async fn message_of(socket: &mut Socket, id: &str, kind: &str) -> Value {
    loop {
        let message = next(socket).await.unwrap_or_else(|ended| {
            panic!("expected a {kind} for {id}, the connection ended: {ended}")
        });
        if message["id"] != id {
            continue;
        }
        assert_eq!(message["type"], kind, "{message}");
        return message;
    }
}

/// The code of the close frame ending the connection within `bound`,
/// whatever operation messages come before it.
async fn closed_within(socket: &mut Socket, bound: Duration) -> u16 {
    let closing = async {
        loop {
            match futures_util::StreamExt::next(socket).await {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(bound, closing)
        .await
        .unwrap_or_else(|_| panic!("the connection is still open after {bound:?}"))
}

/// A connection on `app` for `agent` whose `membershipChanged` of
/// `project_id` runs: it has delivered an event (a newcomer's arrival).
async fn watching_members(
    app: &TestApp,
    protocol: &str,
    admin: &TestAgent,
    agent: &TestAgent,
    project_id: &str,
) -> Socket {
    let mut socket = connect_as(&app.ws_url(), protocol, &agent.token).await;
    send(
        &mut socket,
        subscribe(protocol, "members", MEMBERS, json!({"p": project_id})),
    )
    .await;
    let result = if protocol == LEGACY { "data" } else { "next" };
    hear_an_arrival(app, &mut socket, admin, project_id, "members", result).await;
    socket
}

/// Waits until the `membershipChanged` subscription `id` hears a newcomer
/// join the project. The subscription runs once it hears of one; an
/// arrival before it ran goes unheard, so newcomers keep arriving until one
/// is heard. Returns the newcomer.
async fn hear_an_arrival(
    app: &TestApp,
    socket: &mut Socket,
    admin: &TestAgent,
    project_id: &str,
    id: &str,
    result: &str,
) -> TestAgent {
    loop {
        let newcomer = app.agent("newcomer").await;
        app.add_member(admin, project_id, &newcomer, "AGENT").await;
        let heard =
            tokio::time::timeout(Duration::from_millis(500), message_of(socket, id, result)).await;
        if let Ok(message) = heard {
            let change = &message["payload"]["data"]["membershipChanged"];
            assert_eq!(change["kind"], "ADDED", "{message}");
            if change["agentId"] == newcomer.id.as_str() {
                return newcomer;
            }
        }
    }
}

async fn logout(app: &TestApp, agent: &TestAgent) {
    let out = app
        .graphql(Some(&agent.token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true, "{out}");
}

fn agent_id(agent: &TestAgent) -> Uuid {
    agent.id.parse().expect("an agent id")
}

async fn set_token_expiry(
    app: &TestApp,
    agent: &TestAgent,
    expires_at: chrono::DateTime<chrono::Utc>,
) {
    entity::access_token::Entity::update_many()
        .col_expr(
            entity::access_token::Column::ExpiresAt,
            Expr::value(expires_at),
        )
        .filter(entity::access_token::Column::AgentId.eq(agent_id(agent)))
        .exec(&app.app_services.db)
        .await
        .expect("token rows updated");
}

async fn assert_still_open(socket: &mut Socket) {
    send(socket, json!({"type": "ping"})).await;
    let pong = next(socket).await.expect("the connection stays open");
    assert_eq!(pong["type"], "pong", "{pong}");
}

#[tokio::test]
async fn logout_closes_an_open_websocket_with_4401() {
    let app = spawn_app().await;
    for protocol in [MODERN, LEGACY] {
        let owner = app.agent("owner").await;
        let project_id = app.project(&owner, "Shop").await;
        let mut socket = watching_members(&app, protocol, &owner, &owner, &project_id).await;
        // The same agent logged in elsewhere keeps that session.
        let elsewhere = app.login(&owner.email, PASSWORD).await;
        let mut other = connect_as(&app.ws_url(), MODERN, &elsewhere).await;

        logout(&app, &owner).await;
        assert_eq!(
            closed_within(&mut socket, CLOSE_WITHIN).await,
            4401,
            "{protocol}"
        );
        assert_still_open(&mut other).await;
    }
}

#[tokio::test]
async fn an_expired_token_closes_the_websocket_with_4401() {
    let app = spawn_app().await;
    let owner = app.agent("owner").await;
    let project_id = app.project(&owner, "Shop").await;
    let mut socket = watching_members(&app, MODERN, &owner, &owner, &project_id).await;
    // The token now expires in a moment; the connection learns the new
    // expiry when it checks the token again, at its next operation.
    set_token_expiry(
        &app,
        &owner,
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await;
    send(
        &mut socket,
        subscribe(MODERN, "me", "{ me { email } }", json!({})),
    )
    .await;
    assert_eq!(
        closed_within(&mut socket, CLOSE_WITHIN + Duration::from_secs(1)).await,
        4401
    );
}

#[tokio::test]
async fn a_token_that_expires_while_connected_closes_the_websocket() {
    let app = spawn_app().await;
    let owner = app.agent("owner").await;
    // Known at `connection_init`: nothing else tells the connection.
    set_token_expiry(
        &app,
        &owner,
        chrono::Utc::now() + chrono::Duration::seconds(3),
    )
    .await;
    let mut socket = connect_as(&app.ws_url(), MODERN, &owner.token).await;
    send(
        &mut socket,
        subscribe(
            MODERN,
            "notes",
            "subscription { notifications { kind } }",
            json!({}),
        ),
    )
    .await;
    assert_eq!(
        closed_within(&mut socket, Duration::from_secs(3) + CLOSE_WITHIN).await,
        4401
    );
}

/// A member's connection with `membershipChanged` and `contactUpdated` of
/// the project running, both having delivered an event.
async fn member_watching_project(
    app: &TestApp,
    admin: &TestAgent,
    member: &TestAgent,
    project_id: &str,
) -> Socket {
    let mut socket = watching_members(app, MODERN, admin, member, project_id).await;
    send(
        &mut socket,
        subscribe(MODERN, "contacts", CONTACTS, json!({"p": project_id})),
    )
    .await;
    // The subscription runs once it hears of a new contact; chats started
    // before it ran go unheard, so keep starting them until one is heard.
    let key = public_key(app, admin, project_id).await;
    loop {
        let chat = app
            .graphql(
                None,
                "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId } }",
                json!({"i": {"projectKey": key}}),
            )
            .await;
        assert!(chat["errors"].is_null(), "{chat}");
        let heard = tokio::time::timeout(
            Duration::from_millis(500),
            message_of(&mut socket, "contacts", "next"),
        )
        .await;
        if heard.is_ok() {
            return socket;
        }
    }
}

/// Reads until every operation of `ids` got an `error`; returns their codes.
/// A `next` may come first (the subscription's own event of the change);
/// `complete` must not follow an `error`.
async fn errors_for(socket: &mut Socket, ids: &[&str]) -> Vec<(String, String)> {
    let mut ended = Vec::new();
    let waiting = async {
        while ended.len() < ids.len() {
            let message = next(socket).await.expect("the connection stays open");
            let id = message["id"].as_str().unwrap_or_default().to_owned();
            match message["type"].as_str() {
                Some("next") => continue,
                Some("error") if ids.contains(&id.as_str()) => {
                    let code = message["payload"][0]["extensions"]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    ended.push((id, code));
                }
                _ => panic!("unexpected {message}"),
            }
        }
    };
    tokio::time::timeout(CLOSE_WITHIN, waiting)
        .await
        .expect("the subscriptions end within the bound");
    ended.sort();
    ended
}

#[tokio::test]
async fn a_removed_member_s_subscriptions_end_and_new_ones_are_refused() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let member = app.agent("member").await;
    let project_id = app.project(&admin, "Shop").await;
    let other_project = app.project(&admin, "Elsewhere").await;
    app.add_member(&admin, &project_id, &member, "AGENT").await;
    app.add_member(&admin, &other_project, &member, "AGENT")
        .await;
    let mut socket = member_watching_project(&app, &admin, &member, &project_id).await;
    send(
        &mut socket,
        subscribe(MODERN, "elsewhere", MEMBERS, json!({"p": other_project})),
    )
    .await;

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
    assert_eq!(
        errors_for(&mut socket, &["contacts", "members"]).await,
        vec![
            ("contacts".to_owned(), "NOT_FOUND".to_owned()),
            ("members".to_owned(), "NOT_FOUND".to_owned()),
        ]
    );

    // A new subscription to the project is refused, as for any non-member.
    send(
        &mut socket,
        subscribe(MODERN, "again", MEMBERS, json!({"p": project_id})),
    )
    .await;
    let refused = message_of(&mut socket, "again", "next").await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    message_of(&mut socket, "again", "complete").await;

    // The subscription to the other project goes on.
    hear_an_arrival(
        &app,
        &mut socket,
        &admin,
        &other_project,
        "elsewhere",
        "next",
    )
    .await;
}

#[tokio::test]
async fn a_role_change_ends_the_member_s_subscriptions_of_that_project() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let member = app.agent("member").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &member, "AGENT").await;
    let mut socket = member_watching_project(&app, &admin, &member, &project_id).await;

    let changed = app
        .graphql(
            Some(&admin.token),
            "mutation($p: ID!, $a: ID!) { changeRole(projectId: $p, agentId: $a, role: ADMIN) { kind } }",
            json!({"p": project_id, "a": member.id}),
        )
        .await;
    assert_eq!(
        changed["data"]["changeRole"]["kind"], "ROLE_CHANGED",
        "{changed}"
    );
    assert_eq!(
        errors_for(&mut socket, &["contacts", "members"]).await,
        vec![
            ("contacts".to_owned(), "FORBIDDEN".to_owned()),
            ("members".to_owned(), "FORBIDDEN".to_owned()),
        ]
    );
    // Under the new role, the member subscribes again.
    send(
        &mut socket,
        subscribe(MODERN, "again", MEMBERS, json!({"p": project_id})),
    )
    .await;
    hear_an_arrival(&app, &mut socket, &admin, &project_id, "again", "next").await;
}

#[tokio::test]
async fn logout_on_one_instance_closes_a_websocket_held_on_another() {
    let first = spawn_app().await;
    if !is_postgres(&first) {
        println!(
            "SQLite: instances share no event bus; logout across instances is checked on PostgreSQL"
        );
        return;
    }
    let second = first.another_instance(Adapters::default()).await;
    let owner = first.agent("owner").await;
    let project_id = first.project(&owner, "Shop").await;
    let mut socket = watching_members(&second, MODERN, &owner, &owner, &project_id).await;

    let asked = Instant::now();
    logout(&first, &owner).await;
    let answered = asked.elapsed();
    let code = closed_within(&mut socket, Duration::from_secs(2)).await;
    let closed = asked.elapsed();
    println!(
        "logout on one instance closed the websocket on the other {closed:?} after the \
         request was sent ({:?} after its answer)",
        closed.saturating_sub(answered)
    );
    assert_eq!(code, 4401);
}

#[tokio::test]
async fn when_the_bus_reconnects_connections_check_their_token_and_accesses_again() {
    let app = spawn_app().await;
    if !is_postgres(&app) {
        println!("SQLite: the in-process bus never reconnects; checked on PostgreSQL");
        return;
    }
    let admin = app.agent("admin").await;
    let member = app.agent("member").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &member, "AGENT").await;
    let mut admin_socket = watching_members(&app, MODERN, &admin, &admin, &project_id).await;
    let mut member_socket = watching_members(&app, MODERN, &admin, &member, &project_id).await;

    // Changes that no event announces, as if their events were lost.
    let db = &app.app_services.db;
    entity::access_token::Entity::update_many()
        .col_expr(
            entity::access_token::Column::RevokedAt,
            Expr::value(chrono::Utc::now()),
        )
        .filter(entity::access_token::Column::AgentId.eq(agent_id(&admin)))
        .exec(db)
        .await
        .unwrap();
    entity::membership::Entity::delete_by_id((
        project_id.parse::<Uuid>().unwrap(),
        agent_id(&member),
    ))
    .exec(db)
    .await
    .unwrap();
    let terminated = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND starts_with(query, 'LISTEN')",
        ))
        .await
        .unwrap();
    assert_eq!(terminated.len(), 1, "one listening connection");

    let bound = Duration::from_secs(5);
    assert_eq!(closed_within(&mut admin_socket, bound).await, 4401);
    let ended = tokio::time::timeout(bound, message_of(&mut member_socket, "members", "error"))
        .await
        .expect("the member's subscription ends");
    assert_eq!(ended["payload"][0]["extensions"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn parallel_additions_of_one_member_add_it_once() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id: Uuid = app.project(&admin, "Shop").await.parse().unwrap();
    // Through the API admins invite; the operator's direct addition (the
    // command line's add-member) is where two additions meet. Several
    // rounds: the additions of one round meet between the check for an
    // existing membership and the insert only now and then.
    for _ in 0..6 {
        let member = app.agent("member").await;
        let db = &app.app_services.db;
        let answers = join_all((0..10).map(|_| {
            contacts::domain::projects::insert_member(
                db,
                project_id,
                &member.email,
                contacts::domain::access::Role::Agent,
            )
        }))
        .await;
        let added = answers.iter().filter(|answer| answer.is_ok()).count();
        assert_eq!(added, 1, "{answers:?}");
        for refused in answers.iter().filter_map(|answer| answer.as_ref().err()) {
            assert_eq!(refused.code(), "BAD_USER_INPUT", "{refused:?}");
        }
        let rows = entity::membership::Entity::find()
            .filter(entity::membership::Column::AgentId.eq(agent_id(&member)))
            .count(db)
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
}

#[tokio::test]
async fn parallel_creations_of_one_agent_create_it_once() {
    let app = spawn_app().await;
    let db = &app.app_services.db;
    let email = format!("same{}@example.com", Uuid::now_v7().simple());
    let results =
        join_all((0..6).map(|_| agents::create_agent(db, &email, "Same", PASSWORD))).await;
    assert_eq!(results.iter().filter(|created| created.is_ok()).count(), 1);
    for refused in results.iter().filter_map(|created| created.as_ref().err()) {
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{refused:?}");
    }
    let rows = entity::agent::Entity::find()
        .filter(entity::agent::Column::Email.eq(email.as_str()))
        .count(db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn two_instances_starting_together_on_a_fresh_database_both_start() {
    let fresh = unstarted_app().await;
    if !fresh.settings.database_url.starts_with("postgres") {
        println!(
            "SQLite: instances that share a database run on PostgreSQL; the migration lock is checked there"
        );
        return;
    }
    let mut settings = fresh.settings.clone();
    settings.bootstrap_owner = true;
    let (first, second) = tokio::join!(
        App::build_with(settings.clone(), Adapters::default()),
        App::build_with(settings, Adapters::default()),
    );
    let first = first.expect("the first instance starts");
    let second = second.expect("the second instance starts");
    // One of them created the owner; the other found it.
    let logins = [first.owner_login(), second.owner_login()];
    assert_eq!(logins.iter().flatten().count(), 1);
    let db = &first.services().db;
    assert_eq!(entity::agent::Entity::find().count(db).await.unwrap(), 1);
    assert_eq!(entity::project::Entity::find().count(db).await.unwrap(), 1);
}

#[tokio::test]
async fn ending_sessions_from_the_account_closes_their_websockets() {
    let app = spawn_app().await;
    let owner = app.agent("owner").await;
    let project_id = app.project(&owner, "Shop").await;
    // logoutEverywhere, from another session: both sockets close.
    let second = app.login(&owner.email, PASSWORD).await;
    let mut socket = watching_members(&app, MODERN, &owner, &owner, &project_id).await;
    let mut second_socket = connect_as(&app.ws_url(), MODERN, &second).await;
    let body = app
        .graphql(Some(&second), "mutation { logoutEverywhere }", json!({}))
        .await;
    assert_eq!(body["data"]["logoutEverywhere"], true, "{body}");
    assert_eq!(closed_within(&mut socket, CLOSE_WITHIN).await, 4401);
    assert_eq!(closed_within(&mut second_socket, CLOSE_WITHIN).await, 4401);

    // changePassword ends the other sessions, and so their sockets, but
    // not the caller's.
    let caller = app.login(&owner.email, PASSWORD).await;
    let other = app.login(&owner.email, PASSWORD).await;
    let mut other_socket = connect_as(&app.ws_url(), MODERN, &other).await;
    let mut caller_socket = connect_as(&app.ws_url(), MODERN, &caller).await;
    let body = app
        .graphql(
            Some(&caller),
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({"c": PASSWORD, "n": "another horse battery staple"}),
        )
        .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");
    assert_eq!(closed_within(&mut other_socket, CLOSE_WITHIN).await, 4401);
    assert_still_open(&mut caller_socket).await;
}
