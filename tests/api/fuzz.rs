//! Property tests of GraphQL inputs: whatever a client sends (very long
//! strings, control characters, huge lists, deep nesting, unknown enum
//! values, impossible dates, invalid IPs), the answer is data or a clear
//! error with a client's `extensions.code`, the server keeps answering, and
//! a refused mutation leaves every table as it was.

use std::fmt::Debug;

use entity::{
    chat, contact, contact_event, export_job, form_question, project_allowed_origin, visitor,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::helpers::{TestAgent, TestApp, public_key, spawn_app_with};

/// Cases per property: enough to meet each kind of input several times,
/// few enough for the suite to stay fast. `FUZZ_CASES=2000` explores more.
const CASES: u32 = 40;

/// Codes that blame the client. INTERNAL for any input is a bug.
const CLIENT_CODES: [&str; 5] = [
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "FORBIDDEN",
    "UNAUTHENTICATED",
    "RATE_LIMITED",
];

struct Fixture {
    app: TestApp,
    /// A connection per request: after a refused oversized body the server
    /// closes the connection, and a pooled client would race that close.
    client: reqwest::Client,
    admin: TestAgent,
    project_id: String,
    key: String,
    secret: String,
    visitor_token: String,
    contact_id: uuid::Uuid,
}

async fn fixture() -> Fixture {
    let app = spawn_app_with(|settings| {
        // The limits are tested elsewhere; here every input reaches its operation.
        settings.rate_limits.public_per_ip = 0;
        settings.rate_limits.public_per_project = 0;
        settings.rate_limits.login_per_ip = 0;
        settings.rate_limits.login_email_free_failures = u32::MAX;
        settings.rate_limits.login_ip_free_failures = u32::MAX;
        settings.trusted_proxies = "127.0.0.1/32, ::1".parse().unwrap();
    })
    .await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = public_key(&app, &admin, &project_id).await;
    let secret = app
        .graphql(
            Some(&admin.token),
            "query($id: ID!) { project(id: $id) { secretKey } }",
            json!({"id": project_id}),
        )
        .await["data"]["project"]["secretKey"]
        .as_str()
        .unwrap()
        .to_owned();
    for question in [
        json!({"key": "email", "label": "Email", "kind": "EMAIL", "target": {"field": "EMAIL"}}),
        json!({"key": "phone", "label": "Phone", "kind": "PHONE", "target": {"field": "PHONE"}}),
        json!({"key": "plan", "label": "Plan", "kind": "SELECT", "options": ["free", "pro"], "target": {"attribute": "plan"}}),
        json!({"key": "seats", "label": "Seats", "kind": "NUMBER", "target": {"attribute": "seats"}}),
    ] {
        let body = app
            .graphql(
                Some(&admin.token),
                "mutation($p: ID!, $q: FormQuestionInput!) { createFormQuestion(projectId: $p, input: $q) { id } }",
                json!({"p": project_id, "q": question}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let started = app
        .graphql(
            None,
            "mutation($i: StartChatInput!) { startChat(input: $i) { visitorToken } }",
            json!({"i": {"projectKey": key, "visitorId": "fuzzed-visitor"}}),
        )
        .await;
    let visitor_token = started["data"]["startChat"]["visitorToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let contact_id = contact::Entity::find()
        .one(&app.app_services.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    Fixture {
        app,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        admin,
        project_id,
        key,
        secret,
        visitor_token,
        contact_id,
    }
}

/// Rows in every table a public or agent mutation writes.
async fn row_counts(app: &TestApp) -> [u64; 7] {
    let db = &app.app_services.db;
    [
        contact::Entity::find().count(db).await.unwrap(),
        chat::Entity::find().count(db).await.unwrap(),
        contact_event::Entity::find().count(db).await.unwrap(),
        form_question::Entity::find().count(db).await.unwrap(),
        export_job::Entity::find().count(db).await.unwrap(),
        project_allowed_origin::Entity::find()
            .count(db)
            .await
            .unwrap(),
        visitor::Entity::find().count(db).await.unwrap(),
    ]
}

/// Sends a body as it is; the status and the body as JSON.
async fn send(
    f: &Fixture,
    token: Option<&str>,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<(u16, Value), String> {
    let mut request = f
        .client
        .post(format!("{}/graphql", f.app.address))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|error| format!("no answer: {error}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|error| error.to_string())?;
    let body = serde_json::from_str(&text)
        .map_err(|_| format!("HTTP {status} with a body that is not JSON: {text:.300}"))?;
    Ok((status, body))
}

/// Data, or errors that each carry a client's code; HTTP 200 or 4xx.
/// Returns whether the answer was an error.
fn clear_answer(status: u16, body: &Value) -> Result<bool, String> {
    let short = || {
        let text = body.to_string();
        text.chars().take(400).collect::<String>()
    };
    if !(status == 200 || (400..500).contains(&status)) {
        return Err(format!("HTTP {status}: {}", short()));
    }
    match body["errors"].as_array() {
        Some(errors) if !errors.is_empty() => {
            for error in errors {
                let code = error["extensions"]["code"].as_str().unwrap_or("none");
                if !CLIENT_CODES.contains(&code) {
                    return Err(format!("code {code}: {}", short()));
                }
                if error["message"].as_str().is_none_or(str::is_empty) {
                    return Err(format!("an error without a message: {}", short()));
                }
            }
            Ok(true)
        }
        _ if status == 200 && body["data"].is_object() => Ok(false),
        _ => Err(format!(
            "HTTP {status} with neither data nor errors: {}",
            short()
        )),
    }
}

/// The server still answers its probes.
async fn still_up(f: &Fixture) -> Result<(), String> {
    let response = f
        .client
        .get(format!("{}/readyz", f.app.address))
        .send()
        .await
        .map_err(|error| format!("the server stopped answering: {error}"))?;
    if response.status() == 200 {
        Ok(())
    } else {
        Err(format!("/readyz answered {}", response.status()))
    }
}

/// Runs a GraphQL operation and checks the three promises: a clear answer,
/// a live server, and no rows written when the operation was refused.
async fn check_operation(
    f: &Fixture,
    token: Option<&str>,
    headers: &[(&str, String)],
    query: &str,
    variables: Value,
) -> Result<(), String> {
    let before = row_counts(&f.app).await;
    let contact_before = contact::Entity::find_by_id(f.contact_id)
        .one(&f.app.app_services.db)
        .await
        .unwrap();
    let body = serde_json::to_vec(&json!({"query": query, "variables": variables})).unwrap();
    let (status, answer) = send(f, token, headers, body).await?;
    let refused = clear_answer(status, &answer)?;
    still_up(f).await?;
    if refused {
        let after = row_counts(&f.app).await;
        if after != before {
            return Err(format!(
                "refused, yet rows changed from {before:?} to {after:?}: {answer}"
            ));
        }
        let contact_after = contact::Entity::find_by_id(f.contact_id)
            .one(&f.app.app_services.db)
            .await
            .unwrap();
        if contact_after != contact_before {
            return Err(format!("refused, yet the contact changed: {answer}"));
        }
    }
    Ok(())
}

/// Runs `check` on `CASES` values of `strategy`, shrinking a failure to a
/// small input that still fails.
fn property<S>(strategy: S, check: impl Fn(S::Value) -> Result<(), String>)
where
    S: Strategy,
    S::Value: Debug,
{
    let mut runner = TestRunner::new(Config {
        cases: std::env::var("FUZZ_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&strategy, |value| check(value).map_err(TestCaseError::fail)) {
        panic!("{failure}");
    }
}

/// Drives async checks from proptest's synchronous runner.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        2 => prop::collection::vec(prop::char::range('\u{0}', '\u{1f}'), 1..20)
            .prop_map(String::from_iter),
        1 => (1usize..70_000).prop_map(|n| "x".repeat(n)),
        1 => (1usize..4_000).prop_map(|n| "\u{1f642}".repeat(n)),
        1 => (1usize..2_000).prop_map(|n| "e\u{301}\u{200b}".repeat(n)),
        3 => select(vec![
            "", " ", "' OR 1=1 --", "%", "_", "\\", "\u{0}", "\u{202e}evil", "\u{feff}",
            "null", "NaN", "-1", "99999999999999999999999", "<script>alert(1)</script>",
            "=HYPERLINK(\"http://x\")", "a@b", "ana@example.com", "ANA@EXAMPLE.COM",
            "+34 612 34 56 78", "612", "../../etc/passwd", "pro", "free", "12", "1e400",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Mostly a valid value, so that inputs also get past the first check
/// and reach the writes; otherwise anything.
fn plausible(valid: Vec<&'static str>) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(valid).prop_map(str::to_owned),
        2 => nasty_string(),
    ]
}

/// Left out more often than given.
fn rarely<S: Strategy>(strategy: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::weighted(0.3, strategy)
}

/// Printable ASCII only: what an HTTP header can carry.
fn nasty_ip() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "999.1.1.1", "1.2.3", "256.256.256.256", "::gg", "fe80::1%eth0", "", " ",
            "1.2.3.4, 5.6.7.8", "unknown", "203.0.113.7", "2001:db8::1", "0.0.0.0", "::",
            "127.0.0.1", "1.2.3.4:80", "[::1]:80", "01.02.03.04", "1.2.3.4/24", "::ffff:1.2.3.4",
        ])
        .prop_map(str::to_owned),
        2 => any::<u32>().prop_map(|n| std::net::Ipv4Addr::from(n).to_string()),
        1 => any::<u128>().prop_map(|n| std::net::Ipv6Addr::from(n).to_string()),
        2 => prop::collection::vec(0x20u8..0x7f, 0..60)
            .prop_map(|bytes| String::from_utf8(bytes).unwrap()),
    ]
}

fn nasty_date() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "0000-00-00T00:00:00Z",
            "2026-01-01T25:61:00Z", "2016-12-31T23:59:60Z", "+275760-09-13T00:00:00Z",
            "-000001-01-01T00:00:00Z", "2026-01-01", "2026-01-01T00:00:00", "yesterday", "",
            "2026-01-01T00:00:00+25:00", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
        ])
        .prop_map(str::to_owned),
        2 => (0i32..10_000, 0u32..14, 0u32..33, 0u32..26, 0u32..62)
            .prop_map(|(y, m, d, h, min)| format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:00Z")),
        1 => nasty_string(),
    ]
}

fn nasty_enum() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "BOGUS",
            "name",
            "created_at",
            "CREATED_AT",
            "EMAIL",
            "ADMIN",
            "TEXT",
            "SELECT",
            "__typename",
            "DROP TABLE",
            "null",
        ])
        .prop_map(str::to_owned),
        prop::collection::vec(select(vec!['A', 'Z', '_', 'Q', '9']), 1..30)
            .prop_map(String::from_iter),
    ]
}

/// Any JSON value, nested up to `depth` levels.
fn nasty_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |n| n.is_finite())
            .prop_map(Value::from),
        nasty_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::collection::vec(select(vec!['a', 'q', 'z', '_']), 1..8)
                    .prop_map(String::from_iter),
                inner,
                0..6,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_chat_inputs_get_a_clear_answer() {
    let f = fixture().await;
    let strategy = (
        rarely(nasty_string()),
        prop::option::of(plausible(vec!["v-1", "v-2", "fuzzed-visitor", "a.b:c_d-9"])),
        rarely(nasty_ip()),
        prop_oneof![3 => Just(None), 1 => Just(Some(true)), 1 => Just(Some(false))],
        rarely((
            plausible(vec!["user-1", "user-2"]),
            prop::option::of(plausible(vec!["ana@example.com", "bob@example.com"])),
            prop::option::of(nasty_string()),
            prop::option::of(plausible(vec!["00", "deadbeef"])),
        )),
        rarely(nasty_ip()),
    );
    property(
        strategy,
        |(key, visitor_id, visitor_ip, secret, identity, forwarded)| {
            let mut input = json!({"projectKey": key.unwrap_or_else(|| f.key.clone())});
            if let Some(visitor_id) = visitor_id {
                input["visitorId"] = json!(visitor_id);
            }
            if let Some(visitor_ip) = visitor_ip {
                input["visitorIp"] = json!(visitor_ip);
            }
            match secret {
                Some(true) => input["secretKey"] = json!(f.secret),
                Some(false) => input["secretKey"] = json!("sk_wrong"),
                None => {}
            }
            if let Some((identifier, email, name, signature)) = identity {
                input["identity"] = json!({"identifier": identifier, "email": email, "name": name, "signature": signature});
            }
            let headers: Vec<(&str, String)> = forwarded
                .map(|ip| ("x-forwarded-for", ip))
                .into_iter()
                .collect();
            block_on(check_operation(
                &f,
                None,
                &headers,
                "mutation($i: StartChatInput!) { startChat(input: $i) { visitorId visitorToken contact { name email } } }",
                json!({"i": input}),
            ))
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_form_answers_get_a_clear_answer() {
    let f = fixture().await;
    let answer = (
        prop_oneof![
            4 => select(vec!["email", "phone", "plan", "seats", "nope", ""]).prop_map(str::to_owned),
            1 => nasty_string(),
        ],
        plausible(vec![
            "ana@example.com",
            "bob@example.com",
            "Bob@Example.com",
            "+34 612 34 56 78",
            "612345678",
            "pro",
            "free",
            "3",
            "-1",
            "1e3",
        ]),
    );
    let answers = prop_oneof![
        4 => prop::collection::vec(answer, 0..6),
        1 => prop::collection::vec(
            (select(vec!["email", "plan", "x"]), select(vec!["a", "pro", ""])),
            500..4_000,
        )
        .prop_map(|list| {
            list.into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect()
        }),
    ];
    property(answers, |answers| {
        let answers: Vec<Value> = answers
            .into_iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        block_on(check_operation(
            &f,
            Some(&f.visitor_token),
            &[],
            "mutation($a: [FormAnswerInput!]!) { submitContactForm(answers: $a) { complete contact { email phone } } }",
            json!({"a": answers}),
        ))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_edits_get_a_clear_answer() {
    let f = fixture().await;
    let field = |valid: Vec<&'static str>| prop::option::of(prop::option::of(plausible(valid)));
    let number = prop_oneof![
        Just(json!(null)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(2_147_483_648_i64)),
        Just(json!(1.5)),
        Just(json!("12")),
        any::<i64>().prop_map(Value::from),
        (-200.0f64..200.0).prop_map(Value::from),
    ];
    let location = (
        prop::option::of(plausible(vec!["ES", "IT", "US"])),
        prop::option::of(plausible(vec!["Málaga", "Rome"])),
        number.clone(),
        number.clone(),
        number,
    );
    let strategy = (
        field(vec!["Ana García", "Bob"]),
        field(vec!["ana@example.com", "fuzz@example.com"]),
        field(vec!["+34 612 34 56 78", "612345678"]),
        field(vec!["ACME"]),
        rarely(location),
        rarely(nasty_string()),
    );
    property(strategy, |(name, email, phone, company, location, id)| {
        let mut input = json!({});
        for (key, value) in [
            ("name", name),
            ("email", email),
            ("phone", phone),
            ("company", company),
        ] {
            if let Some(value) = value {
                input[key] = json!(value);
            }
        }
        if let Some((country, city, latitude, longitude, radius)) = location {
            input["location"] = json!({"countryCode": country, "city": city, "latitude": latitude, "longitude": longitude, "accuracyRadiusKm": radius});
        }
        block_on(check_operation(
            &f,
            Some(&f.admin.token),
            &[],
            "mutation($id: ID!, $i: UpdateContactInput!) { updateContact(id: $id, input: $i) { id name email phone company } }",
            json!({"id": id.unwrap_or_else(|| f.contact_id.to_string()), "i": input}),
        ))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_list_arguments_get_a_clear_answer() {
    let f = fixture().await;
    let count = prop_oneof![
        6 => Just(json!(null)),
        4 => (1i64..100).prop_map(Value::from),
        1 => Just(json!(0)),
        1 => Just(json!(101)),
        1 => Just(json!(-1)),
        1 => Just(json!(1e20)),
        1 => Just(json!(2_147_483_648_i64)),
        1 => Just(json!("5")),
    ];
    let strategy = (
        count.clone(),
        rarely(nasty_string()),
        prop_oneof![3 => Just(json!(null)), 1 => count],
        rarely(nasty_string()),
        prop::option::of(plausible(vec!["ana", "612 34", "%", "example.com"])),
        prop::option::of(plausible(vec![
            "2026-01-01T00:00:00Z",
            "2020-02-29T12:00:00+02:00",
        ])),
        rarely(nasty_date()),
        rarely(plausible(vec!["ES", "IT"])),
        prop::option::of(plausible(vec![
            "CREATED_AT",
            "NAME",
            "EMAIL",
            "LAST_SEEN_AT",
        ])),
        prop::option::of(plausible(vec!["ASC", "DESC"])),
    );
    property(
        strategy,
        |(first, after, last, before, search, from, to, country, field, direction)| {
            let mut order = json!({});
            if let Some(field) = field {
                order["field"] = json!(field);
            }
            if let Some(direction) = direction {
                order["direction"] = json!(direction);
            }
            block_on(check_operation(
            &f,
            Some(&f.admin.token),
            &[],
            "query($p: ID!, $first: Int, $after: String, $last: Int, $before: String, $f: ContactFilterInput, $o: ContactOrderInput) {
                contacts(projectId: $p, first: $first, after: $after, last: $last, before: $before, filter: $f, orderBy: $o) {
                    totalCount edges { cursor node { id name } } pageInfo { hasNextPage endCursor } } }",
            json!({
                "p": f.project_id, "first": first, "after": after, "last": last, "before": before,
                "f": {"search": search, "createdFrom": from, "createdTo": to, "countryCode": country},
                "o": order,
            }),
        ))
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mutations_get_a_clear_answer() {
    let f = fixture().await;
    let date = || {
        prop_oneof![
            2 => select(vec!["2026-01-01T00:00:00Z", "2026-01-01", "2030-06-30T23:59:59+02:00"])
                .prop_map(str::to_owned),
            1 => nasty_date(),
        ]
    };
    let export = (
        date(),
        date(),
        rarely(plausible(vec!["Europe/Madrid", "UTC", "Mars/Olympus"])),
    )
        .prop_map(|(from, to, zone)| ("export", json!({"from": from, "to": to, "tz": zone})));
    let question = (
        plausible(vec!["company_size", "q1", "a"]),
        plausible(vec!["Company size", "Q"]),
        prop_oneof![select(vec!["TEXT", "SELECT", "NUMBER"]).prop_map(str::to_owned), nasty_enum()],
        prop_oneof![
            nasty_enum().prop_map(|field| json!({"field": field})),
            nasty_string().prop_map(|attribute| json!({"attribute": attribute})),
            Just(json!({})),
            Just(json!({"field": "NAME", "attribute": "x"})),
        ],
        prop::collection::vec(nasty_string(), 0..8),
    )
        .prop_map(|(key, label, kind, target, options)| {
            (
                "question",
                json!({"q": {"key": key, "label": label, "kind": kind, "target": target, "options": options}}),
            )
        });
    let origins = prop::collection::vec(
        prop_oneof![
            nasty_string(),
            nasty_ip().prop_map(|host| format!("https://{host}"))
        ],
        0..60,
    )
    .prop_map(|origins| ("origins", json!({"o": origins})));
    property(
        prop_oneof![export, question, origins],
        |(operation, mut variables)| {
            variables["p"] = json!(f.project_id);
            let query = match operation {
                "export" => {
                    "mutation($p: ID!, $from: String!, $to: String!, $tz: String) { exportContacts(projectId: $p, from: $from, to: $to, timeZone: $tz) { id status } }"
                }
                "question" => {
                    "mutation($p: ID!, $q: FormQuestionInput!) { createFormQuestion(projectId: $p, input: $q) { id } }"
                }
                _ => {
                    "mutation($p: ID!, $o: [String!]!) { setAllowedOrigins(projectId: $p, origins: $o) { allowedOrigins } }"
                }
            };
            block_on(check_operation(
                &f,
                Some(&f.admin.token),
                &[],
                query,
                variables,
            ))
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_get_a_clear_answer() {
    let f = fixture().await;
    property((nasty_string(), nasty_string()), |(email, password)| {
        block_on(check_operation(
            &f,
            None,
            &[],
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": email, "p": password}),
        ))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_clear_answer() {
    let f = fixture().await;
    let deep_query = (1usize..400).prop_map(|depth| {
        let mut query = "{ me { id } }".to_owned();
        for _ in 0..depth {
            query = format!(
                "{{ me {{ projects {{ members {{ agent {} }} }} }} }}",
                &query[1..query.len() - 1]
            );
        }
        json!({"query": query}).to_string().into_bytes()
    });
    let deep_variables = (1usize..2_000).prop_map(|depth| {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        format!(
            r#"{{"query": "query($s: String) {{ me {{ id }} }}", "variables": {{"s": {nested}}}}}"#
        )
        .into_bytes()
    });
    let deep_literal = (1usize..300).prop_map(|depth| {
        let nested = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
        json!({"query": format!("mutation {{ startChat(input: {{projectKey: {nested}}}) {{ visitorToken }} }}")})
            .to_string()
            .into_bytes()
    });
    let aliases = (1usize..3_000).prop_map(|n| {
        let fields: String = (0..n).map(|i| format!("a{i}: __typename ")).collect();
        json!({"query": format!("{{ {fields} }}")})
            .to_string()
            .into_bytes()
    });
    let bytes = prop::collection::vec(any::<u8>(), 0..300);
    let json_body = nasty_json().prop_map(|value| value.to_string().into_bytes());
    let request_shaped =
        (nasty_json(), nasty_json(), nasty_json()).prop_map(|(query, variables, name)| {
            json!({"query": query, "variables": variables, "operationName": name})
                .to_string()
                .into_bytes()
        });
    let unknown_enum = (nasty_enum(), nasty_enum()).prop_map(|(field, direction)| {
        json!({"query": format!("{{ contacts(projectId: \"x\", orderBy: {{field: {field}, direction: {direction}}}) {{ totalCount }} }}")})
            .to_string()
            .into_bytes()
    });
    let strategy = prop_oneof![
        deep_query,
        deep_variables,
        deep_literal,
        aliases,
        bytes,
        json_body,
        request_shaped,
        unknown_enum,
    ];
    property(strategy, |body| {
        block_on(async {
            let before = row_counts(&f.app).await;
            let (status, answer) = send(&f, Some(&f.admin.token), &[], body).await?;
            clear_answer(status, &answer)?;
            still_up(&f).await?;
            let after = row_counts(&f.app).await;
            if before != after {
                return Err(format!("rows changed from {before:?} to {after:?}"));
            }
            Ok(())
        })
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_operations_get_a_clear_answer() {
    let f = fixture().await;
    let operation = select(vec!["accept", "request reset", "reset", "change"]);
    property(
        (operation, nasty_string(), nasty_string(), nasty_string()),
        |(operation, first, second, third)| {
            let (token, query, variables) = match operation {
                "accept" => (
                    None,
                    "mutation($t: String!, $n: String, $p: String) { acceptInvitation(token: $t, name: $n, password: $p) { kind } }",
                    json!({"t": first, "n": second, "p": third}),
                ),
                "request reset" => (
                    None,
                    "mutation($e: String!) { requestPasswordReset(email: $e) }",
                    json!({"e": first}),
                ),
                "reset" => (
                    None,
                    "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) }",
                    json!({"t": first, "p": second}),
                ),
                _ => (
                    Some(f.admin.token.as_str()),
                    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
                    json!({"c": first, "n": second}),
                ),
            };
            block_on(check_operation(&f, token, &[], query, variables))
        },
    );
}
