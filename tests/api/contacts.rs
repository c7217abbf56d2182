//! The contacts section: list, search, filters, pagination, detail, edit,
//! delete, and what a page costs in SQL statements.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use entity::{chat, contact, contact_event};
use futures_util::StreamExt;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use contacts::domain::events::{ContactChangeKind, Event};

use crate::helpers::{TestAgent, TestApp, error_code, public_key, spawn_app, spawn_app_with};
use crate::statements::StatementCounter;

const LIST: &str = "query($p: ID!, $first: Int, $after: String, $last: Int, $before: String,
                          $filter: ContactFilterInput, $order: ContactOrderInput) {
    contacts(projectId: $p, first: $first, after: $after, last: $last, before: $before,
             filter: $filter, orderBy: $order) {
        edges { cursor node { id name email } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    } }";

/// What a test contact holds; the rest of the row gets plain defaults.
#[derive(Clone, Default)]
struct Spec {
    name: Option<&'static str>,
    email: Option<&'static str>,
    phone: Option<&'static str>,
    country: Option<&'static str>,
    state: Option<(&'static str, &'static str)>,
    /// Seconds after a fixed instant, so ties and order are under control.
    created: i64,
    last_seen: i64,
}

fn instant(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// Inserts a contact as the service stores them, bypassing the widget so
/// that each field can be chosen.
async fn insert_contact(app: &TestApp, project_id: &str, spec: &Spec) -> contact::Model {
    let id = Uuid::now_v7();
    contact::ActiveModel {
        id: Set(id),
        project_id: Set(project_id.parse().unwrap()),
        name: Set(spec.name.map(str::to_owned)),
        email: Set(spec.email.map(str::to_owned)),
        phone: Set(spec.phone.map(str::to_owned)),
        company: Set(None),
        custom_attributes: Set(json!({})),
        last_ip: Set(None),
        country_code: Set(spec.country.map(str::to_owned)),
        country_name: Set(None),
        state_name: Set(spec.state.map(|(name, _)| name.to_owned())),
        state_code: Set(spec.state.map(|(_, code)| code.to_owned())),
        province_name: Set(None),
        province_code: Set(None),
        city: Set(None),
        postal_code: Set(None),
        time_zone: Set(None),
        latitude: Set(None),
        longitude: Set(None),
        accuracy_radius_km: Set(None),
        location_corrected: Set(false),
        external_id: Set(None),
        field_sources: Set(json!({})),
        first_seen_at: Set(instant(spec.created)),
        last_seen_at: Set(instant(spec.last_seen)),
        created_at: Set(instant(spec.created)),
        updated_at: Set(instant(spec.created)),
    }
    .insert(&app.app_services.db)
    .await
    .unwrap()
}

async fn insert_chat(app: &TestApp, contact: &contact::Model, started: i64) -> chat::Model {
    chat::ActiveModel {
        id: Set(Uuid::now_v7()),
        project_id: Set(contact.project_id),
        contact_id: Set(contact.id),
        visitor_id: Set(None),
        started_at: Set(instant(started)),
        ip: Set(None),
        user_agent: Set(None),
        location: Set(None),
        visitor_token_hash: Set(Uuid::now_v7().simple().to_string()),
    }
    .insert(&app.app_services.db)
    .await
    .unwrap()
}

async fn setup() -> (TestApp, TestAgent, String) {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    (app, admin, project_id)
}

async fn list(app: &TestApp, agent: &TestAgent, variables: Value) -> Value {
    let body = app
        .graphql(Some(&agent.token), LIST, variables.clone())
        .await;
    assert!(body["errors"].is_null(), "{variables}: {body}");
    body["data"]["contacts"].clone()
}

fn ids_of(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Names and emails with ties and gaps; created_at with ties.
fn varied_specs() -> Vec<Spec> {
    let names = [
        Some("Ana"),
        Some("Bruno"),
        None,
        Some("Carla"),
        Some("Ana"),
        None,
        Some("Zoe"),
        Some("Bruno"),
    ];
    let emails = [
        Some("ana@example.com"),
        None,
        Some("carla@example.com"),
        None,
        Some("bruno@example.com"),
        Some("zoe@example.com"),
    ];
    (0..23)
        .map(|i| Spec {
            name: names[i % names.len()],
            email: emails[i % emails.len()],
            created: (i as i64 / 3) * 60,
            last_seen: 10_000 - (i as i64 % 5) * 7,
            ..Default::default()
        })
        .collect()
}

/// The order the service promises: by key, then id; empty keys last in
/// both directions.
fn expected_order(contacts: &[contact::Model], field: &str, direction: &str) -> Vec<String> {
    let key = |contact: &contact::Model| -> Option<String> {
        match field {
            "CREATED_AT" => Some(contact.created_at.to_rfc3339()),
            "LAST_SEEN_AT" => Some(contact.last_seen_at.to_rfc3339()),
            "NAME" => contact.name.clone(),
            _ => contact.email.clone(),
        }
    };
    let mut sorted: Vec<&contact::Model> = contacts.iter().collect();
    sorted.sort_by(|a, b| {
        let by_key = match (key(a), key(b)) {
            (Some(x), Some(y)) => (x, a.id).cmp(&(y, b.id)),
            (Some(_), None) => return std::cmp::Ordering::Less,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (None, None) => a.id.cmp(&b.id),
        };
        if direction == "DESC" {
            by_key.reverse()
        } else {
            by_key
        }
    });
    // Empty keys stay last whatever the direction: move them after.
    let (mut keyed, missing): (Vec<_>, Vec<_>) = sorted
        .into_iter()
        .partition(|contact| key(contact).is_some());
    let mut missing = missing;
    missing.sort_by_key(|contact| contact.id);
    if direction == "DESC" {
        missing.reverse();
    }
    keyed.extend(missing);
    keyed
        .into_iter()
        .map(|contact| contact.id.to_string())
        .collect()
}

#[tokio::test]
async fn paging_forwards_and_backwards_visits_every_contact_once_while_contacts_arrive() {
    let (app, admin, _) = setup().await;
    let arrivals = [
        Spec {
            name: Some("Aaron"),
            email: Some("aaron@example.com"),
            created: 100_000,
            last_seen: 0,
            ..Default::default()
        },
        Spec {
            name: Some("Zz"),
            email: None,
            created: 30,
            last_seen: 20_000,
            ..Default::default()
        },
        Spec {
            name: None,
            email: Some("a@example.com"),
            created: -5,
            last_seen: 9_999,
            ..Default::default()
        },
    ];
    let mut arrived = 0;
    for field in ["CREATED_AT", "LAST_SEEN_AT", "NAME", "EMAIL"] {
        for direction in ["ASC", "DESC"] {
            // A project per order, so that arrivals do not pile up.
            let project_id = app.project(&admin, "Shop").await;
            let mut initial = Vec::new();
            for spec in varied_specs() {
                initial.push(insert_contact(&app, &project_id, &spec).await);
            }
            let expected = expected_order(&initial, field, direction);
            let order = json!({"field": field, "direction": direction});
            let initial_ids: HashSet<&String> = expected.iter().collect();

            let mut forwards = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = list(
                    &app,
                    &admin,
                    json!({"p": project_id, "first": 4, "after": after, "order": order}),
                )
                .await;
                forwards.extend(ids_of(&page));
                assert!(forwards.len() < 500, "{field} {direction}: no end in sight");
                assert_eq!(page["pageInfo"]["hasPreviousPage"], after.is_some());
                if page["pageInfo"]["hasNextPage"] == false {
                    break;
                }
                after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
                // New contacts land before, inside and after the part read.
                let spec = &arrivals[arrived % arrivals.len()];
                insert_contact(&app, &project_id, spec).await;
                arrived += 1;
            }
            let mut backwards = Vec::new();
            let mut before: Option<String> = None;
            loop {
                let page = list(
                    &app,
                    &admin,
                    json!({"p": project_id, "last": 5, "before": before, "order": order}),
                )
                .await;
                let mut ids = ids_of(&page);
                ids.extend(backwards);
                backwards = ids;
                assert!(
                    backwards.len() < 500,
                    "{field} {direction}: no start in sight"
                );
                if page["pageInfo"]["hasPreviousPage"] == false {
                    break;
                }
                assert_eq!(page["pageInfo"]["hasNextPage"], before.is_some());
                before = page["pageInfo"]["startCursor"].as_str().map(str::to_owned);
                let spec = &arrivals[arrived % arrivals.len()];
                insert_contact(&app, &project_id, spec).await;
                arrived += 1;
            }
            for (walk, seen) in [("forwards", &forwards), ("backwards", &backwards)] {
                let unique: HashSet<&String> = seen.iter().collect();
                assert_eq!(
                    unique.len(),
                    seen.len(),
                    "{field} {direction} {walk}: a contact came twice"
                );
                let of_initial: Vec<String> = seen
                    .iter()
                    .filter(|id| initial_ids.contains(id))
                    .cloned()
                    .collect();
                assert_eq!(of_initial, expected, "{field} {direction} {walk}");
            }
        }
    }
    assert!(arrived > 10);
}

#[tokio::test]
async fn null_names_and_emails_come_last_in_both_directions() {
    let (app, admin, project_id) = setup().await;
    for spec in varied_specs().into_iter().take(6) {
        insert_contact(&app, &project_id, &spec).await;
    }
    for direction in ["ASC", "DESC"] {
        let page = list(
            &app,
            &admin,
            json!({"p": project_id, "first": 10, "order": {"field": "NAME", "direction": direction}}),
        )
        .await;
        let names: Vec<Value> = page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["name"].clone())
            .collect();
        let first_null = names.iter().position(Value::is_null).unwrap();
        assert!(names[first_null..].iter().all(Value::is_null), "{names:?}");
        assert_eq!(first_null, 4, "{names:?}");
    }
}

fn filter_specs() -> Vec<Spec> {
    vec![
        Spec {
            name: Some("Ana García"),
            email: Some("ana.garcia@shop.es"),
            phone: Some("+34612345678"),
            country: Some("ES"),
            state: Some(("Andalusia", "AN")),
            created: 0,
            ..Default::default()
        },
        Spec {
            name: Some("GARCÍA Lopez"),
            email: None,
            phone: Some("+34699000111"),
            country: Some("ES"),
            state: Some(("Madrid", "MD")),
            created: 3_600,
            ..Default::default()
        },
        Spec {
            name: Some("John Smith"),
            email: Some("john@garcia-consulting.com"),
            phone: None,
            country: Some("US"),
            state: Some(("California", "CA")),
            created: 7_200,
            ..Default::default()
        },
        Spec {
            name: None,
            email: Some("50%_off@deals.com"),
            phone: Some("+14155552671"),
            country: Some("US"),
            state: Some(("California", "CA")),
            created: 10_800,
            ..Default::default()
        },
        Spec {
            name: Some("Marta Rossi"),
            email: Some("marta@example.it"),
            phone: None,
            country: Some("IT"),
            state: Some(("Lazio", "62")),
            created: 14_400,
            ..Default::default()
        },
        Spec {
            name: None,
            email: None,
            phone: None,
            country: None,
            state: None,
            created: 18_000,
            ..Default::default()
        },
        Spec {
            name: Some("5000 Offers"),
            email: Some("offers@deals.com"),
            phone: Some("+34612000999"),
            country: Some("ES"),
            state: Some(("Andalusia", "AN")),
            created: 21_600,
            ..Default::default()
        },
    ]
}

#[tokio::test]
async fn filters_and_search_return_exactly_the_matching_contacts() {
    let (app, admin, project_id) = setup().await;
    let specs = filter_specs();
    let mut ids = Vec::new();
    for spec in &specs {
        ids.push(insert_contact(&app, &project_id, spec).await.id.to_string());
    }
    // Another project's contacts never show up.
    let other = app.project(&admin, "Other shop").await;
    for spec in &specs {
        insert_contact(&app, &other, spec).await;
    }
    let cases: Vec<(Value, Vec<usize>)> = vec![
        (json!({}), vec![0, 1, 2, 3, 4, 5, 6]),
        // Name, email and phone, in any case.
        (json!({"search": "garc"}), vec![0, 1, 2]),
        (json!({"search": "  SMITH "}), vec![2]),
        (json!({"search": "deals.com"}), vec![3, 6]),
        // Wildcards in the term match themselves.
        (json!({"search": "50%_"}), vec![3]),
        (json!({"search": "%"}), vec![3]),
        (json!({"search": "_"}), vec![3]),
        // Phones by their digits, however they are typed.
        (json!({"search": "612 34"}), vec![0]),
        (json!({"search": "+34 612"}), vec![0, 6]),
        (json!({"search": "(415) 555"}), vec![3]),
        (json!({"search": "nobody"}), vec![]),
        (json!({"countryCode": "es"}), vec![0, 1, 6]),
        (json!({"state": "CA"}), vec![2, 3]),
        (json!({"state": "Andalusia"}), vec![0, 6]),
        (json!({"countryCode": "ES", "state": "MD"}), vec![1]),
        (json!({"hasEmail": true}), vec![0, 2, 3, 4, 6]),
        (json!({"hasEmail": false}), vec![1, 5]),
        (json!({"hasPhone": true}), vec![0, 1, 3, 6]),
        (json!({"hasPhone": false}), vec![2, 4, 5]),
        (
            json!({"createdFrom": instant(3_600), "createdTo": instant(14_400)}),
            vec![1, 2, 3],
        ),
        (json!({"createdFrom": instant(18_000)}), vec![5, 6]),
        (json!({"createdTo": instant(1)}), vec![0]),
        // Plain dates are whole days in the filter's time zone (UTC by
        // default); a date `createdTo` includes its day.
        (
            json!({"createdFrom": "2026-01-01", "createdTo": "2026-01-01"}),
            vec![0, 1, 2, 3, 4, 5, 6],
        ),
        (json!({"createdTo": "2025-12-31"}), vec![]),
        (
            json!({"createdFrom": "2026-01-01", "timeZone": "America/Los_Angeles"}),
            vec![],
        ),
        (
            json!({"createdTo": "2025-12-31", "timeZone": "America/Los_Angeles"}),
            vec![0, 1, 2, 3, 4, 5, 6],
        ),
        (
            json!({"search": "a", "hasPhone": true, "countryCode": "ES"}),
            vec![0, 1, 6],
        ),
    ];
    for (filter, wanted) in cases {
        for order in ["NAME", "EMAIL", "CREATED_AT"] {
            let page = list(
                &app,
                &admin,
                json!({"p": project_id, "first": 100, "filter": filter,
                       "order": {"field": order, "direction": "ASC"}}),
            )
            .await;
            let got: HashSet<String> = ids_of(&page).into_iter().collect();
            let expected: HashSet<String> = wanted.iter().map(|i| ids[*i].clone()).collect();
            assert_eq!(got, expected, "filter {filter} by {order}");
        }
        let body = app
            .graphql(
                Some(&admin.token),
                "query($p: ID!, $f: ContactFilterInput) { contacts(projectId: $p, first: 1, filter: $f) { totalCount } }",
                json!({"p": project_id, "f": filter}),
            )
            .await;
        assert_eq!(
            body["data"]["contacts"]["totalCount"],
            wanted.len(),
            "{filter}: {body}"
        );
    }
}

#[tokio::test]
async fn bad_page_sizes_cursors_and_filters_are_bad_input() {
    let (app, admin, project_id) = setup().await;
    insert_contact(&app, &project_id, &Spec::default()).await;
    let by_name = list(
        &app,
        &admin,
        json!({"p": project_id, "first": 1, "order": {"field": "NAME", "direction": "ASC"}}),
    )
    .await;
    let name_cursor = by_name["edges"][0]["cursor"].clone();
    let cases = [
        (json!({"first": 101}), "first"),
        (json!({"last": 500}), "last"),
        (json!({"first": -1}), "first"),
        (json!({"first": 5, "last": 5}), "last"),
        (json!({"first": 5, "before": name_cursor}), "last"),
        (json!({"after": "garbage"}), "after"),
        // A cursor of the name order does not fit the default order.
        (json!({"after": name_cursor}), "after"),
        (
            json!({"filter": {"countryCode": "Spain"}}),
            "filter.countryCode",
        ),
        (
            json!({"filter": {"createdFrom": instant(10), "createdTo": instant(5)}}),
            "filter.createdTo",
        ),
        (
            json!({"filter": {"createdFrom": "01/01/2026"}}),
            "filter.createdFrom",
        ),
        (
            json!({"filter": {"createdTo": "2026-01-01", "timeZone": "Mars/Olympus"}}),
            "filter.timeZone",
        ),
    ];
    for (mut variables, field) in cases {
        variables["p"] = json!(project_id);
        let body = app
            .graphql(Some(&admin.token), LIST, variables.clone())
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        assert!(body["data"].is_null(), "{body}");
    }
    let body = app
        .graphql(
            Some(&admin.token),
            LIST,
            json!({"p": project_id, "first": 100}),
        )
        .await;
    assert!(body["errors"].is_null(), "100 is allowed: {body}");
}

#[tokio::test]
async fn a_page_with_nested_lists_costs_a_fixed_number_of_statements() {
    let counter = StatementCounter::installed();

    // Counted with the token and membership read on every request.
    let app = spawn_app_with(|settings| settings.access_cache = std::time::Duration::ZERO).await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    for i in 0..100 {
        let contact = insert_contact(
            &app,
            &project_id,
            &Spec {
                name: Some("Ana"),
                created: i,
                ..Default::default()
            },
        )
        .await;
        for started in 0..(i % 3) {
            insert_chat(&app, &contact, started).await;
        }
    }
    let query = "query($p: ID!, $n: Int) { contacts(projectId: $p, first: $n) {
        edges { node { id name latestChat { id startedAt } chats(first: 2) { edges { node { id } } }
                       history(first: 3) { events { kind } hasNextPage } } }
        pageInfo { hasNextPage } } }";
    let mut costs = Vec::new();
    for n in [1, 10, 100] {
        // Batches close after a time window: a stalled machine may split
        // one in two, never make one per contact. The fewest of three runs
        // is what the page costs by design.
        let mut fewest = usize::MAX;
        for _ in 0..3 {
            let (body, count) = counter
                .run(&app, &admin.token, query, json!({"p": project_id, "n": n}))
                .await;
            assert!(body["errors"].is_null(), "{body}");
            assert_eq!(
                body["data"]["contacts"]["edges"].as_array().unwrap().len(),
                n as usize
            );
            fewest = fewest.min(count);
        }
        costs.push(fewest);
    }
    let page = counter
        .run(
            &app,
            &admin.token,
            query,
            json!({"p": project_id, "n": 100}),
        )
        .await
        .0;
    let with_chats = page["data"]["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|edge| !edge["node"]["latestChat"].is_null())
        .count();
    assert_eq!(with_chats, 66, "contacts with chats get their latest one");
    // The token with its agent, the membership check, the page, then one
    // batch each for the latest chat, the first chats and the history.
    assert_eq!(costs[0], 6, "statements for a page of one");
    // A batch that a stalled scheduler closes early splits in two: at most
    // one more statement per loader, never one per contact.
    assert!(
        costs.iter().all(|&count| count <= 6 + 3),
        "statements per page size 1, 10, 100: {costs:?}"
    );

    // totalCount and hasPreviousPage cost one statement each, only when asked.
    let cursor =
        list(&app, &admin, json!({"p": project_id, "first": 20})).await["edges"][10]["cursor"]
            .clone();
    let mut costs = Vec::new();
    for fields in [
        "edges { cursor }",
        "totalCount pageInfo { hasPreviousPage }",
    ] {
        let query = format!(
            "query($p: ID!, $a: String) {{ contacts(projectId: $p, first: 5, after: $a) {{ {fields} }} }}"
        );
        let (body, count) = counter
            .run(
                &app,
                &admin.token,
                &query,
                json!({"p": project_id, "a": cursor}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        costs.push(count);
    }
    // Authentication, membership and the page; then two more when asked.
    assert_eq!(costs, vec![3, 5]);
}

const CONTACT: &str = "query($id: ID!, $after: String, $hafter: ID) { contact(id: $id) {
    id name email phone company customAttributes location { countryCode city }
    chats(first: 2, after: $after) { edges { cursor node { id startedAt } } pageInfo { hasNextPage endCursor } }
    latestChat { id }
    history(first: 2, after: $hafter) { events { id kind actorType actorId field oldValue newValue } hasNextPage endCursor }
} }";

#[tokio::test]
async fn the_detail_shows_chats_location_attributes_and_history_in_pages() {
    let (app, admin, project_id) = setup().await;
    let key = public_key(&app, &admin, &project_id).await;
    let start = "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId chat { id } } }";
    for _ in 0..3 {
        let body = app
            .start_chat_as("visitor-1", &[], start, json!({"projectKey": key}))
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let stored = contact::Entity::find()
        .filter(contact::Column::ProjectId.eq(project_id.parse::<Uuid>().unwrap()))
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap();
    let id = stored.id.to_string();
    for (i, name) in ["Ana", "Ana María", "Ana M."].iter().enumerate() {
        let body = app
            .graphql(
                Some(&admin.token),
                "mutation($id: ID!, $n: String, $c: String) { updateContact(id: $id, input: {name: $n, company: $c, location: {countryCode: \"ES\", city: \"Málaga\"}}) { id } }",
                json!({"id": id, "n": name, "c": format!("Shop {i}")}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = app
        .graphql(Some(&admin.token), CONTACT, json!({"id": id}))
        .await;
    let detail = &body["data"]["contact"];
    assert_eq!(detail["name"], "Ana M.", "{body}");
    assert_eq!(detail["company"], "Shop 2");
    assert_eq!(detail["customAttributes"], json!({}));
    assert_eq!(
        detail["location"],
        json!({"countryCode": "ES", "city": "Málaga"})
    );
    let chats = detail["chats"]["edges"].as_array().unwrap();
    assert_eq!(chats.len(), 2);
    assert_eq!(detail["latestChat"]["id"], chats[0]["node"]["id"]);
    let page_info = &detail["chats"]["pageInfo"];
    assert_eq!(page_info["hasNextPage"], true, "{body}");
    assert_eq!(page_info["endCursor"], chats[1]["cursor"]);
    let rest = app
        .graphql(
            Some(&admin.token),
            CONTACT,
            json!({"id": id, "after": page_info["endCursor"]}),
        )
        .await;
    let rest_page = &rest["data"]["contact"]["chats"];
    assert_eq!(rest_page["pageInfo"]["hasNextPage"], false, "{rest}");
    let rest = rest_page["edges"].as_array().unwrap().clone();
    assert_eq!(rest.len(), 1);
    let all: HashSet<&Value> = chats
        .iter()
        .chain(rest.iter())
        .map(|chat| &chat["node"]["id"])
        .collect();
    assert_eq!(all.len(), 3);

    // History, newest first, in pages: 3 name edits, 3 company edits,
    // 1 location change, the creation.
    let mut events = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app
            .graphql(
                Some(&admin.token),
                CONTACT,
                json!({"id": id, "hafter": after}),
            )
            .await;
        let history = body["data"]["contact"]["history"].clone();
        events.extend(history["events"].as_array().unwrap().clone());
        if history["hasNextPage"] == false {
            break;
        }
        after = history["endCursor"].clone();
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"CREATED"));
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "AGENT_EDIT").count(),
        6
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == "LOCATION_CHANGE")
            .count(),
        1
    );
    let newest_name = events
        .iter()
        .find(|event| event["field"] == "name")
        .unwrap();
    assert_eq!(newest_name["oldValue"], "Ana María");
    assert_eq!(newest_name["newValue"], "Ana M.");
    assert_eq!(newest_name["actorType"], "AGENT");
    assert_eq!(newest_name["actorId"], admin.id.as_str());
}

const UPDATE: &str = "mutation($id: ID!, $input: UpdateContactInput!) {
    updateContact(id: $id, input: $input) { id name email phone company location { countryCode } } }";

#[tokio::test]
async fn updates_are_validated_recorded_marked_as_the_agents_and_announced() {
    let (app, admin, project_id) = setup().await;
    let contact = insert_contact(
        &app,
        &project_id,
        &Spec {
            name: Some("Ana"),
            email: Some("ana@example.com"),
            country: Some("ES"),
            ..Default::default()
        },
    )
    .await;
    insert_contact(
        &app,
        &project_id,
        &Spec {
            email: Some("taken@example.com"),
            ..Default::default()
        },
    )
    .await;
    let id = contact.id.to_string();
    let mut events = app.app_services.bus.subscribe();

    for (input, field) in [
        (json!({"email": "not an email"}), "email"),
        (json!({"phone": "12"}), "phone"),
        (json!({"name": "   "}), "name"),
        (json!({"company": "x".repeat(201)}), "company"),
        (
            json!({"name": "Ok", "location": {"countryCode": "ESP"}}),
            "location.countryCode",
        ),
    ] {
        let body = app
            .graphql(
                Some(&admin.token),
                UPDATE,
                json!({"id": id, "input": input}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // Nothing of a refused edit was written.
    let unchanged = contact::Entity::find_by_id(contact.id)
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.name.as_deref(), Some("Ana"));

    // A national number is read in the contact's country; emails are
    // lower-cased; null clears a field.
    let body = app
        .graphql(
            Some(&admin.token),
            UPDATE,
            json!({"id": id, "input": {"phone": "612 34 56 78", "email": " Ana.G@Example.COM ", "name": null, "company": "Acme"}}),
        )
        .await;
    assert_eq!(
        body["data"]["updateContact"],
        json!({"id": id, "name": null, "email": "ana.g@example.com", "phone": "+34612345678",
               "company": "Acme", "location": {"countryCode": "ES"}}),
        "{body}"
    );
    let stored = contact::Entity::find_by_id(contact.id)
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.field_sources,
        json!({"email": "AGENT", "phone": "AGENT", "company": "AGENT"})
    );
    let recorded = contact_event::Entity::find()
        .filter(contact_event::Column::ContactId.eq(contact.id))
        .all(&app.app_services.db)
        .await
        .unwrap();
    let mut changes: Vec<(String, Option<Value>, Option<Value>)> = recorded
        .iter()
        .map(|event| {
            assert_eq!(event.kind, "AGENT_EDIT");
            assert_eq!(event.actor_type, "AGENT");
            assert_eq!(
                event.actor_id.map(|id| id.to_string()),
                Some(admin.id.clone())
            );
            (
                event.field.clone().unwrap(),
                event.old_value.clone(),
                event.new_value.clone(),
            )
        })
        .collect();
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        changes,
        vec![
            ("company".into(), None, Some(json!("Acme"))),
            (
                "email".into(),
                Some(json!("ana@example.com")),
                Some(json!("ana.g@example.com"))
            ),
            ("name".into(), Some(json!("Ana")), None),
            ("phone".into(), None, Some(json!("+34612345678"))),
        ]
    );
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    let Event::ContactChanged(change) = event else {
        panic!("expected a contact change, got {event:?}");
    };
    assert_eq!(change.contact_id, contact.id);
    assert_eq!(change.kind, ContactChangeKind::Updated);

    // Repeating the stored values changes and records nothing.
    let body = app
        .graphql(
            Some(&admin.token),
            UPDATE,
            json!({"id": id, "input": {"company": "Acme"}}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let count = contact_event::Entity::find()
        .filter(contact_event::Column::ContactId.eq(contact.id))
        .count(&app.app_services.db)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[tokio::test]
async fn an_agent_member_deletes_a_contact_with_its_chats_and_the_deletion_is_recorded() {
    let (app, admin, project_id) = setup().await;
    let member = app.agent("member").await;
    app.add_member(&admin, &project_id, &member, "AGENT").await;
    let doomed = insert_contact(&app, &project_id, &Spec::default()).await;
    let kept = insert_contact(&app, &project_id, &Spec::default()).await;
    for contact in [&doomed, &kept] {
        insert_chat(&app, contact, 1).await;
        insert_chat(&app, contact, 2).await;
    }
    let mut events = app.app_services.bus.subscribe();
    let delete = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId projectId } }";
    let body = app
        .graphql(
            Some(&member.token),
            delete,
            json!({"id": doomed.id.to_string()}),
        )
        .await;
    assert_eq!(
        body["data"]["deleteContact"],
        json!({"deletedContactId": doomed.id.to_string(), "projectId": project_id}),
        "{body}"
    );
    let db = &app.app_services.db;
    assert!(
        contact::Entity::find_by_id(doomed.id)
            .one(db)
            .await
            .unwrap()
            .is_none()
    );
    let chats_left: Vec<Uuid> = chat::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|chat| chat.contact_id)
        .collect();
    assert_eq!(chats_left, vec![kept.id, kept.id]);
    let recorded = contact_event::Entity::find()
        .filter(contact_event::Column::ContactId.eq(doomed.id))
        .all(db)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].kind, "DELETED");
    assert_eq!(
        recorded[0].actor_id.map(|id| id.to_string()),
        Some(member.id.clone())
    );
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&event, Event::ContactChanged(change) if change.kind == ContactChangeKind::Deleted && change.contact_id == doomed.id),
        "{event:?}"
    );

    // Gone: the detail and a second deletion answer NOT_FOUND.
    let body = app
        .graphql(
            Some(&member.token),
            CONTACT,
            json!({"id": doomed.id.to_string()}),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let body = app
        .graphql(
            Some(&member.token),
            delete,
            json!({"id": doomed.id.to_string()}),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let listed = list(&app, &member, json!({"p": project_id})).await;
    assert_eq!(ids_of(&listed), vec![kept.id.to_string()]);
}

#[tokio::test]
async fn on_postgresql_a_search_ignores_accents_both_ways() {
    let (app, admin, project_id) = setup().await;
    if !app.settings.database_url.starts_with("postgres") {
        println!("SQLite matches the three columns as typed; accents are folded on PostgreSQL");
        return;
    }
    let mut ids = Vec::new();
    for (created, name) in [
        (0, "García"),
        (1, "ÁLVARO GARCÍA"),
        (2, "Garcia"),
        (3, "Muñoz"),
    ] {
        let spec = Spec {
            name: Some(name),
            created,
            ..Default::default()
        };
        ids.push(
            insert_contact(&app, &project_id, &spec)
                .await
                .id
                .to_string(),
        );
    }
    for (search, expected) in [
        ("garcia", vec![2, 1, 0]),
        ("GARCÍA", vec![2, 1, 0]),
        ("alvaro", vec![1]),
        ("munoz", vec![3]),
        ("muñoz", vec![3]),
    ] {
        let page = list(
            &app,
            &admin,
            json!({"p": project_id, "first": 10, "filter": {"search": search}}),
        )
        .await;
        let wanted: Vec<String> = expected.iter().map(|&i| ids[i].clone()).collect();
        assert_eq!(ids_of(&page), wanted, "search {search:?}");
    }
}

#[tokio::test]
async fn a_page_shows_the_same_values_whichever_fields_it_selects() {
    let (app, admin, project_id) = setup().await;
    for (created, name, country) in [
        (0, Some("Ana"), Some("ES")),
        (1, None, None),
        (2, Some("Bo"), None),
    ] {
        let contact = insert_contact(
            &app,
            &project_id,
            &Spec {
                name,
                email: name.map(|_| "ana@example.com"),
                country,
                created,
                last_seen: created + 5,
                ..Default::default()
            },
        )
        .await;
        let mut edit: contact::ActiveModel = contact.into();
        edit.company = Set(name.map(|name| format!("{name} Ltd")));
        edit.custom_attributes = Set(json!({"plan": created}));
        edit.first_seen_at = Set(instant(created - 100));
        edit.updated_at = Set(instant(created + 50));
        edit.update(&app.app_services.db).await.unwrap();
    }
    let page = |selection: &str| {
        let fragment = if selection.contains("...Company") {
            "fragment Company on Contact { company }"
        } else {
            ""
        };
        let query = format!(
            "query($p: ID!) {{ contacts(projectId: $p, first: 10) {{ {selection} }} }} {fragment}"
        );
        let app = &app;
        let selection = selection.to_owned();
        let token = admin.token.clone();
        let project_id = project_id.clone();
        async move {
            let body = app
                .graphql(Some(&token), &query, json!({"p": project_id}))
                .await;
            assert!(body["errors"].is_null(), "{selection}: {body}");
            let connection = &body["data"]["contacts"];
            let nodes = match connection.get("nodes") {
                Some(nodes) => nodes.clone(),
                None => json!(
                    connection["edges"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|edge| edge["node"].clone())
                        .collect::<Vec<_>>()
                ),
            };
            nodes.as_array().unwrap().clone()
        }
    };
    let full = page(
        "edges { node { id name email createdAt lastSeenAt firstSeenAt updatedAt company \
         customAttributes locationCorrected location { countryCode stateName city } ...Company } }",
    )
    .await;
    assert_eq!(full.len(), 3);
    assert_eq!(full[2]["location"]["countryCode"], "ES", "{full:?}");
    assert!(full[1]["location"].is_null(), "{full:?}");
    assert_eq!(full[2]["company"], "Ana Ltd");
    assert_eq!(full[2]["customAttributes"], json!({"plan": 0}));
    assert_ne!(full[2]["firstSeenAt"], full[2]["createdAt"]);

    for selection in [
        "edges { node { id name email } }",
        "nodes { id location { countryCode } }",
        "edges { node { id ...Company } }",
        "nodes { id firstSeenAt updatedAt customAttributes }",
        "edges { cursor node { id lastSeenAt } }",
    ] {
        let narrow = page(selection).await;
        assert_eq!(narrow.len(), full.len(), "{selection}");
        for (narrow, full) in narrow.iter().zip(&full) {
            for (field, value) in narrow.as_object().unwrap() {
                let expected = match field.as_str() {
                    "location" => full["location"]
                        .as_object()
                        .map(|location| json!({"countryCode": location["countryCode"]}))
                        .unwrap_or(Value::Null),
                    _ => full[field].clone(),
                };
                assert_eq!(value, &expected, "{selection}: {field}");
            }
        }
    }
}

/// Every field a page writes straight from its rows, under aliases, in
/// named and inline fragments, with `__typename` at each level.
const WRITTEN_FROM_ROWS: &str = "
    fragment Place on Location {
        __typename countryCode countryName stateName stateCode provinceName
        provinceCode city postalCode timeZone latitude longitude accuracyRadiusKm
    }
    fragment Person on Contact {
        __typename id projectId fullName: name email phone company customAttributes
        lastIp locationCorrected firstSeenAt lastSeenAt createdAt updatedAt
        location { ...Place }
        ... on Contact { where: location { city } }
        ... { phone2: phone }
    }";

#[tokio::test]
async fn a_page_written_from_its_rows_answers_as_the_executor_does() {
    let (app, admin, project_id) = setup().await;
    for (created, name, country) in [(0, Some("Ana \"Ñ\""), Some("ES")), (1, None, None)] {
        let contact = insert_contact(
            &app,
            &project_id,
            &Spec {
                name,
                email: name.map(|_| "ana@example.com"),
                phone: name.map(|_| "+34612345678"),
                country,
                state: country.map(|_| ("Andalusia", "AN")),
                created,
                last_seen: created + 5,
            },
        )
        .await;
        let mut edit: contact::ActiveModel = contact.into();
        if country.is_some() {
            edit.city = Set(Some("Málaga".into()));
            edit.latitude = Set(Some(36.72));
            edit.longitude = Set(Some(-4.42));
            edit.accuracy_radius_km = Set(Some(20));
            edit.company = Set(Some("Ana Ltd".into()));
            edit.last_ip = Set(Some("203.0.113.9".into()));
            edit.location_corrected = Set(true);
        }
        edit.custom_attributes = Set(json!({"plan": created, "tags": ["a", "b"]}));
        edit.updated_at = Set(instant(created + 50));
        edit.update(&app.app_services.db).await.unwrap();
    }
    let ask = |query: String, variables: Value| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            let body = app.graphql(Some(&token), &query, variables).await;
            assert!(body["errors"].is_null(), "{query}: {body}");
            body["data"].clone()
        }
    };
    let page = |selection: &str| {
        ask(
            format!(
                "query($p: ID!, $no: Boolean!) {{ contacts(projectId: $p, first: 10) {{ {selection} }} }} \
                 {WRITTEN_FROM_ROWS}"
            ),
            json!({"p": project_id, "no": false}),
        )
    };

    let written = page(
        "__typename edges { __typename cursor node { ...Person } } \
         people: nodes { ...Person gone: email @include(if: $no) }",
    )
    .await;
    let connection = &written["contacts"];
    assert_eq!(connection["__typename"], "ContactConnection");
    let edges = connection["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[0]["__typename"], "ContactEdge");
    let newest = &edges[0]["node"];
    assert_eq!(newest["__typename"], "Contact");
    assert!(
        newest["fullName"].is_null() && newest["location"].is_null(),
        "{newest}"
    );
    let located = &edges[1]["node"];
    assert_eq!(located["fullName"], "Ana \"Ñ\"");
    assert_eq!(located["location"]["__typename"], "Location");
    assert_eq!(located["location"]["accuracyRadiusKm"], 20);
    assert_eq!(located["where"], json!({"city": "Málaga"}));
    assert_eq!(located["phone2"], "+34612345678");
    assert_eq!(
        located["customAttributes"],
        json!({"plan": 0, "tags": ["a", "b"]})
    );
    let people = connection["people"].as_array().unwrap();
    assert!(people.iter().all(|person| person.get("gone").is_none()));

    // Each contact as the detail query (async-graphql's executor) shows it.
    for edge in edges {
        let node = &edge["node"];
        let detail = ask(
            format!("query($id: ID!) {{ contact(id: $id) {{ ...Person }} }} {WRITTEN_FROM_ROWS}"),
            json!({"id": node["id"]}),
        )
        .await;
        assert_eq!(&detail["contact"], node);
    }
    let people: Vec<&Value> = edges.iter().map(|edge| &edge["node"]).collect();
    assert_eq!(
        connection["people"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        people
    );

    // A selection that `@include` empties: answered as the executor answers
    // it (an object without fields is `null`), errors included, which the
    // same selection given twice (merged by the executor) shows.
    let body_of = |selection: String| {
        let app = &app;
        let token = admin.token.clone();
        let project_id = project_id.clone();
        async move {
            let query = format!(
                "query($p: ID!, $no: Boolean!) {{ contacts(projectId: $p, first: 10) {{ {selection} }} }}"
            );
            let mut body = app
                .graphql(Some(&token), &query, json!({"p": project_id, "no": false}))
                .await;
            for error in body["errors"].as_array_mut().into_iter().flatten() {
                error.as_object_mut().unwrap().remove("locations");
            }
            body
        }
    };
    for (emptied, inner) in [
        (
            "edges { node { email @include(if: $no) } }",
            "node { email @include(if: $no) }",
        ),
        (
            "edges { cursor node { id location { city @include(if: $no) } } }",
            "location { city @include(if: $no) }",
        ),
        (
            "nodes { email @include(if: $no) }",
            "email @include(if: $no)",
        ),
    ] {
        let twice = emptied.replacen(inner, &format!("{inner} {inner}"), 1);
        let once = body_of(emptied.to_owned()).await;
        assert!(!once.to_string().contains("{}"), "{emptied}: {once}");
        assert_eq!(once, body_of(twice).await, "{emptied}");
    }

    // A key selected twice is merged by the executor: the same answer.
    let merged = page(
        "__typename edges { __typename cursor node { id } node { ...Person } } \
         people: nodes { id } people: nodes { ...Person gone: email @include(if: $no) }",
    )
    .await;
    assert_eq!(merged, written);

    // Merged above the lists: the connection selected twice, and a list
    // selected by two fragments.
    let once = ask(
        "query($p: ID!) { contacts(projectId: $p, first: 10) { edges { cursor node { id } } } }"
            .to_owned(),
        json!({"p": project_id, "no": false}),
    )
    .await;
    for merging in [
        "query($p: ID!) { contacts(projectId: $p, first: 10) { edges { cursor } } \
         contacts(projectId: $p, first: 10) { edges { node { id } } } }",
        "query($p: ID!) { contacts(projectId: $p, first: 10) { ...Cursors ...Ids } } \
         fragment Cursors on ContactConnection { edges { cursor } } \
         fragment Ids on ContactConnection { edges { node { id } } }",
    ] {
        let merged = ask(merging.to_owned(), json!({"p": project_id})).await;
        assert_eq!(merged, once, "{merging}");
    }
}

/// The body as the server wrote it, byte for byte.
async fn raw_body(app: &TestApp, token: &str, query: &str, variables: Value) -> String {
    app.client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("a text body")
}

/// Two contacts with every column the page writes, one of them located.
async fn written_contacts(app: &TestApp, project_id: &str) {
    let ana = insert_contact(
        app,
        project_id,
        &Spec {
            name: Some("Ana \"Ñ\" \\ \u{1}"),
            email: Some("ana@example.com"),
            phone: Some("+34612345678"),
            country: Some("ES"),
            state: Some(("Andalusia", "AN")),
            created: 1,
            last_seen: 6,
        },
    )
    .await;
    let mut edit: contact::ActiveModel = ana.into();
    edit.city = Set(Some("Málaga".into()));
    edit.latitude = Set(Some(36.72));
    edit.longitude = Set(Some(-4.0));
    edit.accuracy_radius_km = Set(Some(20));
    edit.custom_attributes = Set(json!({"plan": 1.5, "tags": ["a", "\"b\""], "z": null}));
    edit.update(&app.app_services.db).await.unwrap();
    insert_contact(app, project_id, &Spec::default()).await;
}

#[tokio::test]
async fn a_written_page_is_byte_for_byte_what_the_executor_writes() {
    let (app, admin, project_id) = setup().await;
    written_contacts(&app, &project_id).await;
    let page = raw_body(
        &app,
        &admin.token,
        &format!(
            "query($p: ID!) {{ contacts(projectId: $p, first: 10) {{ nodes {{ ...Person }} }} }} \
             {WRITTEN_FROM_ROWS}"
        ),
        json!({"p": project_id}),
    )
    .await;
    let nodes: Value = serde_json::from_str(&page).unwrap();
    let nodes = nodes["data"]["contacts"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 2, "{page}");
    for node in &nodes {
        // The detail query goes through async-graphql's executor and
        // serde: its text, fields in the selection's order, must appear in
        // the page's as it is.
        let detail = raw_body(
            &app,
            &admin.token,
            &format!("query($id: ID!) {{ contact(id: $id) {{ ...Person }} }} {WRITTEN_FROM_ROWS}"),
            json!({"id": node["id"]}),
        )
        .await;
        let text = detail
            .strip_prefix(r#"{"data":{"contact":"#)
            .and_then(|rest| rest.strip_suffix("}}"))
            .unwrap_or_else(|| panic!("a detail: {detail}"));
        assert!(page.contains(text), "{text}\nnot in\n{page}");
    }
}

#[tokio::test]
async fn a_page_over_a_websocket_is_the_page_over_http() {
    use crate::subscriptions::{MODERN, connect_as, next, send};
    let (app, admin, project_id) = setup().await;
    written_contacts(&app, &project_id).await;
    let query = format!(
        "query($p: ID!) {{ contacts(projectId: $p, first: 10) {{ \
         edges {{ cursor node {{ ...Person }} }} nodes {{ id }} }} }} {WRITTEN_FROM_ROWS}"
    );
    let over_http = app
        .graphql(Some(&admin.token), &query, json!({"p": project_id}))
        .await;
    assert!(over_http["errors"].is_null(), "{over_http}");
    let mut socket = connect_as(&app.ws_url(), MODERN, &admin.token).await;
    send(
        &mut socket,
        json!({"id": "page", "type": "subscribe",
               "payload": {"query": query, "variables": {"p": project_id}}}),
    )
    .await;
    let answer = next(&mut socket).await.unwrap();
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"], over_http);
}
