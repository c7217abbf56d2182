use entity::{chat, contact, contact_event};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{TestAgent, TestApp, error_code, public_key, spawn_app};

const CREATE: &str = "mutation($p: ID!, $q: FormQuestionInput!) { createFormQuestion(projectId: $p, input: $q) { id key kind targetField targetAttribute options position required } }";
const FORM: &str = "{ contactForm { complete questions { key label kind required options } } }";
const SUBMIT: &str = "mutation($a: [FormAnswerInput!]!) { submitContactForm(answers: $a) { complete contact { name email phone company } remaining { key } } }";
const START: &str = "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId visitorToken contact { name email } } }";

struct Project {
    admin: TestAgent,
    id: String,
    key: String,
}

async fn project_with_form(app: &TestApp) -> Project {
    let admin = app.agent("admin").await;
    let id = app.project(&admin, "Shop").await;
    let key = public_key(app, &admin, &id).await;
    let questions = [
        json!({"key": "name", "label": "Your name", "kind": "TEXT", "target": {"field": "NAME"}, "required": true}),
        json!({"key": "email", "label": "Email", "kind": "EMAIL", "target": {"field": "EMAIL"}}),
        json!({"key": "phone", "label": "Phone", "kind": "PHONE", "target": {"field": "PHONE"}}),
        json!({"key": "plan", "label": "Plan", "kind": "SELECT", "target": {"attribute": "plan"}, "options": ["Free", "Pro"]}),
        json!({"key": "seats", "label": "Seats", "kind": "NUMBER", "target": {"attribute": "seats"}}),
        json!({"key": "newsletter", "label": "Newsletter?", "kind": "CHECKBOX", "target": {"attribute": "newsletter"}}),
    ];
    for question in questions {
        let body = app
            .graphql(Some(&admin.token), CREATE, json!({"p": id, "q": question}))
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    Project { admin, id, key }
}

/// Starts a chat from 127.0.0.1 as the browser `visitor` and returns the
/// visitor token.
async fn start(app: &TestApp, key: &str, visitor: &str) -> String {
    let body = app
        .start_chat_as(visitor, &[], START, json!({"projectKey": key}))
        .await;
    body["data"]["startChat"]["visitorToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn submit(app: &TestApp, token: &str, answers: Value) -> Value {
    app.graphql(Some(token), SUBMIT, json!({"a": answers}))
        .await
}

fn keys(questions: &Value) -> Vec<String> {
    questions
        .as_array()
        .unwrap_or_else(|| panic!("{questions}"))
        .iter()
        .map(|q| q["key"].as_str().unwrap().to_owned())
        .collect()
}

async fn contacts(app: &TestApp) -> Vec<contact::Model> {
    contact::Entity::find()
        .order_by_asc(contact::Column::CreatedAt)
        .all(&app.app_services.db)
        .await
        .unwrap()
}

async fn events(app: &TestApp, contact_id: uuid::Uuid) -> Vec<contact_event::Model> {
    contact_event::Entity::find()
        .filter(contact_event::Column::ContactId.eq(contact_id))
        .order_by_asc(contact_event::Column::Id)
        .all(&app.app_services.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn admins_configure_questions_with_validation() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let listed = app
        .graphql(
            Some(&project.admin.token),
            "query($p: ID!) { formQuestions(projectId: $p) { id key position } }",
            json!({"p": project.id}),
        )
        .await;
    let questions = listed["data"]["formQuestions"].as_array().unwrap().clone();
    assert_eq!(
        keys(&listed["data"]["formQuestions"]),
        ["name", "email", "phone", "plan", "seats", "newsletter"]
    );

    let invalid = [
        (
            json!({"key": "plan2", "label": "Plan", "kind": "SELECT", "target": {"attribute": "plan2"}}),
            "options",
        ),
        (
            json!({"key": "other_email", "label": "Email", "kind": "EMAIL", "target": {"field": "EMAIL"}}),
            "target",
        ),
        (
            json!({"key": "mail", "label": "Email", "kind": "TEXT", "target": {"field": "PHONE"}}),
            "kind",
        ),
        (
            json!({"key": "name", "label": "Again", "kind": "TEXT", "target": {"attribute": "nick"}}),
            "key",
        ),
        (
            json!({"key": "Bad Key", "label": "x", "kind": "TEXT", "target": {"attribute": "x"}}),
            "key",
        ),
        (
            json!({"key": "size", "label": "", "kind": "TEXT", "target": {"attribute": "size"}}),
            "label",
        ),
        (
            json!({"key": "size", "label": "Size", "kind": "NUMBER", "target": {"attribute": "size"}, "options": ["1"]}),
            "options",
        ),
    ];
    for (question, field) in invalid {
        let body = app
            .graphql(
                Some(&project.admin.token),
                CREATE,
                json!({"p": project.id, "q": question}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{question}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{question}"
        );
    }

    // Reorder: the last question first.
    let mut ids: Vec<Value> = questions.iter().map(|q| q["id"].clone()).collect();
    ids.rotate_right(1);
    let reordered = app
        .graphql(Some(&project.admin.token), "mutation($p: ID!, $ids: [ID!]!) { reorderFormQuestions(projectId: $p, ids: $ids) { key } }", json!({"p": project.id, "ids": ids}))
        .await;
    assert_eq!(
        keys(&reordered["data"]["reorderFormQuestions"])[0],
        "newsletter"
    );
    let partial = app
        .graphql(Some(&project.admin.token), "mutation($p: ID!, $ids: [ID!]!) { reorderFormQuestions(projectId: $p, ids: $ids) { key } }", json!({"p": project.id, "ids": [ids[0]]}))
        .await;
    assert_eq!(error_code(&partial), "BAD_USER_INPUT");

    // Update and delete.
    let plan_id = questions[3]["id"].clone();
    let updated = app
        .graphql(Some(&project.admin.token), "mutation($id: ID!) { updateFormQuestion(id: $id, input: {label: \"Your plan\", options: [\"Free\", \"Pro\", \"Team\"]}) { label options } }", json!({"id": plan_id}))
        .await;
    assert_eq!(
        updated["data"]["updateFormQuestion"],
        json!({"label": "Your plan", "options": ["Free", "Pro", "Team"]})
    );
    let deleted = app
        .graphql(
            Some(&project.admin.token),
            "mutation($id: ID!) { deleteFormQuestion(id: $id) }",
            json!({"id": plan_id}),
        )
        .await;
    assert_eq!(deleted["data"]["deleteFormQuestion"], plan_id);
}

#[tokio::test]
async fn agents_may_read_but_not_change_the_form_and_outsiders_see_nothing() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let agent = app.agent("agent").await;
    app.add_member(&project.admin, &project.id, &agent, "AGENT")
        .await;
    let outsider = app.agent("outsider").await;
    let question =
        json!({"key": "city", "label": "City", "kind": "TEXT", "target": {"attribute": "city"}});
    let as_agent = app
        .graphql(
            Some(&agent.token),
            CREATE,
            json!({"p": project.id, "q": question}),
        )
        .await;
    assert_eq!(error_code(&as_agent), "FORBIDDEN");
    let as_outsider = app
        .graphql(
            Some(&outsider.token),
            CREATE,
            json!({"p": project.id, "q": question}),
        )
        .await;
    assert_eq!(error_code(&as_outsider), "NOT_FOUND");
    let read = app
        .graphql(
            Some(&agent.token),
            "query($p: ID!) { formQuestions(projectId: $p) { key } }",
            json!({"p": project.id}),
        )
        .await;
    assert_eq!(keys(&read["data"]["formQuestions"]).len(), 6);
}

#[tokio::test]
async fn the_form_asks_only_what_is_missing_until_complete() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let token = start(&app, &project.key, "visitor-1").await;

    let form = app.graphql(Some(&token), FORM, json!({})).await;
    assert_eq!(form["data"]["contactForm"]["complete"], false);
    assert_eq!(
        keys(&form["data"]["contactForm"]["questions"]),
        ["name", "email", "phone", "plan", "seats", "newsletter"]
    );

    let body = submit(&app, &token, json!([{"key": "name", "value": " Ana Gómez "}, {"key": "email", "value": "Ana@Example.COM"}])).await;
    let payload = &body["data"]["submitContactForm"];
    assert_eq!(payload["contact"]["name"], "Ana Gómez", "{body}");
    assert_eq!(payload["contact"]["email"], "ana@example.com");
    assert_eq!(
        keys(&payload["remaining"]),
        ["phone", "plan", "seats", "newsletter"]
    );

    let form = app.graphql(Some(&token), FORM, json!({})).await;
    assert_eq!(
        keys(&form["data"]["contactForm"]["questions"]),
        ["phone", "plan", "seats", "newsletter"]
    );

    let body = submit(
        &app,
        &token,
        json!([
            {"key": "phone", "value": "+34 612 34 56 78"},
            {"key": "plan", "value": "Pro"},
            {"key": "seats", "value": "12"},
            {"key": "newsletter", "value": "true"},
        ]),
    )
    .await;
    assert_eq!(
        body["data"]["submitContactForm"]["complete"], true,
        "{body}"
    );
    assert_eq!(
        body["data"]["submitContactForm"]["contact"]["phone"],
        "+34612345678"
    );
    let form = app.graphql(Some(&token), FORM, json!({})).await;
    assert_eq!(
        form["data"]["contactForm"],
        json!({"complete": true, "questions": []})
    );

    // Custom attributes keep their type.
    let contact = &contacts(&app).await[0];
    assert_eq!(
        contact.custom_attributes,
        json!({"plan": "Pro", "seats": 12.0, "newsletter": true})
    );

    // The same visitor on a new chat is not asked again.
    let again = start(&app, &project.key, "visitor-1").await;
    let form = app.graphql(Some(&again), FORM, json!({})).await;
    assert_eq!(form["data"]["contactForm"]["complete"], true);
}

#[tokio::test]
async fn every_validation_error_names_the_field_and_writes_nothing() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let token = start(&app, &project.key, "visitor-1").await;
    let good_name = json!({"key": "name", "value": "Ana"});
    let cases = [
        (
            json!([good_name, {"key": "email", "value": "not-an-email"}]),
            "answers.email",
        ),
        (
            json!([good_name, {"key": "phone", "value": "12"}]),
            "answers.phone",
        ),
        (
            json!([good_name, {"key": "seats", "value": "many"}]),
            "answers.seats",
        ),
        (
            json!([good_name, {"key": "plan", "value": "Enterprise"}]),
            "answers.plan",
        ),
        (
            json!([good_name, {"key": "newsletter", "value": "yes"}]),
            "answers.newsletter",
        ),
        (
            json!([good_name, {"key": "shoe_size", "value": "42"}]),
            "answers.shoe_size",
        ),
        (
            json!([good_name, {"key": "name", "value": "Again"}]),
            "answers.name",
        ),
        (
            json!([{"key": "email", "value": "ana@example.com"}]),
            "answers.name",
        ),
        (json!([{"key": "name", "value": "   "}]), "answers.name"),
        (
            json!([{"key": "name", "value": "x".repeat(1001)}]),
            "answers.name",
        ),
    ];
    for (answers, field) in cases {
        let body = submit(&app, &token, answers.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{answers}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{answers}");
    }
    let contact = &contacts(&app).await[0];
    assert_eq!(
        (contact.name.as_ref(), contact.email.as_ref()),
        (None, None)
    );
    assert_eq!(contact.custom_attributes, json!({}));
    let kinds: Vec<String> = events(&app, contact.id)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["CREATED"]);
}

#[tokio::test]
async fn form_changes_are_recorded_and_a_visitor_may_correct_its_own_answer() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let token = start(&app, &project.key, "visitor-1").await;
    submit(
        &app,
        &token,
        json!([{"key": "name", "value": "Ana"}, {"key": "email", "value": "ana@example.com"}]),
    )
    .await;
    let body = submit(
        &app,
        &token,
        json!([{"key": "email", "value": "ana.gomez@example.com"}]),
    )
    .await;
    assert_eq!(
        body["data"]["submitContactForm"]["contact"]["email"], "ana.gomez@example.com",
        "{body}"
    );

    let contact = &contacts(&app).await[0];
    let chat_id = chat::Entity::find()
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    let history: Vec<_> = events(&app, contact.id)
        .await
        .into_iter()
        .map(|e| {
            (
                e.kind,
                e.actor_type,
                e.actor_id,
                e.field,
                e.old_value,
                e.new_value,
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            (
                "CREATED".into(),
                "VISITOR".into(),
                Some(chat_id),
                None,
                None,
                None
            ),
            (
                "FORM_SYNC".into(),
                "VISITOR".into(),
                Some(chat_id),
                Some("name".into()),
                None,
                Some(json!("Ana"))
            ),
            (
                "FORM_SYNC".into(),
                "VISITOR".into(),
                Some(chat_id),
                Some("email".into()),
                None,
                Some(json!("ana@example.com"))
            ),
            (
                "FORM_SYNC".into(),
                "VISITOR".into(),
                Some(chat_id),
                Some("email".into()),
                Some(json!("ana@example.com")),
                Some(json!("ana.gomez@example.com"))
            ),
        ]
    );
}

#[tokio::test]
async fn a_typed_email_of_another_contact_makes_possible_duplicates_not_a_merge() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let first = start(&app, &project.key, "laptop").await;
    submit(
        &app,
        &first,
        json!([{"key": "name", "value": "Ana"}, {"key": "email", "value": "ana@example.com"}]),
    )
    .await;
    let second = start(&app, &project.key, "phone").await;
    let body = submit(
        &app,
        &second,
        json!([{"key": "name", "value": "Ana G"}, {"key": "email", "value": "ANA@example.com"}]),
    )
    .await;
    // The visitor is shown what it typed, nothing of the other contact.
    assert_eq!(
        body["data"]["submitContactForm"]["contact"],
        json!({"name": "Ana G", "email": "ana@example.com", "phone": null, "company": null}),
        "{body}"
    );
    let both = contacts(&app).await;
    assert_eq!(both.len(), 2, "a typed email merges nothing");
    let laptop = app.contact_of_browser("laptop").await;
    let phone = app.contact_of_browser("phone").await;
    assert_ne!(laptop.id, phone.id);
    let duplicates = "query($id: ID!) { contact(id: $id) { possibleDuplicates { id } } }";
    for (contact, other) in [(&laptop, &phone), (&phone, &laptop)] {
        let body = app
            .graphql(
                Some(&project.admin.token),
                duplicates,
                json!({"id": contact.id.to_string()}),
            )
            .await;
        assert_eq!(
            body["data"]["contact"]["possibleDuplicates"],
            json!([{"id": other.id.to_string()}]),
            "{body}"
        );
    }
    let kinds: Vec<String> = events(&app, laptop.id)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(!kinds.contains(&"MERGE".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn concurrent_submits_of_one_email_pair_every_contact_with_every_other() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let mut tokens = Vec::new();
    for n in 0..6 {
        tokens.push(start(&app, &project.key, &format!("device-{n}")).await);
    }
    let submits = tokens.iter().map(|token| {
        submit(
            &app,
            token,
            json!([{"key": "name", "value": "Sam"}, {"key": "email", "value": "sam@example.com"}]),
        )
    });
    for body in futures_util::future::join_all(submits).await {
        assert!(body["errors"].is_null(), "{body}");
    }
    let all = contacts(&app).await;
    assert_eq!(all.len(), 6);
    // Each submit waits for the others with the same email, so none misses
    // a pair: 6 contacts, 15 pairs.
    assert_eq!(
        entity::contact_duplicate::Entity::find()
            .count(&app.app_services.db)
            .await
            .unwrap(),
        15
    );
}

fn signed(identifier: &str, secret: &str) -> String {
    contacts::domain::identity::sign(identifier, secret).unwrap()
}

async fn secret_key(app: &TestApp, project: &Project) -> String {
    app.graphql(
        Some(&project.admin.token),
        "query($id: ID!) { project(id: $id) { secretKey } }",
        json!({"id": project.id}),
    )
    .await["data"]["project"]["secretKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn identified_visitors_are_the_same_contact_on_every_device() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let secret = secret_key(&app, &project).await;
    let identity = |signature: Option<String>| json!({"identifier": "user-42", "email": "sam@example.com", "name": "Sam", "signature": signature});

    // A wrong signature is refused and writes nothing.
    let body = app
        .graphql(None, START, json!({"i": {"projectKey": project.key, "identity": identity(Some(signed("user-42", "sk_wrong")))}}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "identity.signature"
    );
    assert!(contacts(&app).await.is_empty());

    // Without a signature the identity is ignored.
    let body = app
        .start_chat_as(
            "laptop",
            &[],
            START,
            json!({"projectKey": project.key, "identity": identity(None)}),
        )
        .await;
    assert_eq!(
        body["data"]["startChat"]["contact"]["email"],
        Value::Null,
        "{body}"
    );

    for device in ["laptop", "phone"] {
        let body = app
            .start_chat_as(
                device,
                &[],
                START,
                json!({"projectKey": project.key, "identity": identity(Some(signed("user-42", &secret)))}),
            )
            .await;
        assert_eq!(
            body["data"]["startChat"]["contact"]["email"], "sam@example.com",
            "{body}"
        );
        let token = body["data"]["startChat"]["visitorToken"].as_str().unwrap();
        let form = app.graphql(Some(token), FORM, json!({})).await;
        assert_eq!(
            keys(&form["data"]["contactForm"]["questions"]),
            ["phone", "plan", "seats", "newsletter"]
        );
    }
    let all = contacts(&app).await;
    assert_eq!(all.len(), 1, "the phone's contact is the laptop's");
    assert_eq!(all[0].external_id.as_deref(), Some("user-42"));
}

#[tokio::test]
async fn contacts_of_different_verified_people_are_never_merged() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let secret = secret_key(&app, &project).await;
    let mut tokens = Vec::new();
    for user in ["user-1", "user-2"] {
        let body = app
            .start_chat_as(
                user,
                &[],
                START,
                json!({"projectKey": project.key, "identity": {"identifier": user, "signature": signed(user, &secret)}}),
            )
            .await;
        tokens.push(
            body["data"]["startChat"]["visitorToken"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for token in &tokens {
        let body = submit(&app, token, json!([{"key": "name", "value": "Shared"}, {"key": "email", "value": "family@example.com"}])).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    assert_eq!(contacts(&app).await.len(), 2);
}

#[tokio::test]
async fn a_visitor_token_reaches_its_own_form_and_nothing_else() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let other = project_with_form(&app).await;
    let mine = start(&app, &project.key, "me").await;
    let theirs = start(&app, &other.key, "them").await;
    submit(&app, &theirs, json!([{"key": "name", "value": "Them"}])).await;

    submit(&app, &mine, json!([{"key": "name", "value": "Me"}])).await;
    let all = contacts(&app).await;
    assert_eq!(
        app.contact_of_browser("me").await.name.as_deref(),
        Some("Me")
    );
    assert_eq!(
        app.contact_of_browser("them").await.name.as_deref(),
        Some("Them")
    );

    let agent_operations = [
        (
            "query($p: ID!) { formQuestions(projectId: $p) { key } }",
            json!({"p": project.id}),
        ),
        (
            "query($p: ID!) { project(id: $p) { name } }",
            json!({"p": project.id}),
        ),
        ("{ me { id } }", json!({})),
        (
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({"id": all[0].id.to_string()}),
        ),
        (
            CREATE,
            json!({"p": project.id, "q": {"key": "x", "label": "x", "kind": "TEXT", "target": {"attribute": "x"}}}),
        ),
    ];
    for (operation, variables) in agent_operations {
        let body = app.graphql(Some(&mine), operation, variables).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{operation}: {body}");
    }
    for token in [None, Some("vt_forged"), Some(project.admin.token.as_str())] {
        let body = app.graphql(token, FORM, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{token:?}");
        let body = app.graphql(token, SUBMIT, json!({"a": []})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{token:?}");
    }
}

#[tokio::test]
async fn a_value_an_agent_entered_is_never_overwritten_by_the_form() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let token = start(&app, &project.key, "visitor-1").await;
    // The visitor's own answer first, then the agent corrects it.
    submit(
        &app,
        &token,
        json!([{"key": "name", "value": "anita"}, {"key": "email", "value": "anita@example.com"}]),
    )
    .await;
    let id = contacts(&app).await[0].id.to_string();
    let edit = app
        .graphql(
            Some(&project.admin.token),
            "mutation($id: ID!) { updateContact(id: $id, input: {name: \"Ana García\"}) { name } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        edit["data"]["updateContact"]["name"], "Ana García",
        "{edit}"
    );

    let body = submit(&app, &token, json!([{"key": "name", "value": "Someone Else"}, {"key": "email", "value": "ana.g@example.com"}])).await;
    // The visitor sees its own answers, never the agent's value...
    let own = &body["data"]["submitContactForm"]["contact"];
    assert_eq!(own["name"], "Someone Else", "{body}");
    // ...while the contact keeps what the agent entered, and the form's
    // own earlier answer may still be corrected.
    let stored = &contacts(&app).await[0];
    assert_eq!(stored.name.as_deref(), Some("Ana García"));
    assert_eq!(stored.email.as_deref(), Some("ana.g@example.com"));
    let history: Vec<(String, String)> = events(&app, contacts(&app).await[0].id)
        .await
        .into_iter()
        .filter(|e| e.field.as_deref() == Some("name"))
        .map(|e| (e.kind, e.actor_type))
        .collect();
    assert_eq!(
        history,
        [
            ("FORM_SYNC".to_owned(), "VISITOR".to_owned()),
            ("AGENT_EDIT".to_owned(), "AGENT".to_owned())
        ]
    );
}

#[tokio::test]
async fn agents_correct_custom_attributes_validated_like_the_form() {
    let app = spawn_app().await;
    let project = project_with_form(&app).await;
    let token = start(&app, &project.key, "visitor-1").await;
    submit(
        &app,
        &token,
        json!([{"key": "name", "value": "Ana"}, {"key": "plan", "value": "Free"}, {"key": "seats", "value": "2"}]),
    )
    .await;
    let id = contacts(&app).await[0].id.to_string();
    let update = "mutation($id: ID!, $a: [CustomAttributeInput!]) {
        updateContact(id: $id, input: {customAttributes: $a}) { customAttributes } }";

    // The form's rules, with the field named; one bad value and nothing
    // of the edit is written.
    for (attributes, field) in [
        (
            json!([{"key": "plan", "value": "Gold"}, {"key": "seats", "value": "3"}]),
            "customAttributes.plan",
        ),
        (
            json!([{"key": "seats", "value": "many"}]),
            "customAttributes.seats",
        ),
        (
            json!([{"key": "nickname", "value": "x"}]),
            "customAttributes.nickname",
        ),
    ] {
        let body = app
            .graphql(
                Some(&project.admin.token),
                update,
                json!({"id": id, "a": attributes}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(
        contacts(&app).await[0].custom_attributes,
        json!({"plan": "Free", "seats": 2.0})
    );

    let body = app
        .graphql(
            Some(&project.admin.token),
            update,
            json!({"id": id, "a": [{"key": "plan", "value": "Pro"}, {"key": "seats", "value": null}]}),
        )
        .await;
    assert_eq!(
        body["data"]["updateContact"]["customAttributes"],
        json!({"plan": "Pro"}),
        "{body}"
    );
    let history: Vec<(String, String, Option<Value>)> = events(&app, contacts(&app).await[0].id)
        .await
        .into_iter()
        .filter(|e| e.kind == "AGENT_EDIT")
        .map(|e| (e.field.unwrap_or_default(), e.actor_type, e.new_value))
        .collect();
    assert_eq!(
        history,
        [
            (
                "attributes.plan".to_owned(),
                "AGENT".to_owned(),
                Some(json!("Pro"))
            ),
            ("attributes.seats".to_owned(), "AGENT".to_owned(), None),
        ]
    );

    // The agent's value stays; the cleared attribute is a gap the form
    // fills again.
    submit(
        &app,
        &token,
        json!([{"key": "plan", "value": "Free"}, {"key": "seats", "value": "5"}]),
    )
    .await;
    assert_eq!(
        contacts(&app).await[0].custom_attributes,
        json!({"plan": "Pro", "seats": 5.0})
    );
}
