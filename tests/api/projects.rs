use serde_json::{Value, json};

use crate::helpers::{TestAgent, TestApp, error_code, spawn_app};

const PROJECT: &str = "query($id: ID!) { project(id: $id) { id name publicKey viewerRole members { role agent { email } } } }";
const ADD: &str = "mutation($p: ID!, $e: String!, $r: Role!) { addMember(projectId: $p, email: $e, role: $r) { id email role status } }";
const REMOVE: &str =
    "mutation($p: ID!, $a: ID!) { removeMember(projectId: $p, agentId: $a) { kind } }";
const CHANGE: &str = "mutation($p: ID!, $a: ID!, $r: Role!) { changeRole(projectId: $p, agentId: $a, role: $r) { kind role } }";

#[tokio::test]
async fn the_creator_of_a_project_is_its_admin() {
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    let project_id = app.project(&ana, "Shop").await;
    let body = app
        .graphql(Some(&ana.token), PROJECT, json!({"id": project_id}))
        .await;
    let project = &body["data"]["project"];
    assert_eq!(project["name"], "Shop");
    assert_eq!(project["viewerRole"], "ADMIN");
    assert!(project["publicKey"].as_str().unwrap().starts_with("pk_"));
    assert_eq!(
        project["members"],
        json!([{"role": "ADMIN", "agent": {"email": ana.email}}])
    );

    let listed = app
        .graphql(Some(&ana.token), "{ projects { id } }", json!({}))
        .await;
    assert_eq!(listed["data"]["projects"], json!([{"id": project_id}]));
}

#[tokio::test]
async fn a_non_member_gets_exactly_the_answer_for_a_missing_project() {
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    let bob = app.agent("bob").await;
    let project_id = app.project(&ana, "Shop").await;
    let missing_id = uuid::Uuid::now_v7().to_string();

    let foreign = app
        .graphql(Some(&bob.token), PROJECT, json!({"id": project_id}))
        .await;
    let missing = app
        .graphql(Some(&bob.token), PROJECT, json!({"id": missing_id}))
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert_eq!(
        foreign["errors"][0]["message"],
        missing["errors"][0]["message"]
    );
    assert_eq!(foreign["data"], missing["data"]);

    // Mutations on a foreign project say the same.
    let add = app
        .graphql(
            Some(&bob.token),
            ADD,
            json!({"p": project_id, "e": bob.email, "r": "ADMIN"}),
        )
        .await;
    assert_eq!(error_code(&add), "NOT_FOUND");
    let listed = app
        .graphql(Some(&bob.token), "{ projects { id } }", json!({}))
        .await;
    assert_eq!(listed["data"]["projects"], json!([]));
}

#[tokio::test]
async fn a_malformed_id_is_bad_input() {
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    let body = app
        .graphql(Some(&ana.token), PROJECT, json!({"id": "not-an-id"}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    // Refused before execution, naming the argument as the schema does.
    assert_eq!(body["errors"][0]["extensions"]["field"], "id");
}

/// Who may do what to a project's membership: each row is an actor, an
/// operation, and the expected code (None for success).
#[tokio::test]
async fn membership_operations_by_role() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let agent = app.agent("agent").await;
    let outsider = app.agent("outsider").await;
    let newcomer = app.agent("newcomer").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &agent, "AGENT").await;

    let cases: Vec<(&TestAgent, &str, Value, Option<&str>)> = vec![
        (
            &agent,
            ADD,
            json!({"p": project_id, "e": newcomer.email, "r": "AGENT"}),
            Some("FORBIDDEN"),
        ),
        (
            &outsider,
            ADD,
            json!({"p": project_id, "e": newcomer.email, "r": "AGENT"}),
            Some("NOT_FOUND"),
        ),
        (
            &agent,
            CHANGE,
            json!({"p": project_id, "a": agent.id, "r": "ADMIN"}),
            Some("FORBIDDEN"),
        ),
        (
            &agent,
            REMOVE,
            json!({"p": project_id, "a": admin.id}),
            Some("FORBIDDEN"),
        ),
        (
            &outsider,
            REMOVE,
            json!({"p": project_id, "a": agent.id}),
            Some("NOT_FOUND"),
        ),
        // An address without an account is invited like any other.
        (
            &admin,
            ADD,
            json!({"p": project_id, "e": "nobody@example.com", "r": "AGENT"}),
            None,
        ),
        (
            &admin,
            ADD,
            json!({"p": project_id, "e": agent.email, "r": "AGENT"}),
            Some("BAD_USER_INPUT"),
        ),
        // Invited, not yet a member: there is no role to change.
        (
            &admin,
            CHANGE,
            json!({"p": project_id, "a": newcomer.id, "r": "ADMIN"}),
            Some("NOT_FOUND"),
        ),
    ];
    run_cases(&app, cases).await;
    app.add_member(&admin, &project_id, &newcomer, "AGENT")
        .await;
    let cases: Vec<(&TestAgent, &str, Value, Option<&str>)> = vec![
        (
            &admin,
            CHANGE,
            json!({"p": project_id, "a": newcomer.id, "r": "ADMIN"}),
            None,
        ),
        (
            &admin,
            REMOVE,
            json!({"p": project_id, "a": outsider.id}),
            Some("NOT_FOUND"),
        ),
        (
            &admin,
            REMOVE,
            json!({"p": project_id, "a": agent.id}),
            None,
        ),
    ];
    run_cases(&app, cases).await;
    let members = member_roles(&app, &admin, &project_id).await;
    assert_eq!(
        members,
        vec![
            (admin.email.clone(), "ADMIN".to_owned()),
            (newcomer.email.clone(), "ADMIN".to_owned())
        ]
    );
}

/// Runs each case as its actor: `None` expects success, `Some` the code.
async fn run_cases(app: &TestApp, cases: Vec<(&TestAgent, &str, Value, Option<&str>)>) {
    for (actor, operation, variables, expected) in cases {
        let body = app
            .graphql(Some(&actor.token), operation, variables.clone())
            .await;
        match expected {
            Some(code) => assert_eq!(error_code(&body), code, "{operation} {variables}: {body}"),
            None => assert!(body["errors"].is_null(), "{operation} {variables}: {body}"),
        }
    }
}

async fn member_roles(
    app: &TestApp,
    viewer: &TestAgent,
    project_id: &str,
) -> Vec<(String, String)> {
    let body = app
        .graphql(Some(&viewer.token), PROJECT, json!({"id": project_id}))
        .await;
    let mut roles: Vec<(String, String)> = body["data"]["project"]["members"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|m| {
            (
                m["agent"]["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    roles.sort();
    roles
}

#[tokio::test]
async fn the_last_admin_can_be_neither_removed_nor_demoted() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let agent = app.agent("agent").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &agent, "AGENT").await;

    let remove = app
        .graphql(
            Some(&admin.token),
            REMOVE,
            json!({"p": project_id, "a": admin.id}),
        )
        .await;
    assert_eq!(error_code(&remove), "BAD_USER_INPUT", "{remove}");
    assert!(
        remove["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at least one admin")
    );
    let demote = app
        .graphql(
            Some(&admin.token),
            CHANGE,
            json!({"p": project_id, "a": admin.id, "r": "AGENT"}),
        )
        .await;
    assert_eq!(error_code(&demote), "BAD_USER_INPUT");
    assert_eq!(member_roles(&app, &admin, &project_id).await[0].1, "ADMIN");

    // With a second admin, the first may leave.
    let promote = app
        .graphql(
            Some(&admin.token),
            CHANGE,
            json!({"p": project_id, "a": agent.id, "r": "ADMIN"}),
        )
        .await;
    assert_eq!(
        promote["data"]["changeRole"],
        json!({"kind": "ROLE_CHANGED", "role": "ADMIN"})
    );
    let leave = app
        .graphql(
            Some(&admin.token),
            REMOVE,
            json!({"p": project_id, "a": admin.id}),
        )
        .await;
    assert_eq!(leave["data"]["removeMember"]["kind"], "REMOVED", "{leave}");
    let gone = app
        .graphql(Some(&admin.token), PROJECT, json!({"id": project_id}))
        .await;
    assert_eq!(error_code(&gone), "NOT_FOUND");
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    let first = app.agent("first").await;
    let second = app.agent("second").await;
    let project_id = app.project(&first, "Shop").await;
    app.add_member(&first, &project_id, &second, "ADMIN").await;

    let (a, b) = tokio::join!(
        app.graphql(
            Some(&first.token),
            CHANGE,
            json!({"p": project_id, "a": second.id, "r": "AGENT"})
        ),
        app.graphql(
            Some(&second.token),
            CHANGE,
            json!({"p": project_id, "a": first.id, "r": "AGENT"})
        ),
    );
    let succeeded = [&a, &b]
        .iter()
        .filter(|body| body["errors"].is_null())
        .count();
    assert_eq!(succeeded, 1, "{a} {b}");
    let admins = member_roles(&app, &first, &project_id)
        .await
        .into_iter()
        .filter(|(_, role)| role == "ADMIN")
        .count();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn only_admins_read_the_secret_key_and_agents_get_null() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let agent = app.agent("agent").await;
    let project_id = app.project(&admin, "Shop").await;
    app.add_member(&admin, &project_id, &agent, "AGENT").await;
    let query = "query($id: ID!) { project(id: $id) { secretKey } }";
    let as_admin = app
        .graphql(Some(&admin.token), query, json!({"id": project_id}))
        .await;
    assert!(
        as_admin["data"]["project"]["secretKey"]
            .as_str()
            .unwrap()
            .starts_with("sk_")
    );
    // Null without an error, so the agents' app can select it for both.
    let as_agent = app
        .graphql(Some(&agent.token), query, json!({"id": project_id}))
        .await;
    assert!(as_agent["errors"].is_null(), "{as_agent}");
    assert!(
        as_agent["data"]["project"]["secretKey"].is_null(),
        "{as_agent}"
    );
}

#[tokio::test]
async fn a_project_name_is_validated() {
    let app = spawn_app().await;
    let ana = app.agent("ana").await;
    for name in ["", "   ", &"x".repeat(201), "bad\u{0007}name"] {
        let body = app
            .graphql(
                Some(&ana.token),
                "mutation($n: String!) { createProject(name: $n) { id } }",
                json!({"n": name}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name:?}");
    }
    let listed = app
        .graphql(Some(&ana.token), "{ projects { id } }", json!({}))
        .await;
    assert_eq!(listed["data"]["projects"], json!([]));
}
