//! Who may run what: every query, mutation and subscription of the schema,
//! run as an admin, an agent member, a member of another project, a visitor
//! and an anonymous caller, against what each must get back.
//!
//! The table must list every root field of the served schema: an operation
//! added without a row fails this test, so no resolver can skip the check.

use std::collections::BTreeSet;
use std::time::Duration;

use entity::contact;
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestAgent, TestApp, public_key, spawn_app_with};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Query,
    Mutation,
    Subscription,
}

/// What a caller gets: data, or an error with this `extensions.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Err(&'static str),
}

use Outcome::{Err as E, Ok as OK};

const UNAUTH: Outcome = E("UNAUTHENTICATED");
const FORBIDDEN: Outcome = E("FORBIDDEN");
const NOT_FOUND: Outcome = E("NOT_FOUND");

/// The ids an operation works on: those of the caller's fixture, or ids
/// that exist nowhere.
#[derive(Clone)]
struct Ids {
    project: String,
    contact: String,
    /// Another contact of the project, a possible duplicate of `contact`.
    other_contact: String,
    member_agent: String,
    public_key: String,
    newcomer_email: String,
    admin_email: String,
    question: String,
    export_job: String,
    /// A notification of the admin's.
    notification: String,
    /// A pending invitation of the project, of an address no caller has.
    invitation: String,
    /// A live session of the admin's that no caller uses.
    admin_session: String,
}

struct Row {
    operation: &'static str,
    kind: Kind,
    document: &'static str,
    variables: fn(&Ids) -> Value,
    /// Admin, agent member, member of another project, visitor, anonymous.
    expected: [Outcome; 5],
    /// Takes a project-scoped id: a non-member must get exactly the answer
    /// for an id that does not exist.
    scoped: bool,
    /// Revokes the caller's token: the caller logs in afresh for it.
    fresh_tokens: bool,
    /// Ends every session of the caller: its agent logs in again after.
    ends_every_session: bool,
}

const CALLERS: [&str; 5] = [
    "admin",
    "agent member",
    "other project's member",
    "visitor",
    "anonymous",
];

fn table() -> Vec<Row> {
    let row = |operation, kind, document, variables: fn(&Ids) -> Value, expected, scoped| Row {
        operation,
        kind,
        document,
        variables,
        expected,
        scoped,
        fresh_tokens: false,
        ends_every_session: false,
    };
    let member_only = [OK, OK, NOT_FOUND, UNAUTH, UNAUTH];
    let admin_only = [OK, FORBIDDEN, NOT_FOUND, UNAUTH, UNAUTH];
    let any_agent = [OK, OK, OK, UNAUTH, UNAUTH];
    let public = [OK, OK, OK, OK, OK];
    let visitor_only = [UNAUTH, UNAUTH, UNAUTH, OK, UNAUTH];
    let admins_own = [OK, NOT_FOUND, NOT_FOUND, UNAUTH, UNAUTH];
    use Kind::*;
    vec![
        row(
            "formQuestions",
            Query,
            "query($p: ID!) { formQuestions(projectId: $p) { id } }",
            |ids| json!({"p": ids.project}),
            member_only,
            true,
        ),
        row(
            "contactForm",
            Query,
            "{ contactForm { complete questions { key } } }",
            |_| json!({}),
            visitor_only,
            false,
        ),
        row(
            "exportJob",
            Query,
            "query($j: ID!) { exportJob(id: $j) { id status } }",
            |ids| json!({"j": ids.export_job}),
            member_only,
            true,
        ),
        row(
            "exports",
            Query,
            "query($p: ID!) { exports(projectId: $p) { edges { node { id } } } }",
            |ids| json!({"p": ids.project}),
            member_only,
            true,
        ),
        row(
            "notifications",
            Query,
            "{ notifications { edges { node { id } } } }",
            |_| json!({}),
            any_agent,
            false,
        ),
        row(
            "createFormQuestion",
            Mutation,
            "mutation($p: ID!) { createFormQuestion(projectId: $p, input: {key: \"size\", label: \"Size\", kind: NUMBER, target: {attribute: \"size\"}}) { id } }",
            |ids| json!({"p": ids.project}),
            admin_only,
            true,
        ),
        row(
            "updateFormQuestion",
            Mutation,
            "mutation($q: ID!) { updateFormQuestion(id: $q, input: {label: \"Firm\"}) { id } }",
            |ids| json!({"q": ids.question}),
            admin_only,
            true,
        ),
        row(
            "reorderFormQuestions",
            Mutation,
            "mutation($p: ID!, $q: ID!) { reorderFormQuestions(projectId: $p, ids: [$q]) { id } }",
            |ids| json!({"p": ids.project, "q": ids.question}),
            admin_only,
            true,
        ),
        row(
            "deleteFormQuestion",
            Mutation,
            "mutation($q: ID!) { deleteFormQuestion(id: $q) }",
            |ids| json!({"q": ids.question}),
            admin_only,
            true,
        ),
        row(
            "submitContactForm",
            Mutation,
            "mutation { submitContactForm(answers: [{key: \"company\", value: \"Acme\"}]) { complete } }",
            |_| json!({}),
            visitor_only,
            false,
        ),
        row(
            "exportContacts",
            Mutation,
            "mutation($p: ID!) { exportContacts(projectId: $p, from: \"2026-01-01\", to: \"2026-12-31\") { id } }",
            |ids| json!({"p": ids.project}),
            member_only,
            true,
        ),
        row(
            "cancelExport",
            Mutation,
            "mutation($j: ID!) { cancelExport(id: $j) { id status } }",
            |ids| json!({"j": ids.export_job}),
            // The admin asked for the fixture's export: another member may
            // not cancel it (export_jobs.rs covers the requester).
            admin_only,
            true,
        ),
        row(
            "markNotificationRead",
            Mutation,
            "mutation($n: ID!) { markNotificationRead(id: $n) { id readAt } }",
            |ids| json!({"n": ids.notification}),
            admins_own,
            true,
        ),
        row(
            "contactUpdated",
            Subscription,
            "subscription($p: ID!) { contactUpdated(projectId: $p) { kind } }",
            |ids| json!({"p": ids.project}),
            member_only,
            true,
        ),
        row(
            "exportUpdated",
            Subscription,
            "subscription($j: ID!) { exportUpdated(jobId: $j) { status } }",
            |ids| json!({"j": ids.export_job}),
            member_only,
            true,
        ),
        row(
            "notifications",
            Subscription,
            "subscription { notifications { id } }",
            |_| json!({}),
            any_agent,
            false,
        ),
        row(
            "me",
            Query,
            "{ me { id } }",
            |_| json!({}),
            any_agent,
            false,
        ),
        row(
            "projects",
            Query,
            "{ projects { id } }",
            |_| json!({}),
            any_agent,
            false,
        ),
        row(
            "project",
            Query,
            "query($p: ID!) { project(id: $p) { id name } }",
            |ids| json!({"p": ids.project}),
            member_only,
            true,
        ),
        row(
            "contacts",
            Query,
            "query($p: ID!) { contacts(projectId: $p, first: 5) { totalCount edges { node { id } } } }",
            |ids| json!({"p": ids.project}),
            member_only,
            true,
        ),
        row(
            "contact",
            Query,
            "query($c: ID!) { contact(id: $c) { id name latestChat { id } history { events { kind } } } }",
            |ids| json!({"c": ids.contact}),
            member_only,
            true,
        ),
        row(
            "login",
            Mutation,
            "mutation($e: String!, $pw: String!) { login(email: $e, password: $pw) { token } }",
            |ids| json!({"e": ids.admin_email, "pw": PASSWORD}),
            public,
            false,
        ),
        Row {
            fresh_tokens: true,
            ..row(
                "logout",
                Mutation,
                "mutation { logout }",
                |_| json!({}),
                any_agent,
                false,
            )
        },
        row(
            "createProject",
            Mutation,
            "mutation { createProject(name: \"Another\") { id } }",
            |_| json!({}),
            any_agent,
            false,
        ),
        row(
            "addMember",
            Mutation,
            "mutation($p: ID!, $e: String!) { addMember(projectId: $p, email: $e, role: AGENT) { id status } }",
            |ids| json!({"p": ids.project, "e": ids.newcomer_email}),
            admin_only,
            true,
        ),
        row(
            "removeMember",
            Mutation,
            "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }",
            |ids| json!({"p": ids.project, "a": ids.member_agent}),
            admin_only,
            true,
        ),
        row(
            "changeRole",
            Mutation,
            "mutation($p: ID!, $a: ID!) { changeRole(projectId: $p, agentId: $a, role: ADMIN) { kind } }",
            |ids| json!({"p": ids.project, "a": ids.member_agent}),
            admin_only,
            true,
        ),
        row(
            "setAllowedOrigins",
            Mutation,
            "mutation($p: ID!) { setAllowedOrigins(projectId: $p, origins: [\"https://shop.example\"]) { id } }",
            |ids| json!({"p": ids.project}),
            admin_only,
            true,
        ),
        row(
            "startChat",
            Mutation,
            "mutation($k: String!) { startChat(input: {projectKey: $k}) { chat { id } } }",
            |ids| json!({"k": ids.public_key}),
            public,
            false,
        ),
        row(
            "updateContact",
            Mutation,
            "mutation($c: ID!) { updateContact(id: $c, input: {company: \"Acme\"}) { id company } }",
            |ids| json!({"c": ids.contact}),
            member_only,
            true,
        ),
        row(
            "mergeContacts",
            Mutation,
            "mutation($c: ID!, $o: ID!) { mergeContacts(targetId: $c, sourceId: $o) { id } }",
            |ids| json!({"c": ids.contact, "o": ids.other_contact}),
            member_only,
            true,
        ),
        row(
            "dismissDuplicate",
            Mutation,
            "mutation($c: ID!, $o: ID!) { dismissDuplicate(contactId: $c, otherId: $o) { id } }",
            |ids| json!({"c": ids.contact, "o": ids.other_contact}),
            member_only,
            true,
        ),
        row(
            "deleteContact",
            Mutation,
            "mutation($c: ID!) { deleteContact(id: $c) { deletedContactId } }",
            |ids| json!({"c": ids.contact}),
            member_only,
            true,
        ),
        row(
            "acceptInvitation",
            Mutation,
            "mutation($i: ID!) { acceptInvitation(id: $i) { kind } }",
            |ids| json!({"i": ids.invitation}),
            [NOT_FOUND, NOT_FOUND, NOT_FOUND, UNAUTH, UNAUTH],
            true,
        ),
        row(
            "revokeInvitation",
            Mutation,
            "mutation($i: ID!) { revokeInvitation(id: $i) { status } }",
            |ids| json!({"i": ids.invitation}),
            admin_only,
            true,
        ),
        row(
            "rotateProjectKeys",
            Mutation,
            "mutation($p: ID!) { rotateProjectKeys(projectId: $p) { publicKey } }",
            |ids| json!({"p": ids.project}),
            admin_only,
            true,
        ),
        row(
            "leaveProject",
            Mutation,
            "mutation($p: ID!) { leaveProject(projectId: $p) { kind } }",
            |ids| json!({"p": ids.project}),
            // The fixture's admin is its project's only admin.
            [E("BAD_USER_INPUT"), OK, NOT_FOUND, UNAUTH, UNAUTH],
            true,
        ),
        row(
            "sessions",
            Query,
            "{ sessions { id current } }",
            |_| json!({}),
            any_agent,
            false,
        ),
        row(
            "revokeSession",
            Mutation,
            "mutation($s: ID!) { revokeSession(id: $s) }",
            |ids| json!({"s": ids.admin_session}),
            admins_own,
            true,
        ),
        Row {
            fresh_tokens: true,
            ends_every_session: true,
            ..row(
                "logoutEverywhere",
                Mutation,
                "mutation { logoutEverywhere }",
                |_| json!({}),
                any_agent,
                false,
            )
        },
        row(
            "changePassword",
            Mutation,
            "mutation($pw: String!) { changePassword(currentPassword: $pw, newPassword: $pw) }",
            |_| json!({"pw": PASSWORD}),
            any_agent,
            false,
        ),
        row(
            "requestPasswordReset",
            Mutation,
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            |ids| json!({"e": ids.admin_email}),
            public,
            false,
        ),
        row(
            "resetPassword",
            Mutation,
            "mutation($pw: String!) { resetPassword(token: \"pr_not-a-token\", password: $pw) }",
            |_| json!({"pw": PASSWORD}),
            [E("BAD_USER_INPUT"); 5],
            false,
        ),
        row(
            "membershipChanged",
            Subscription,
            "subscription($p: ID!) { membershipChanged(projectId: $p) { kind } }",
            |ids| json!({"p": ids.project}),
            member_only,
            true,
        ),
    ]
}

/// The root fields of the served schema, as `Query.me`, `Mutation.login`...
fn schema_operations() -> BTreeSet<String> {
    let sdl = contacts::graphql::sdl();
    let mut operations = BTreeSet::new();
    let mut root: Option<&str> = None;
    let mut in_description = false;
    for line in sdl.lines() {
        if let Some(rest) = line.strip_prefix("type ") {
            root = match rest.split_whitespace().next() {
                Some("QueryRoot") => Some("Query"),
                Some("MutationRoot") => Some("Mutation"),
                Some("SubscriptionRoot") => Some("Subscription"),
                _ => None,
            };
            continue;
        }
        let Some(kind) = root else { continue };
        if line == "}" {
            root = None;
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with("\"\"\"") {
            // A one-line description opens and closes on the same line.
            if !(trimmed.len() > 3 && trimmed.ends_with("\"\"\"")) {
                in_description = !in_description;
            }
            continue;
        }
        if in_description || !line.starts_with('\t') || line.starts_with("\t\t") {
            continue;
        }
        let name: String = trimmed
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            operations.insert(format!("{kind}.{name}"));
        }
    }
    operations
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Query => "Query",
        Kind::Mutation => "Mutation",
        Kind::Subscription => "Subscription",
    }
}

/// The agents every fixture shares.
struct Cast {
    admin: TestAgent,
    member: TestAgent,
    outsider: TestAgent,
    newcomer: TestAgent,
}

/// A fresh project of the cast's admin, with the agent member, a visitor
/// who started a chat, and that visitor's contact.
struct Fixture {
    ids: Ids,
    visitor_token: String,
}

async fn fixture(app: &TestApp, cast: &Cast) -> Fixture {
    let project = app.project(&cast.admin, "Shop").await;
    app.add_member(&cast.admin, &project, &cast.member, "AGENT")
        .await;
    let key = public_key(app, &cast.admin, &project).await;
    let started = app
        .graphql(
            None,
            "mutation($k: String!) { startChat(input: {projectKey: $k}) { visitorToken } }",
            json!({"k": key}),
        )
        .await;
    let visitor_token = started["data"]["startChat"]["visitorToken"]
        .as_str()
        .unwrap_or_else(|| panic!("startChat failed: {started}"))
        .to_owned();
    let contact = contact::Entity::find()
        .filter(contact::Column::ProjectId.eq(project.parse::<Uuid>().unwrap()))
        .one(&app.app_services.db)
        .await
        .unwrap()
        .expect("the visitor's contact");
    // A second visitor; the same email makes the two possible duplicates.
    app.graphql(
        None,
        "mutation($k: String!) { startChat(input: {projectKey: $k}) { visitorToken } }",
        json!({"k": key}),
    )
    .await;
    let other_contact = contact::Entity::find()
        .filter(contact::Column::ProjectId.eq(project.parse::<Uuid>().unwrap()))
        .filter(contact::Column::Id.ne(contact.id))
        .one(&app.app_services.db)
        .await
        .unwrap()
        .expect("the second visitor's contact");
    for id in [contact.id, other_contact.id] {
        let edited = app
            .graphql(
                Some(&cast.admin.token),
                "mutation($c: ID!) { updateContact(id: $c, input: {email: \"same@example.com\"}) { id } }",
                json!({"c": id.to_string()}),
            )
            .await;
        assert!(edited["errors"].is_null(), "{edited}");
    }
    let question = app
        .graphql(
            Some(&cast.admin.token),
            "mutation($p: ID!) { createFormQuestion(projectId: $p, input: {key: \"company\", label: \"Company\", kind: TEXT, target: {field: COMPANY}}) { id } }",
            json!({"p": project}),
        )
        .await["data"]["createFormQuestion"]["id"]
        .as_str()
        .expect("a question")
        .to_owned();
    let export_job = app
        .graphql(
            Some(&cast.admin.token),
            "mutation($p: ID!) { exportContacts(projectId: $p, from: \"2026-01-01\", to: \"2026-12-31\") { id } }",
            json!({"p": project}),
        )
        .await["data"]["exportContacts"]["id"]
        .as_str()
        .expect("an export")
        .to_owned();
    let notification = contacts::domain::notifications::create(
        &app.app_services.db,
        contacts::domain::notifications::NewNotification {
            agent_id: cast.admin.id.parse().unwrap(),
            project_id: project.parse().unwrap(),
            kind: contacts::domain::notifications::NotificationKind::ExportCompleted,
            title: "Ready",
            body: "An export is ready.",
            export_job_id: Some(export_job.parse().unwrap()),
        },
    )
    .await
    .expect("a notification")
    .id
    .to_string();
    let invitation = app
        .graphql(
            Some(&cast.admin.token),
            "mutation($p: ID!, $e: String!) { addMember(projectId: $p, email: $e, role: AGENT) { id } }",
            json!({"p": project, "e": format!("invitee-{}@example.com", Uuid::now_v7().simple())}),
        )
        .await["data"]["addMember"]["id"]
        .as_str()
        .expect("an invitation")
        .to_owned();
    let admin_session = unused_session(app, &cast.admin).await;
    Fixture {
        ids: Ids {
            invitation,
            admin_session,
            project,
            contact: contact.id.to_string(),
            other_contact: other_contact.id.to_string(),
            member_agent: cast.member.id.clone(),
            public_key: key,
            newcomer_email: cast.newcomer.email.clone(),
            admin_email: cast.admin.email.clone(),
            question,
            export_job,
            notification,
        },
        visitor_token,
    }
}

/// A session of `agent` made in the database, so that revoking it leaves
/// the agent's token alone and costs no login.
async fn unused_session(app: &TestApp, agent: &TestAgent) -> String {
    use contacts::domain::{auth, ids::secret_hash, sessions::SessionClient};
    let db = &app.app_services.db;
    let model = entity::agent::Entity::find_by_id(agent.id.parse::<Uuid>().unwrap())
        .one(db)
        .await
        .unwrap()
        .expect("the agent");
    let issued = auth::issue_token(
        db,
        model,
        Duration::from_secs(3600),
        &SessionClient::default(),
    )
    .await
    .expect("a token");
    entity::access_token::Entity::find()
        .filter(entity::access_token::Column::TokenHash.eq(secret_hash(&issued.token)))
        .one(db)
        .await
        .unwrap()
        .expect("the session")
        .id
        .to_string()
}

fn missing(ids: &Ids) -> Ids {
    Ids {
        project: Uuid::now_v7().to_string(),
        contact: Uuid::now_v7().to_string(),
        other_contact: Uuid::now_v7().to_string(),
        question: Uuid::now_v7().to_string(),
        export_job: Uuid::now_v7().to_string(),
        notification: Uuid::now_v7().to_string(),
        invitation: Uuid::now_v7().to_string(),
        admin_session: Uuid::now_v7().to_string(),
        ..ids.clone()
    }
}

/// Runs a query or mutation over HTTP, a subscription over a websocket.
async fn run(app: &TestApp, row: &Row, token: Option<&str>, ids: &Ids) -> Value {
    let variables = (row.variables)(ids);
    match row.kind {
        Kind::Query | Kind::Mutation => app.graphql(token, row.document, variables).await,
        Kind::Subscription => subscribe(app, row.document, variables, token).await,
    }
}

/// The first answer of a subscription: its error if it fails, `{"data":
/// "subscribed"}` if it is still open after a moment, or an
/// UNAUTHENTICATED error when the connection itself is refused.
async fn subscribe(app: &TestApp, document: &str, variables: Value, token: Option<&str>) -> Value {
    let refused = json!({"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}], "data": null});
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = connect_async(request).await.expect("websocket handshake");
    let payload = match token {
        Some(token) => json!({"authorization": format!("Bearer {token}")}),
        None => json!({}),
    };
    let init = json!({"type": "connection_init", "payload": payload});
    socket.send(Message::text(init.to_string())).await.unwrap();
    let mut acked = false;
    loop {
        let wait = if acked { 700 } else { 10_000 };
        let message = match tokio::time::timeout(Duration::from_millis(wait), socket.next()).await {
            Err(_) if acked => return json!({"data": "subscribed"}),
            Err(_) => panic!("no answer to connection_init"),
            Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(_) => return refused,
        };
        match message["type"].as_str() {
            Some("connection_ack") => {
                acked = true;
                let subscribe = json!({"id": "1", "type": "subscribe",
                    "payload": {"query": document, "variables": variables}});
                socket
                    .send(Message::text(subscribe.to_string()))
                    .await
                    .unwrap();
            }
            Some("connection_error") => return refused,
            Some("next") => return message["payload"].clone(),
            Some("error") => return json!({"errors": message["payload"], "data": null}),
            Some("complete") => return json!({"data": "completed"}),
            _ => continue,
        }
    }
}

fn outcome_of(body: &Value) -> Result<Outcome, String> {
    match body["errors"][0]["extensions"]["code"].as_str() {
        Some(code) => Ok(match code {
            "UNAUTHENTICATED" => UNAUTH,
            "FORBIDDEN" => FORBIDDEN,
            "NOT_FOUND" => NOT_FOUND,
            "BAD_USER_INPUT" => E("BAD_USER_INPUT"),
            "INTERNAL" => E("INTERNAL"),
            other => return Err(format!("unknown code {other}")),
        }),
        None if body["errors"].is_null() && !body["data"].is_null() => Ok(OK),
        None => Err(format!("neither data nor a coded error: {body}")),
    }
}

#[tokio::test]
async fn every_operation_of_the_schema_answers_each_kind_of_caller_as_it_must() {
    // No export workers: the fixture's export stays queued, so cancelling it
    // is always possible.
    // No limit on login attempts: the table logs in and resets passwords
    // far more often than a minute's budget allows.
    let app = spawn_app_with(|settings| {
        settings.exports.workers = 0;
        settings.rate_limits.login_per_ip = 0;
    })
    .await;
    let mut cast = Cast {
        admin: app.agent("admin").await,
        member: app.agent("member").await,
        outsider: app.agent("outsider").await,
        newcomer: app.agent("newcomer").await,
    };
    // The outsider is a member, of another project.
    app.project(&cast.outsider, "Elsewhere").await;

    let table = table();
    let mut failures = Vec::new();
    for row in &table {
        for (caller_index, caller) in CALLERS.iter().enumerate() {
            // A fresh project per call: mutations change or delete what
            // they act on, and tokens get revoked.
            let fixture = fixture(&app, &cast).await;
            let fresh = |agent: &TestAgent| {
                let app = &app;
                let email = agent.email.clone();
                let token = agent.token.clone();
                async move {
                    if row.fresh_tokens {
                        app.login(&email, PASSWORD).await
                    } else {
                        token
                    }
                }
            };
            let token = match caller_index {
                0 => Some(fresh(&cast.admin).await),
                1 => Some(fresh(&cast.member).await),
                2 => Some(fresh(&cast.outsider).await),
                3 => Some(fixture.visitor_token.clone()),
                _ => None,
            };
            let body = run(&app, row, token.as_deref(), &fixture.ids).await;
            let expected = row.expected[caller_index];
            match outcome_of(&body) {
                Ok(outcome) if outcome == expected => {}
                Ok(outcome) => failures.push(format!(
                    "{} as {caller}: expected {expected:?}, got {outcome:?}: {body}",
                    row.operation
                )),
                Err(problem) => failures.push(format!("{} as {caller}: {problem}", row.operation)),
            }
            if row.scoped && caller_index == 2 {
                let for_missing = run(&app, row, token.as_deref(), &missing(&fixture.ids)).await;
                if for_missing != body {
                    failures.push(format!(
                        "{} as a non-member differs from a missing id:\n  foreign: {body}\n  missing: {for_missing}",
                        row.operation
                    ));
                }
            }
            if row.ends_every_session {
                let agent = match caller_index {
                    0 => Some(&mut cast.admin),
                    1 => Some(&mut cast.member),
                    2 => Some(&mut cast.outsider),
                    _ => None,
                };
                if let Some(agent) = agent {
                    agent.token = app.login(&agent.email, PASSWORD).await;
                }
            }
        }
    }

    let listed: BTreeSet<String> = table
        .iter()
        .map(|row| format!("{}.{}", kind_name(row.kind), row.operation))
        .collect();
    let served = schema_operations();
    let unlisted: Vec<&String> = served.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&served).collect();
    assert!(served.contains("Query.contacts") && served.contains("Subscription.membershipChanged"));
    assert!(
        failures.is_empty() && unlisted.is_empty() && stale.is_empty(),
        "authorization table:\n{}\n\noperations of the schema without a row (add one to tests/api/authorization.rs): {unlisted:?}\nrows for operations the schema no longer has: {stale:?}",
        failures.join("\n"),
    );
}
