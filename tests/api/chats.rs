use std::time::Duration;

use entity::{chat, contact};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::geo_fixture::{
    FixtureVariant, GERMANY_BAVARIA_IPV6, ITALY_ROME_IP, NOT_IN_FIXTURE_IP, SPAIN_MALAGA_IP,
    SWITZERLAND_COUNTRY_ONLY_IP, US_CALIFORNIA_IP, replace_city_fixture, write_city_fixture,
};
use crate::helpers::{TestAgent, TestApp, error_code, public_key, spawn_app, spawn_app_with};

const START: &str = "mutation($i: StartChatInput!) { startChat(input: $i) {
    visitorId visitorToken chat { id startedAt } contact { name email } } }";

const CONTACT: &str = "query($id: ID!) { contact(id: $id) {
    id lastIp locationCorrected firstSeenAt lastSeenAt
    location { countryCode countryName stateName stateCode provinceName provinceCode city
               postalCode timeZone latitude longitude accuracyRadiusKm }
    chats { edges { node { id ip userAgent location { countryCode city } } } } } }";

/// An app with the GeoIP fixture, trusting forwarding headers from the test
/// client (loopback), so each test can pick the visitor's address.
async fn geo_app(
    configure: impl FnOnce(&mut contacts::config::Settings),
) -> (TestApp, TestAgent, String, String) {
    let geo_dir = tempfile::tempdir().unwrap();
    let geo_path = geo_dir.path().join("city.mmdb");
    write_city_fixture(&geo_path, FixtureVariant::Initial);
    let mut app = spawn_app_with(|settings| {
        settings.geo.database = Some(geo_path);
        settings.geo.reload_interval = Duration::from_millis(100);
        settings.trusted_proxies = "127.0.0.1/32, ::1".parse().unwrap();
        configure(settings);
    })
    .await;
    app.fixture_dirs.push(geo_dir);
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = public_key(&app, &admin, &project_id).await;
    (app, admin, project_id, key)
}

async fn start_from(app: &TestApp, key: &str, visitor: &str, ip: &str) -> Value {
    let body = app
        .start_chat_as(
            visitor,
            &[("x-forwarded-for", ip), ("user-agent", "TestBrowser/1.0")],
            START,
            json!({"projectKey": key}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body
}

async fn contact_by_visitor(app: &TestApp, visitor: &str) -> contact::Model {
    app.contact_of_browser(visitor).await
}

async fn contact_view(app: &TestApp, agent: &TestAgent, visitor: &str) -> Value {
    let id = contact_by_visitor(app, visitor).await.id.to_string();
    let body = app
        .graphql(Some(&agent.token), CONTACT, json!({"id": id}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["contact"].clone()
}

#[tokio::test]
async fn a_spanish_visitor_gets_country_state_province_and_every_field() {
    let (app, admin, _, key) = geo_app(|_| {}).await;
    let started = start_from(&app, &key, "visitor-es", SPAIN_MALAGA_IP).await;
    let payload = &started["data"]["startChat"];
    assert!(payload["visitorToken"].as_str().unwrap().starts_with("vt_"));
    assert!(payload["visitorId"].as_str().unwrap().starts_with("v_"));

    let contact = contact_view(&app, &admin, "visitor-es").await;
    assert_eq!(
        contact["location"],
        json!({
            "countryCode": "ES", "countryName": "Spain",
            "stateName": "Andalusia", "stateCode": "AN",
            "provinceName": "Málaga", "provinceCode": "MA",
            "city": "Málaga", "postalCode": "29001", "timeZone": "Europe/Madrid",
            "latitude": 36.7202, "longitude": -4.4203, "accuracyRadiusKm": 20,
        })
    );
    assert_eq!(contact["lastIp"], SPAIN_MALAGA_IP);
    assert_eq!(contact["locationCorrected"], false);
    let chat = &contact["chats"]["edges"][0]["node"];
    assert_eq!(chat["ip"], SPAIN_MALAGA_IP);
    assert_eq!(chat["userAgent"], "TestBrowser/1.0");
    assert_eq!(
        chat["location"],
        json!({"countryCode": "ES", "city": "Málaga"})
    );
}

#[tokio::test]
async fn states_provinces_ipv6_and_country_only_networks() {
    let (app, admin, _, key) = geo_app(|_| {}).await;
    let cases = [
        (
            "us",
            US_CALIFORNIA_IP,
            json!(["US", "California", "CA", null]),
        ),
        ("it", ITALY_ROME_IP, json!(["IT", "Lazio", "62", "Rome"])),
        (
            "de",
            GERMANY_BAVARIA_IPV6,
            json!(["DE", "Bavaria", "BY", null]),
        ),
        (
            "ch",
            SWITZERLAND_COUNTRY_ONLY_IP,
            json!(["CH", null, null, null]),
        ),
    ];
    for (visitor, ip, expected) in cases {
        start_from(&app, &key, visitor, ip).await;
        let location = &contact_view(&app, &admin, visitor).await["location"];
        assert_eq!(
            json!([
                location["countryCode"],
                location["stateName"],
                location["stateCode"],
                location["provinceName"]
            ]),
            expected,
            "{visitor}: {location}"
        );
    }
}

#[tokio::test]
async fn unknown_and_private_addresses_give_no_location_and_no_error() {
    let (app, admin, _, key) = geo_app(|_| {}).await;
    for (visitor, ip) in [
        ("unknown", NOT_IN_FIXTURE_IP),
        ("private", "10.1.2.3"),
        ("loopback", "127.0.0.1"),
    ] {
        start_from(&app, &key, visitor, ip).await;
        let contact = contact_view(&app, &admin, visitor).await;
        assert!(contact["location"].is_null(), "{visitor}: {contact}");
    }
}

#[tokio::test]
async fn forwarding_headers_are_used_only_from_trusted_proxies() {
    let geo_dir = tempfile::tempdir().unwrap();
    let geo_path = geo_dir.path().join("city.mmdb");
    write_city_fixture(&geo_path, FixtureVariant::Initial);
    // No trusted proxy: the loopback peer is the client, whatever it claims.
    let app = spawn_app_with(|settings| settings.geo.database = Some(geo_path.clone())).await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = public_key(&app, &admin, &project_id).await;
    start_from(&app, &key, "spoofer", SPAIN_MALAGA_IP).await;
    let contact = contact_view(&app, &admin, "spoofer").await;
    assert_eq!(contact["lastIp"], "127.0.0.1");
    assert!(contact["location"].is_null());

    // Behind a trusted proxy the forwarded address counts; a malformed
    // header is ignored rather than trusted.
    let (app, admin, _, key) = geo_app(|_| {}).await;
    start_from(
        &app,
        &key,
        "proxied",
        &format!("{SPAIN_MALAGA_IP}, 127.0.0.1"),
    )
    .await;
    assert_eq!(
        contact_view(&app, &admin, "proxied").await["location"]["countryCode"],
        "ES"
    );
    start_from(&app, &key, "malformed", "not-an-ip").await;
    assert_eq!(
        contact_view(&app, &admin, "malformed").await["lastIp"],
        "127.0.0.1"
    );
}

#[tokio::test]
async fn fifty_parallel_starts_for_one_visitor_make_one_contact_and_fifty_chats() {
    let (app, _, _, key) = geo_app(|_| {}).await;
    start_from(&app, &key, "same-visitor", SPAIN_MALAGA_IP).await;
    let starts = (0..50).map(|_| start_from(&app, &key, "same-visitor", SPAIN_MALAGA_IP));
    let answers = futures_util::future::join_all(starts).await;
    assert_eq!(answers.len(), 50);
    let db = &app.app_services.db;
    assert_eq!(contact::Entity::find().count(db).await.unwrap(), 1);
    assert_eq!(chat::Entity::find().count(db).await.unwrap(), 51);
    let credential = app.visitor_credential("same-visitor").unwrap();
    assert!(
        answers
            .iter()
            .all(|a| a["data"]["startChat"]["visitorId"] == credential.as_str()),
        "a known visitor keeps its credential"
    );
    let tokens: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| {
            a["data"]["startChat"]["visitorToken"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 50);
}

#[tokio::test]
async fn a_returning_visitor_is_found_again_and_moved() {
    let (app, admin, _, key) = geo_app(|_| {}).await;
    start_from(&app, &key, "traveller", SPAIN_MALAGA_IP).await;
    let first = contact_by_visitor(&app, "traveller").await;
    start_from(&app, &key, "traveller", ITALY_ROME_IP).await;
    let contact = contact_view(&app, &admin, "traveller").await;
    assert_eq!(contact["id"], first.id.to_string());
    assert_eq!(contact["location"]["countryCode"], "IT");
    assert_eq!(contact["lastIp"], ITALY_ROME_IP);
    assert!(contact["lastSeenAt"].as_str() > contact["firstSeenAt"].as_str());
    assert_eq!(contact["chats"]["edges"].as_array().unwrap().len(), 2);
    // A later chat from an unlocatable address keeps what is known.
    start_from(&app, &key, "traveller", "10.0.0.1").await;
    assert_eq!(
        contact_view(&app, &admin, "traveller").await["location"]["countryCode"],
        "IT"
    );
}

#[tokio::test]
async fn a_bad_project_key_gets_a_clear_code_and_writes_nothing() {
    let (app, _, _, _) = geo_app(|_| {}).await;
    for key in ["pk_nope", "", &"k".repeat(500)] {
        let body = app
            .graphql(
                None,
                START,
                json!({"i": {"projectKey": key, "visitorId": "v1"}}),
            )
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }
    let db = &app.app_services.db;
    assert_eq!(contact::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(chat::Entity::find().count(db).await.unwrap(), 0);
}

#[tokio::test]
async fn visitor_ids_are_issued_by_the_server_and_unknown_ones_start_a_new_visitor() {
    let (app, _, _, key) = geo_app(|_| {}).await;
    let first = app
        .graphql(None, START, json!({"i": {"projectKey": key}}))
        .await;
    let issued = first["data"]["startChat"]["visitorId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(issued.starts_with("v_") && issued.len() >= 40, "{first}");
    // 32 random bytes: at least 128 bits, as the trust model asks.
    assert!(issued.len() - 2 >= 22);
    // An id the server never issued quietly starts a visitor of its own.
    for made_up in ["browser-123", "no spaces please", "v_notissued"] {
        let body = app
            .graphql(
                None,
                START,
                json!({"i": {"projectKey": key, "visitorId": made_up}}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let given = body["data"]["startChat"]["visitorId"].as_str().unwrap();
        assert_ne!(given, made_up);
        assert_ne!(given, issued);
    }
    assert_eq!(
        contact::Entity::find()
            .count(&app.app_services.db)
            .await
            .unwrap(),
        4
    );
    // Only a hash of the credential is stored.
    let stored = entity::visitor::Entity::find()
        .all(&app.app_services.db)
        .await
        .unwrap();
    assert!(stored.iter().all(|v| !v.key_hash.contains(&issued)));
    let too_long = app
        .graphql(
            None,
            START,
            json!({"i": {"projectKey": key, "visitorId": "x".repeat(500)}}),
        )
        .await;
    assert_eq!(error_code(&too_long), "BAD_USER_INPUT");
    assert_eq!(too_long["errors"][0]["extensions"]["field"], "visitorId");
}

#[tokio::test]
async fn a_server_may_pass_the_visitor_ip_with_the_secret_key() {
    let (app, admin, project_id, key) = geo_app(|settings| {
        settings.trusted_proxies = Default::default();
    })
    .await;
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
    let input = |secret: Option<&str>| json!({"projectKey": key, "visitorIp": SPAIN_MALAGA_IP, "secretKey": secret});
    for (wrong, code) in [(Some("sk_wrong"), "FORBIDDEN"), (None, "BAD_USER_INPUT")] {
        let body = app.graphql(None, START, json!({"i": input(wrong)})).await;
        assert_eq!(error_code(&body), code, "{body}");
    }
    assert_eq!(
        contact::Entity::find()
            .count(&app.app_services.db)
            .await
            .unwrap(),
        0
    );

    let body = app
        .start_chat_as("server-side", &[], START, input(Some(&secret)))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        contact_view(&app, &admin, "server-side").await["location"]["provinceName"],
        "Málaga"
    );
}

#[tokio::test]
async fn an_agents_correction_survives_later_lookups() {
    let (app, admin, _, key) = geo_app(|_| {}).await;
    start_from(&app, &key, "corrected", SPAIN_MALAGA_IP).await;
    let id = contact_by_visitor(&app, "corrected").await.id.to_string();
    let update = "mutation($id: ID!, $loc: LocationInput!) { updateContact(id: $id, input: {location: $loc}) { locationCorrected location { countryCode city } } }";
    let body = app
        .graphql(
            Some(&admin.token),
            update,
            json!({"id": id, "loc": {"countryCode": "pt", "city": "Lisbon"}}),
        )
        .await;
    assert_eq!(
        body["data"]["updateContact"],
        json!({"locationCorrected": true, "location": {"countryCode": "PT", "city": "Lisbon"}})
    );
    start_from(&app, &key, "corrected", ITALY_ROME_IP).await;
    let contact = contact_view(&app, &admin, "corrected").await;
    assert_eq!(contact["location"]["countryCode"], "PT");
    assert_eq!(contact["lastIp"], ITALY_ROME_IP);

    let bad = app
        .graphql(
            Some(&admin.token),
            update,
            json!({"id": id, "loc": {"countryCode": "Portugal"}}),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(
        bad["errors"][0]["extensions"]["field"],
        "location.countryCode"
    );
}

#[tokio::test]
async fn another_projects_contact_answers_like_a_missing_one() {
    let (app, _, _, key) = geo_app(|_| {}).await;
    start_from(&app, &key, "private-visitor", SPAIN_MALAGA_IP).await;
    let outsider = app.agent("outsider").await;
    app.project(&outsider, "Other").await;
    let id = contact_by_visitor(&app, "private-visitor")
        .await
        .id
        .to_string();
    let foreign = app
        .graphql(Some(&outsider.token), CONTACT, json!({"id": id}))
        .await;
    let missing = app
        .graphql(
            Some(&outsider.token),
            CONTACT,
            json!({"id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert_eq!(
        foreign["errors"][0]["message"],
        missing["errors"][0]["message"]
    );
    let anonymous = app.graphql(None, CONTACT, json!({"id": id})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn ip_retention_truncates_after_locating() {
    let (app, admin, _, key) = geo_app(|settings| {
        settings.ip_retention = "truncated".parse().unwrap();
    })
    .await;
    start_from(&app, &key, "private-person", SPAIN_MALAGA_IP).await;
    let contact = contact_view(&app, &admin, "private-person").await;
    assert_eq!(contact["lastIp"], "81.45.12.0");
    assert_eq!(contact["chats"]["edges"][0]["node"]["ip"], "81.45.12.0");
    assert_eq!(contact["location"]["city"], "Málaga");

    let (app, admin, _, key) =
        geo_app(|settings| settings.ip_retention = "none".parse().unwrap()).await;
    start_from(&app, &key, "anonymous-person", GERMANY_BAVARIA_IPV6).await;
    let contact = contact_view(&app, &admin, "anonymous-person").await;
    assert!(contact["lastIp"].is_null());
    assert_eq!(contact["location"]["countryCode"], "DE");
}

#[tokio::test]
async fn replacing_the_database_file_changes_the_next_lookup() {
    let geo_dir = tempfile::tempdir().unwrap();
    let geo_path = geo_dir.path().join("city.mmdb");
    write_city_fixture(&geo_path, FixtureVariant::Initial);
    let app = spawn_app_with(|settings| {
        settings.geo.database = Some(geo_path.clone());
        settings.geo.reload_interval = Duration::from_millis(100);
        settings.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = public_key(&app, &admin, &project_id).await;
    start_from(&app, &key, "before", US_CALIFORNIA_IP).await;
    assert_eq!(
        contact_view(&app, &admin, "before").await["location"]["stateName"],
        "California"
    );

    replace_city_fixture(&geo_path, FixtureVariant::Updated);
    let mut state = Value::Null;
    for attempt in 0..50 {
        let visitor = format!("after-{attempt}");
        start_from(&app, &key, &visitor, US_CALIFORNIA_IP).await;
        state = contact_view(&app, &admin, &visitor).await["location"]["stateName"].clone();
        if state == "Texas" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "Texas");
}

#[tokio::test]
async fn without_a_geo_database_chats_start_and_have_no_location() {
    let app = spawn_app().await;
    let admin = app.agent("admin").await;
    let project_id = app.project(&admin, "Shop").await;
    let key = public_key(&app, &admin, &project_id).await;
    start_from(&app, &key, "somewhere", SPAIN_MALAGA_IP).await;
    assert!(contact_view(&app, &admin, "somewhere").await["location"].is_null());
}

#[tokio::test]
async fn a_national_phone_in_the_form_is_read_in_the_country_the_chat_came_from() {
    let (app, admin, project_id, key) = geo_app(|_| {}).await;
    let question = app
        .graphql(
            Some(&admin.token),
            "mutation($p: ID!) { createFormQuestion(projectId: $p, input: {key: \"phone\", label: \"Phone\", kind: PHONE, target: {field: PHONE}}) { id } }",
            json!({"p": project_id}),
        )
        .await;
    assert!(question["errors"].is_null(), "{question}");
    start_from(&app, &key, "madrid", SPAIN_MALAGA_IP).await;
    // An agent places the contact elsewhere; the visitor's own chat still
    // comes from Spain, and that is where its national number is read.
    let id = contact_by_visitor(&app, "madrid").await.id.to_string();
    let moved = app
        .graphql(
            Some(&admin.token),
            "mutation($id: ID!) { updateContact(id: $id, input: {location: {countryCode: \"US\"}}) { id } }",
            json!({"id": id}),
        )
        .await;
    assert!(moved["errors"].is_null(), "{moved}");
    let started = start_from(&app, &key, "madrid", SPAIN_MALAGA_IP).await;
    let token = started["data"]["startChat"]["visitorToken"]
        .as_str()
        .unwrap();
    let body = app
        .graphql(
            Some(token),
            "mutation { submitContactForm(answers: [{key: \"phone\", value: \"612 34 56 78\"}]) { contact { phone } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["submitContactForm"]["contact"]["phone"], "+34612345678",
        "{body}"
    );
}
