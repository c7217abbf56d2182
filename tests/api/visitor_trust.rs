//! The visitor trust model, attacked the way the public widget API was seen
//! attacked: a visitor reaches only what it gave itself, typed identifiers
//! never join contacts, merges happen on a verified identity or by an
//! agent, every change is announced, and a deletion erases the person.

use std::time::Duration;

use contacts::domain::events::{ContactChangeKind, Event};
use entity::{chat, contact, contact_event};
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestAgent, TestApp, error_code, public_key, spawn_app};

const START: &str = "mutation($i: StartChatInput!) { startChat(input: $i) {
    visitorId visitorToken contact { name email phone company } } }";
const SUBMIT: &str = "mutation($a: [FormAnswerInput!]!) { submitContactForm(answers: $a) {
    complete contact { name email phone company } remaining { key } } }";
const FORM: &str =
    "{ contactForm { complete questions { key } contact { name email phone company } } }";
const DETAIL: &str = "query($id: ID!) { contact(id: $id) {
    id name email phone company customAttributes
    possibleDuplicates { id email }
    chats { edges { node { id } } }
    history(first: 100) { events { kind field newValue } } } }";

struct Shop {
    admin: TestAgent,
    id: String,
    key: String,
}

async fn shop(app: &TestApp) -> Shop {
    let admin = app.agent("admin").await;
    let id = app.project(&admin, "Shop").await;
    let key = public_key(app, &admin, &id).await;
    let questions = [
        json!({"key": "name", "label": "Name", "kind": "TEXT", "target": {"field": "NAME"}}),
        json!({"key": "email", "label": "Email", "kind": "EMAIL", "target": {"field": "EMAIL"}}),
        json!({"key": "phone", "label": "Phone", "kind": "PHONE", "target": {"field": "PHONE"}}),
        json!({"key": "company", "label": "Company", "kind": "TEXT", "target": {"field": "COMPANY"}}),
        json!({"key": "plan", "label": "Plan", "kind": "SELECT", "target": {"attribute": "plan"}, "options": ["Free", "Pro"]}),
    ];
    for question in questions {
        let body = app
            .graphql(
                Some(&admin.token),
                "mutation($p: ID!, $q: FormQuestionInput!) { createFormQuestion(projectId: $p, input: $q) { id } }",
                json!({"p": id, "q": question}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    Shop { admin, id, key }
}

/// Starts a chat as `browser` and returns the whole startChat payload.
async fn start(app: &TestApp, shop: &Shop, browser: &str, extra: Value) -> Value {
    let mut input = json!({"projectKey": shop.key});
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    let body = app.start_chat_as(browser, &[], START, input).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["startChat"].clone()
}

fn token(payload: &Value) -> &str {
    payload["visitorToken"].as_str().expect("a visitor token")
}

async fn submit(app: &TestApp, visitor_token: &str, answers: Value) -> Value {
    let body = app
        .graphql(Some(visitor_token), SUBMIT, json!({"a": answers}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["submitContactForm"].clone()
}

async fn detail(app: &TestApp, agent: &TestAgent, id: Uuid) -> Value {
    let body = app
        .graphql(Some(&agent.token), DETAIL, json!({"id": id.to_string()}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["contact"].clone()
}

const VICTIM: [(&str, &str); 4] = [
    ("name", "Victoria Cliente"),
    ("email", "victoria@customer.example"),
    ("phone", "+34612345678"),
    ("company", "Cliente SL"),
];

fn victim_answers() -> Value {
    json!(
        VICTIM
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect::<Vec<_>>()
    )
}

/// Whether any of the victim's values appear anywhere in `answer`.
fn leaks_victim(answer: &Value) -> Option<&'static str> {
    let text = answer.to_string().to_lowercase();
    VICTIM
        .iter()
        .find(|(key, value)| *key != "email" && text.contains(&value.to_lowercase()))
        .map(|(_, value)| *value)
}

#[tokio::test]
async fn typing_a_customers_email_reveals_nothing_of_the_customer_and_joins_nothing() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    // The customer, from an old widget that chose its own id.
    let victim = start(&app, &shop, "victim", json!({"visitorId": "browser-123"})).await;
    submit(&app, token(&victim), victim_answers()).await;
    let victim_contact = app.contact_of_browser("victim").await;

    // The attacker, a new visitor, types the customer's email.
    let attacker = start(&app, &shop, "attacker", json!({})).await;
    let answered = submit(
        &app,
        token(&attacker),
        json!([{"key": "email", "value": "VICTORIA@customer.example"}]),
    )
    .await;
    assert_eq!(leaks_victim(&answered), None, "{answered}");
    assert_eq!(
        answered["contact"],
        json!({"name": null, "email": "victoria@customer.example", "phone": null, "company": null})
    );
    // Which questions remain says nothing of the customer either.
    assert_eq!(
        answered["remaining"],
        json!([{"key": "name"}, {"key": "phone"}, {"key": "company"}, {"key": "plan"}])
    );
    let form = app.graphql(Some(token(&attacker)), FORM, json!({})).await;
    assert_eq!(leaks_victim(&form), None, "{form}");

    // Nothing merged: two contacts, the customer's untouched.
    let attacker_contact = app.contact_of_browser("attacker").await;
    assert_ne!(attacker_contact.id, victim_contact.id);
    let db = &app.app_services.db;
    let stored = contact::Entity::find_by_id(victim_contact.id)
        .one(db)
        .await
        .unwrap()
        .expect("the customer's contact is still there");
    assert_eq!(stored.name.as_deref(), Some("Victoria Cliente"));
    assert_eq!(
        chat::Entity::find()
            .filter(chat::Column::ContactId.eq(victim_contact.id))
            .count(db)
            .await
            .unwrap(),
        1
    );

    // The id the customer's widget once chose is no credential: starting
    // with it reaches a new visitor, not the customer.
    for guessed in ["browser-123", victim_contact.id.to_string().as_str()] {
        let body = app
            .graphql(
                None,
                START,
                json!({"i": {"projectKey": shop.key, "visitorId": guessed}}),
            )
            .await;
        let payload = &body["data"]["startChat"];
        assert_eq!(leaks_victim(payload), None, "{body}");
        assert_eq!(
            payload["contact"],
            json!({"name": null, "email": null, "phone": null, "company": null})
        );
        let form = app.graphql(Some(token(payload)), FORM, json!({})).await;
        assert_eq!(
            form["data"]["contactForm"]["questions"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
    }
    // The customer's own browser still finds its contact with its credential.
    let back = start(&app, &shop, "victim", json!({})).await;
    assert_eq!(back["contact"]["name"], "Victoria Cliente");
    assert_eq!(app.contact_of_browser("victim").await.id, victim_contact.id);

    // Agents see the two as possible duplicates, on both sides.
    let seen = detail(&app, &shop.admin, victim_contact.id).await;
    assert_eq!(
        seen["possibleDuplicates"],
        json!([{"id": attacker_contact.id.to_string(), "email": "victoria@customer.example"}])
    );
    let seen = detail(&app, &shop.admin, attacker_contact.id).await;
    assert_eq!(
        seen["possibleDuplicates"][0]["id"],
        victim_contact.id.to_string()
    );
}

#[tokio::test]
async fn a_typed_phone_of_a_customer_reveals_nothing_either() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let victim = start(&app, &shop, "victim", json!({})).await;
    submit(&app, token(&victim), victim_answers()).await;
    let attacker = start(&app, &shop, "attacker", json!({})).await;
    let answered = submit(
        &app,
        token(&attacker),
        json!([{"key": "phone", "value": "+34 612 34 56 78"}]),
    )
    .await;
    assert_eq!(answered["contact"]["email"], Value::Null, "{answered}");
    assert_eq!(answered["contact"]["name"], Value::Null);
    assert_eq!(
        contact::Entity::find()
            .count(&app.app_services.db)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn the_visitor_is_never_shown_what_an_agent_stored() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let visitor = start(&app, &shop, "browser", json!({})).await;
    submit(
        &app,
        token(&visitor),
        json!([{"key": "name", "value": "Ana"}]),
    )
    .await;
    let id = app.contact_of_browser("browser").await.id;
    let edit = app
        .graphql(
            Some(&shop.admin.token),
            "mutation($id: ID!) { updateContact(id: $id, input: {name: \"Ana García (VIP, refund pending)\", email: \"ana.private@example.com\", company: \"Internal note\"}) { id } }",
            json!({"id": id.to_string()}),
        )
        .await;
    assert!(edit["errors"].is_null(), "{edit}");

    let again = start(&app, &shop, "browser", json!({})).await;
    assert_eq!(
        again["contact"],
        json!({"name": "Ana", "email": null, "phone": null, "company": null}),
        "{again}"
    );
    let form = app.graphql(Some(token(&again)), FORM, json!({})).await;
    let form = &form["data"]["contactForm"];
    assert_eq!(form["contact"]["name"], "Ana");
    assert_eq!(form["contact"]["email"], Value::Null);
    // The email and company questions are still asked: the agent's values
    // are invisible to the visitor, so their presence is too.
    assert_eq!(
        form["questions"],
        json!([{"key": "email"}, {"key": "phone"}, {"key": "company"}, {"key": "plan"}])
    );
    // Answering them keeps the agent's values on the contact.
    let answered = submit(
        &app,
        token(&again),
        json!([{"key": "email", "value": "ana@example.com"}]),
    )
    .await;
    assert_eq!(answered["contact"]["email"], "ana@example.com");
    let stored = contact::Entity::find_by_id(id)
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.email.as_deref(), Some("ana.private@example.com"));
}

fn signed(identifier: &str, secret: &str) -> String {
    contacts::domain::identity::sign(identifier, secret).unwrap()
}

async fn secret_key(app: &TestApp, shop: &Shop) -> String {
    app.graphql(
        Some(&shop.admin.token),
        "query($id: ID!) { project(id: $id) { secretKey } }",
        json!({"id": shop.id}),
    )
    .await["data"]["project"]["secretKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Reads contact changes from the bus until every expected one arrived
/// (each waited for at most a few seconds), and returns all it read: on
/// PostgreSQL, changes of earlier operations may still be on their way.
async fn await_changes(
    events: &mut futures_util::stream::BoxStream<'static, Event>,
    expected: &[(Uuid, ContactChangeKind)],
) -> Vec<(Uuid, ContactChangeKind)> {
    let mut received = Vec::new();
    while !expected.iter().all(|change| received.contains(change)) {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap_or_else(|_| panic!("expected {expected:?}, received only {received:?}"))
            .expect("the bus is open");
        if let Event::ContactChanged(change) = event {
            received.push((change.contact_id, change.kind));
        }
    }
    received
}

#[tokio::test]
async fn a_verified_identity_merges_devices_and_every_change_is_announced() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let secret = secret_key(&app, &shop).await;
    let identity = json!({"identity": {"identifier": "user-42", "email": "sam@example.com", "signature": signed("user-42", &secret)}});

    let laptop = start(&app, &shop, "laptop", identity.clone()).await;
    submit(
        &app,
        token(&laptop),
        json!([{"key": "name", "value": "Sam"}, {"key": "plan", "value": "Pro"}]),
    )
    .await;
    let sam = app.contact_of_browser("laptop").await;

    // The phone was used anonymously first: a contact of its own.
    let phone = start(&app, &shop, "phone", json!({})).await;
    submit(
        &app,
        token(&phone),
        json!([{"key": "company", "value": "Sam's shop"}]),
    )
    .await;
    let anonymous_phone = app.contact_of_browser("phone").await;
    assert_ne!(anonymous_phone.id, sam.id);

    // Signing in on the phone merges its contact into the identity's, and
    // says so: merged and removed, not created.
    let mut events = app.app_services.bus.subscribe();
    let signed_in = start(&app, &shop, "phone", identity.clone()).await;
    let announced = await_changes(
        &mut events,
        &[
            (anonymous_phone.id, ContactChangeKind::Deleted),
            (sam.id, ContactChangeKind::Merged),
        ],
    )
    .await;
    assert!(
        !announced.contains(&(sam.id, ContactChangeKind::Created)),
        "{announced:?}"
    );
    // Under the identity the phone is shown what the identity gave, on any
    // device: the site's email and the laptop's answers.
    assert_eq!(
        signed_in["contact"],
        json!({"name": "Sam", "email": "sam@example.com", "phone": null, "company": null}),
        "{signed_in}"
    );
    assert_eq!(app.contact_of_browser("phone").await.id, sam.id);
    let merged = detail(&app, &shop.admin, sam.id).await;
    assert_eq!(merged["company"], "Sam's shop");
    assert_eq!(merged["chats"]["edges"].as_array().unwrap().len(), 3);

    // The same phone without the identity is the browser again, which
    // answered only the company.
    let anonymous_again = start(&app, &shop, "phone", json!({})).await;
    assert_eq!(
        anonymous_again["contact"],
        json!({"name": null, "email": null, "phone": null, "company": "Sam's shop"})
    );
}

#[tokio::test]
async fn a_form_answer_matching_two_contacts_announces_all_three() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    for browser in ["first", "second"] {
        let started = start(&app, &shop, browser, json!({})).await;
        submit(
            &app,
            token(&started),
            json!([{"key": "email", "value": "shared@example.com"}]),
        )
        .await;
    }
    let (first, second) = (
        app.contact_of_browser("first").await.id,
        app.contact_of_browser("second").await.id,
    );
    let third = start(&app, &shop, "third", json!({})).await;
    let mut events = app.app_services.bus.subscribe();
    submit(
        &app,
        token(&third),
        json!([{"key": "email", "value": "shared@example.com"}]),
    )
    .await;
    let third_id = app.contact_of_browser("third").await.id;
    await_changes(
        &mut events,
        &[
            (first, ContactChangeKind::Updated),
            (second, ContactChangeKind::Updated),
            (third_id, ContactChangeKind::Updated),
        ],
    )
    .await;
    let seen = detail(&app, &shop.admin, third_id).await;
    assert_eq!(seen["possibleDuplicates"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn agents_merge_possible_duplicates_target_first_and_refuse_two_verified_people() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let secret = secret_key(&app, &shop).await;
    let older = start(&app, &shop, "older", json!({})).await;
    submit(
        &app,
        token(&older),
        json!([{"key": "name", "value": "Ana"}, {"key": "email", "value": "ana@example.com"}, {"key": "plan", "value": "Free"}]),
    )
    .await;
    let newer = start(&app, &shop, "newer", json!({})).await;
    submit(
        &app,
        token(&newer),
        json!([{"key": "name", "value": "Ana G"}, {"key": "email", "value": "ana@example.com"}, {"key": "phone", "value": "+34612345678"}, {"key": "plan", "value": "Pro"}]),
    )
    .await;
    let target = app.contact_of_browser("newer").await;
    let source = app.contact_of_browser("older").await;

    let merge = "mutation($t: ID!, $s: ID!) { mergeContacts(targetId: $t, sourceId: $s) {
        id name email phone customAttributes possibleDuplicates { id } } }";
    let outsider = app.agent("outsider").await;
    app.project(&outsider, "Other").await;
    let refused = app
        .graphql(
            Some(&outsider.token),
            merge,
            json!({"t": target.id.to_string(), "s": source.id.to_string()}),
        )
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");
    let itself = app
        .graphql(
            Some(&shop.admin.token),
            merge,
            json!({"t": target.id.to_string(), "s": target.id.to_string()}),
        )
        .await;
    assert_eq!(error_code(&itself), "BAD_USER_INPUT");

    let mut events = app.app_services.bus.subscribe();
    let body = app
        .graphql(
            Some(&shop.admin.token),
            merge,
            json!({"t": target.id.to_string(), "s": source.id.to_string()}),
        )
        .await;
    // The target's values win where set; custom attributes join, target first.
    assert_eq!(
        body["data"]["mergeContacts"],
        json!({"id": target.id.to_string(), "name": "Ana G", "email": "ana@example.com",
               "phone": "+34612345678", "customAttributes": {"plan": "Pro"}, "possibleDuplicates": []}),
        "{body}"
    );
    await_changes(
        &mut events,
        &[
            (source.id, ContactChangeKind::Deleted),
            (target.id, ContactChangeKind::Merged),
        ],
    )
    .await;
    let db = &app.app_services.db;
    assert!(
        contact::Entity::find_by_id(source.id)
            .one(db)
            .await
            .unwrap()
            .is_none()
    );
    // Chats and history moved; both histories record the merge.
    assert_eq!(
        chat::Entity::find()
            .filter(chat::Column::ContactId.eq(target.id))
            .count(db)
            .await
            .unwrap(),
        2
    );
    let seen = detail(&app, &shop.admin, target.id).await;
    let kinds: Vec<&str> = seen["history"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"MERGE"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "CREATED").count(),
        2,
        "the source's history moved over: {kinds:?}"
    );
    let source_record = contact_event::Entity::find()
        .filter(contact_event::Column::ContactId.eq(source.id))
        .all(db)
        .await
        .unwrap();
    assert_eq!(source_record.len(), 1);
    assert_eq!(source_record[0].field.as_deref(), Some("mergedInto"));
    // Both browsers now reach the target.
    assert_eq!(app.contact_of_browser("older").await.id, target.id);

    // Two different verified people never merge.
    let mut verified = Vec::new();
    for user in ["user-1", "user-2"] {
        let identity =
            json!({"identity": {"identifier": user, "signature": signed(user, &secret)}});
        start(&app, &shop, user, identity).await;
        verified.push(app.contact_of_browser(user).await.id);
    }
    let body = app
        .graphql(
            Some(&shop.admin.token),
            merge,
            json!({"t": verified[0].to_string(), "s": verified[1].to_string()}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "sourceId");
    assert_eq!(
        contact::Entity::find()
            .filter(contact::Column::Id.is_in(verified.clone()))
            .count(db)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn agents_may_share_an_email_between_contacts_and_dismiss_the_pair() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let mut ids = Vec::new();
    for browser in ["a", "b"] {
        start(&app, &shop, browser, json!({})).await;
        ids.push(app.contact_of_browser(browser).await.id);
    }
    let update = "mutation($id: ID!) { updateContact(id: $id, input: {email: \"Shared@Example.com\"}) { email possibleDuplicates { id } } }";
    for id in &ids {
        let body = app
            .graphql(
                Some(&shop.admin.token),
                update,
                json!({"id": id.to_string()}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let seen = detail(&app, &shop.admin, ids[0]).await;
    assert_eq!(seen["possibleDuplicates"][0]["id"], ids[1].to_string());
    let dismiss = "mutation($c: ID!, $o: ID!) { dismissDuplicate(contactId: $c, otherId: $o) { id possibleDuplicates { id } } }";
    let body = app
        .graphql(
            Some(&shop.admin.token),
            dismiss,
            json!({"c": ids[1].to_string(), "o": ids[0].to_string()}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    for id in &ids {
        assert_eq!(
            detail(&app, &shop.admin, *id).await["possibleDuplicates"],
            json!([])
        );
    }
    // A dismissed pair stays dismissed when the value is typed again.
    let again = app
        .graphql(
            Some(&shop.admin.token),
            update,
            json!({"id": ids[0].to_string()}),
        )
        .await;
    assert!(again["errors"].is_null(), "{again}");
    let body = app
        .graphql(
            Some(&shop.admin.token),
            dismiss,
            json!({"c": ids[0].to_string(), "o": Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

/// Every row of every table, as text, to search for what must be gone.
async fn everything_stored(app: &TestApp) -> String {
    let db = &app.app_services.db;
    let tables = [
        "agents",
        // Without the client of each session: an agent's own address
        // (127.0.0.1 here too) is not the visitor's.
        "(SELECT id, agent_id, token_hash, created_at, expires_at, revoked_at, last_used_at FROM access_tokens) AS sessions",
        "projects",
        "memberships",
        "contacts",
        "chats",
        "visitors",
        "contact_duplicates",
        "form_questions",
        "contact_events",
        "export_jobs",
        "notifications",
        "project_allowed_origins",
        "invitations",
        "password_resets",
    ];
    let mut dump = String::new();
    for table in tables {
        let rows = Value::find_by_statement(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT * FROM {table}"),
        ))
        .all(db)
        .await
        .unwrap();
        dump.push_str(&serde_json::to_string(&rows).unwrap());
    }
    dump
}

#[tokio::test]
async fn deleting_a_contact_erases_the_person_and_keeps_only_who_deleted_it_and_when() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let started = app
        .start_chat_as(
            "doomed",
            &[("user-agent", "PersonalBrowser/9.9 (Unique Build 4242)")],
            START,
            json!({"projectKey": shop.key}),
        )
        .await;
    let visitor = &started["data"]["startChat"];
    submit(&app, token(visitor), victim_answers()).await;
    // Changed twice, so that old values sit in the history too.
    let id = app.contact_of_browser("doomed").await.id;
    let edit = app
        .graphql(
            Some(&shop.admin.token),
            "mutation($id: ID!) { updateContact(id: $id, input: {name: \"Victoria C. Cliente\"}) { id } }",
            json!({"id": id.to_string()}),
        )
        .await;
    assert!(edit["errors"].is_null(), "{edit}");
    let credential = app.visitor_credential("doomed").unwrap();
    let before = everything_stored(&app).await;
    for present in ["Victoria Cliente", "PersonalBrowser", "127.0.0.1"] {
        assert!(before.contains(present), "{present} was never stored");
    }

    let body = app
        .graphql(
            Some(&shop.admin.token),
            "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }",
            json!({"id": id.to_string()}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    let after = everything_stored(&app).await;
    for gone in [
        "Victoria Cliente",
        "Victoria C. Cliente",
        "victoria@customer.example",
        "+34612345678",
        "Cliente SL",
        "PersonalBrowser",
        "127.0.0.1",
    ] {
        assert!(!after.contains(gone), "{gone} outlived the deletion");
    }
    let kept = contact_event::Entity::find()
        .filter(contact_event::Column::ContactId.eq(id))
        .all(&app.app_services.db)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].kind, "DELETED");
    assert_eq!(
        kept[0].actor_id.map(|a| a.to_string()),
        Some(shop.admin.id.clone())
    );
    assert_eq!(
        (kept[0].old_value.clone(), kept[0].new_value.clone()),
        (None, None)
    );

    // The deleted person's browser is a stranger now.
    let returning = app
        .graphql(
            None,
            START,
            json!({"i": {"projectKey": shop.key, "visitorId": credential}}),
        )
        .await;
    assert_eq!(
        returning["data"]["startChat"]["contact"],
        json!({"name": null, "email": null, "phone": null, "company": null}),
        "{returning}"
    );
}
