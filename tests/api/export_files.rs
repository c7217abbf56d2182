//! What a person finds in an export file: clean CSV, typed XLSX, the rows
//! the contacts list shows for the same filter, and the chosen columns;
//! over the in-process S3 and SMTP servers.

use std::collections::BTreeSet;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, TimeZone, Utc};
use entity::contact;
use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};

use crate::exports::{Outside, finished, link_in, mail_text, tmp_files};
use crate::helpers::{TestAgent, TestApp, error_code, spawn_app_full};

pub(crate) const EXPORT: &str = "mutation($p: ID!, $from: String!, $to: String!, $tz: String, $format: ExportFormat, $filter: ContactFilterInput, $columns: [ExportColumn!]) {
    exportContacts(projectId: $p, from: $from, to: $to, timeZone: $tz, format: $format, filter: $filter, columns: $columns) { id status } }";

/// One contact of the scene.
pub(crate) struct Person {
    pub name: Option<&'static str>,
    pub email: Option<&'static str>,
    pub phone: Option<&'static str>,
    pub country: Option<&'static str>,
    pub state: Option<&'static str>,
    pub created_at: DateTime<Utc>,
    pub attributes: Value,
}

fn at(day: u32, hour: u32, minute: u32, second: u32, nanos: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, hour, minute, second)
        .unwrap()
        + chrono::Duration::nanoseconds(nanos)
}

/// Contacts of January 2026 (and one of 2025, outside every export here),
/// with accents, other scripts, phones, formula-like text and attributes.
pub(crate) fn people() -> Vec<Person> {
    let person = |name, email, phone, country, state, created_at| Person {
        name,
        email,
        phone,
        country,
        state,
        created_at,
        attributes: json!({}),
    };
    let mut people = vec![
        person(
            Some("José Müller"),
            Some("jose@example.com"),
            Some("+34612345678"),
            Some("ES"),
            Some("Andalusia"),
            at(2, 6, 9, 19, 822_360_069),
        ),
        person(
            Some("王芳"),
            Some("wang@example.cn"),
            Some("+8613812345678"),
            Some("CN"),
            Some("Beijing"),
            at(3, 12, 0, 0, 0),
        ),
        person(
            Some("Анна"),
            None,
            Some("+79161234567"),
            Some("RU"),
            Some("Moscow"),
            at(4, 23, 30, 5, 500_000_000),
        ),
        person(
            Some("=HYPERLINK(\"http://evil.example\",\"click\")"),
            Some("evil@example.com"),
            None,
            Some("ES"),
            Some("Madrid"),
            at(5, 8, 0, 0, 0),
        ),
        person(
            Some("-2+3"),
            None,
            None,
            Some("ES"),
            Some("Andalusia"),
            at(6, 9, 0, 0, 0),
        ),
        person(
            Some("García López"),
            Some("garcia@example.com"),
            Some("+34699111222"),
            Some("ES"),
            Some("Catalonia"),
            at(7, 10, 0, 0, 0),
        ),
        person(
            Some("Ana García"),
            Some("ana@example.com"),
            Some("+12025550123"),
            Some("US"),
            Some("California"),
            at(8, 11, 0, 0, 0),
        ),
        person(None, None, None, None, None, at(9, 0, 0, 0, 0)),
        person(
            Some("Old García"),
            Some("old@example.com"),
            Some("+34612000000"),
            Some("ES"),
            Some("Andalusia"),
            Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap(),
        ),
    ];
    people[0].attributes = json!({"plan": "Pro", "seats": 3, "vip": true});
    people[3].attributes = json!({"plan": "@SUM(1+1)*cmd|' /C calc'!A0"});
    people[5].attributes = json!({"plan": "Free"});
    people
}

/// The range every export here asks for: January 2026 in Madrid.
pub(crate) fn january() -> Value {
    json!({"from": "2026-01-01", "to": "2026-01-31", "tz": "Europe/Madrid"})
}

pub(crate) fn in_january(person: &Person) -> bool {
    person.created_at >= Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap()
        && person.created_at < Utc.with_ymd_and_hms(2026, 1, 31, 23, 0, 0).unwrap()
}

/// Stores the people in a new project; their ids, in the same order.
pub(crate) async fn insert(
    app: &TestApp,
    agent: &TestAgent,
    people: &[Person],
) -> (String, Vec<String>) {
    let project_id = app.project(agent, "Shop").await;
    let project = uuid::Uuid::parse_str(&project_id).unwrap();
    let mut ids = Vec::new();
    let rows: Vec<contact::ActiveModel> = people
        .iter()
        .enumerate()
        .map(|(n, person)| {
            let id = uuid::Uuid::now_v7();
            ids.push(id.to_string());
            contact::ActiveModel {
                id: Set(id),
                project_id: Set(project),
                name: Set(person.name.map(str::to_owned)),
                email: Set(person.email.map(str::to_owned)),
                phone: Set(person.phone.map(str::to_owned)),
                company: Set(None),
                custom_attributes: Set(person.attributes.clone()),
                last_ip: Set(None),
                country_code: Set(person.country.map(str::to_owned)),
                country_name: Set(None),
                state_name: Set(person.state.map(str::to_owned)),
                state_code: Set(None),
                province_name: Set(None),
                province_code: Set(None),
                city: Set(None),
                postal_code: Set(None),
                time_zone: Set(None),
                latitude: Set(None),
                longitude: Set(None),
                accuracy_radius_km: Set(None),
                location_corrected: Set(false),
                external_id: Set(Some(format!("site-user-secret-{n}"))),
                field_sources: Set(json!({})),
                first_seen_at: Set(person.created_at),
                last_seen_at: Set(person.created_at),
                created_at: Set(person.created_at),
                updated_at: Set(person.created_at),
            }
        })
        .collect();
    if !rows.is_empty() {
        contact::Entity::insert_many(rows)
            .exec(&app.app_services.db)
            .await
            .expect("contacts");
    }
    (project_id, ids)
}

/// Asks for an export and waits until it completed; the job as the
/// `exportJob` query shows it.
pub(crate) async fn export(
    app: &TestApp,
    agent: &TestAgent,
    project_id: &str,
    extra: Value,
) -> Value {
    let mut variables = january();
    variables["p"] = json!(project_id);
    if let (Some(all), Some(extra)) = (variables.as_object_mut(), extra.as_object()) {
        all.extend(extra.clone());
    }
    let body = app.graphql(Some(&agent.token), EXPORT, variables).await;
    let id = body["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("exportContacts failed: {body}"))
        .to_owned();
    let done = finished(app, agent, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    done
}

/// The file behind a completed job's link.
pub(crate) async fn download(job: &Value) -> (Vec<u8>, String) {
    let link = job["downloadUrl"].as_str().expect("a link");
    let response = reqwest::get(link).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.bytes().await.unwrap().to_vec(), content_type)
}

fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|row| row.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column<'a>(header: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let index = header
        .iter()
        .position(|column| column == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows.iter().map(|row| row[index].as_str()).collect()
}

#[tokio::test]
async fn csv_files_keep_phones_guard_formulas_and_write_times_in_the_zone() {
    let outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, outside.adapters()).await;
    let agent = app.agent("exporter").await;
    let people = people();
    let (project_id, ids) = insert(&app, &agent, &people).await;

    let job = export(&app, &agent, &project_id, json!({})).await;
    let job_id = job["id"].as_str().unwrap();
    let key = format!("contacts/{project_id}/{job_id}.csv");
    let object = outside.s3.object(&key).expect("the object in the bucket");
    let (bytes, content_type) = download(&job).await;
    assert_eq!(bytes, object);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(!bytes.starts_with(b"\xEF\xBB\xBF"), "a byte-order mark");
    let text = String::from_utf8(bytes.clone()).expect("UTF-8");
    assert!(text.lines().count() > 1 && text.split("\r\n").count() == text.lines().count() + 1);

    let (header, rows) = csv_rows(&bytes);
    assert_eq!(
        header,
        [
            "id",
            "name",
            "email",
            "phone",
            "company",
            "country",
            "state",
            "province",
            "city",
            "postal_code",
            "time_zone",
            "created_at",
            "last_seen_at",
            "plan",
            "seats",
            "vip"
        ]
    );
    let in_range: Vec<&String> = ids
        .iter()
        .zip(&people)
        .filter(|(_, person)| in_january(person))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(column(&header, &rows, "id"), in_range, "rows oldest first");
    assert_eq!(
        column(&header, &rows, "phone"),
        [
            "+34612345678",
            "+8613812345678",
            "+79161234567",
            "",
            "",
            "+34699111222",
            "+12025550123",
            ""
        ]
    );
    assert_eq!(
        column(&header, &rows, "name"),
        [
            "José Müller",
            "王芳",
            "Анна",
            "'=HYPERLINK(\"http://evil.example\",\"click\")",
            "'-2+3",
            "García López",
            "Ana García",
            ""
        ]
    );
    assert_eq!(
        &column(&header, &rows, "created_at")[..3],
        [
            "2026-01-02T07:09:19+01:00",
            "2026-01-03T13:00:00+01:00",
            "2026-01-05T00:30:05+01:00"
        ]
    );
    assert_eq!(
        &column(&header, &rows, "plan")[..4],
        ["Pro", "", "", "'@SUM(1+1)*cmd|' /C calc'!A0"]
    );
    assert_eq!(column(&header, &rows, "seats")[0], "3");
    assert_eq!(column(&header, &rows, "vip")[0], "true");
    assert!(
        !text.contains("site-user-secret"),
        "a credential in the file"
    );

    // The mail links the same file.
    let mails = outside
        .smtp
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    let mailed = reqwest::get(link_in(&mail_text(&mails[0].data_text())))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(mailed.as_ref(), object.as_slice());
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));
}

#[tokio::test]
async fn exported_rows_are_those_the_list_shows_for_the_same_filter_within_the_range() {
    let outside = Outside::start().await;
    let app = spawn_app_full(
        |settings| settings.exports.chunk_size = 2,
        outside.adapters(),
    )
    .await;
    let agent = app.agent("exporter").await;
    let people = people();
    let (project_id, ids) = insert(&app, &agent, &people).await;
    let in_range: BTreeSet<&str> = ids
        .iter()
        .zip(&people)
        .filter(|(_, person)| in_january(person))
        .map(|(id, _)| id.as_str())
        .collect();
    let filters = [
        json!({}),
        json!({"search": "garc"}),
        json!({"search": "612 34"}),
        json!({"countryCode": "es"}),
        json!({"state": "Andalusia"}),
        json!({"hasEmail": false}),
        json!({"hasPhone": true, "countryCode": "ES"}),
        json!({"createdFrom": "2026-01-05", "createdTo": "2026-01-07", "timeZone": "UTC"}),
        json!({"search": "nobody at all"}),
    ];
    for filter in filters {
        let listed = app
            .graphql(
                Some(&agent.token),
                "query($p: ID!, $f: ContactFilterInput) { contacts(projectId: $p, first: 100, filter: $f) { nodes { id } } }",
                json!({"p": project_id, "f": filter}),
            )
            .await;
        let listed: BTreeSet<String> = listed["data"]["contacts"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{listed}"))
            .iter()
            .map(|node| node["id"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| listed.contains(*id) && in_range.contains(id))
            .collect();

        let job = export(&app, &agent, &project_id, json!({"filter": filter})).await;
        let (bytes, _) = download(&job).await;
        let (header, rows) = csv_rows(&bytes);
        // People were inserted oldest first: the same order as the file's.
        assert_eq!(column(&header, &rows, "id"), expected, "filter {filter}");
        assert_eq!(job["rowsWritten"], expected.len(), "filter {filter}");
    }
}

#[tokio::test]
async fn chosen_columns_come_in_their_order_and_the_job_records_its_choices() {
    let outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, outside.adapters()).await;
    let agent = app.agent("exporter").await;
    let people = people();
    let (project_id, _) = insert(&app, &agent, &people).await;
    let columns = json!([
        {"field": "EMAIL"},
        {"attribute": "plan"},
        {"field": "PHONE"},
        {"attribute": "city"},
        {"field": "CREATED_AT"}
    ]);
    let filter = json!({"search": "  García ", "countryCode": "es", "hasPhone": true});
    let job = export(
        &app,
        &agent,
        &project_id,
        json!({"columns": columns, "filter": filter}),
    )
    .await;
    let (bytes, _) = download(&job).await;
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(
        header,
        ["email", "plan", "phone", "attribute_city", "created_at"]
    );
    assert_eq!(
        rows,
        [[
            "garcia@example.com",
            "Free",
            "+34699111222",
            "",
            "2026-01-07T11:00:00+01:00"
        ]]
    );

    let listed = app
        .graphql(
            Some(&agent.token),
            "query($p: ID!) { exports(projectId: $p, first: 10) { nodes { format timeZone
                filter { search createdFrom createdTo countryCode state hasEmail hasPhone }
                columns { field attribute header } } } }",
            json!({"p": project_id}),
        )
        .await;
    assert_eq!(
        listed["data"]["exports"]["nodes"][0],
        json!({
            "format": "CSV",
            "timeZone": "Europe/Madrid",
            "filter": {"search": "García", "createdFrom": null, "createdTo": null,
                "countryCode": "ES", "state": null, "hasEmail": null, "hasPhone": true},
            "columns": [
                {"field": "EMAIL", "attribute": null, "header": "email"},
                {"field": null, "attribute": "plan", "header": "plan"},
                {"field": "PHONE", "attribute": null, "header": "phone"},
                {"field": null, "attribute": "city", "header": "attribute_city"},
                {"field": "CREATED_AT", "attribute": null, "header": "created_at"}
            ]
        }),
        "{listed}"
    );

    // The defaults: every column, no filter.
    export(&app, &agent, &project_id, json!({})).await;
    let listed = app
        .graphql(
            Some(&agent.token),
            "query($p: ID!) { exports(projectId: $p, first: 1) { nodes { format filter { search } columns { header } } } }",
            json!({"p": project_id}),
        )
        .await;
    assert_eq!(
        listed["data"]["exports"]["nodes"][0],
        json!({"format": "CSV", "filter": null, "columns": null}),
        "{listed}"
    );
}

#[tokio::test]
async fn xlsx_files_have_text_phones_date_times_and_no_formula() {
    let outside = Outside::start().await;
    let app = spawn_app_full(|_| {}, outside.adapters()).await;
    let agent = app.agent("exporter").await;
    let people = people();
    let (project_id, ids) = insert(&app, &agent, &people).await;

    let job = export(&app, &agent, &project_id, json!({"format": "XLSX"})).await;
    let job_id = job["id"].as_str().unwrap();
    let object = outside
        .s3
        .object(&format!("contacts/{project_id}/{job_id}.xlsx"))
        .expect("the workbook in the bucket");
    let (bytes, content_type) = download(&job).await;
    assert_eq!(bytes, object);
    assert_eq!(
        content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut book = Xlsx::new(Cursor::new(bytes)).expect("an XLSX workbook");
    assert_eq!(book.sheet_names(), ["Contacts"]);
    let sheet = book.worksheet_range("Contacts").unwrap();
    assert_eq!(sheet.height(), 1 + 8);
    let text = |row: usize, col: usize| match sheet.get((row, col)) {
        Some(Data::String(text)) => text.clone(),
        other => panic!("({row}, {col}) is not text: {other:?}"),
    };
    assert_eq!(text(0, 3), "phone");
    assert_eq!(text(1, 0), ids[0]);
    assert_eq!(text(1, 1), "José Müller");
    assert_eq!(text(2, 1), "王芳");
    assert_eq!(text(3, 1), "Анна");
    assert_eq!(text(4, 1), "=HYPERLINK(\"http://evil.example\",\"click\")");
    assert_eq!(text(5, 1), "-2+3");
    assert_eq!(text(1, 3), "+34612345678");
    assert_eq!(text(7, 3), "+12025550123");
    let Some(Data::DateTime(created)) = sheet.get((1, 11)) else {
        panic!("created_at is not a date: {:?}", sheet.get((1, 11)));
    };
    assert_eq!(
        created.as_datetime().unwrap().to_string(),
        "2026-01-02 07:09:19"
    );
    assert_eq!(sheet.get((1, 14)), Some(&Data::Float(3.0)));
    assert_eq!(text(1, 15), "true");
    assert_eq!(text(4, 13), "@SUM(1+1)*cmd|' /C calc'!A0");
    let formulas = book.worksheet_formula("Contacts").unwrap();
    assert!(
        formulas
            .used_cells()
            .all(|(_, _, formula)| formula.is_empty()),
        "a formula cell"
    );
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));
}

#[tokio::test]
async fn bad_export_choices_are_refused_naming_the_input() {
    let outside = Outside::start().await;
    let app = spawn_app_full(|settings| settings.exports.workers = 0, outside.adapters()).await;
    let agent = app.agent("exporter").await;
    let (project_id, _) = insert(&app, &agent, &[]).await;
    let many: Vec<Value> = (0..101)
        .map(|n| json!({"attribute": format!("a{n}")}))
        .collect();
    let cases = [
        (json!({"columns": []}), "columns"),
        (json!({"columns": many}), "columns"),
        (
            json!({"columns": [{"field": "EMAIL"}, {"field": "NAME"}, {"field": "EMAIL"}]}),
            "columns[2]",
        ),
        (
            json!({"columns": [{"attribute": "Plan Name"}]}),
            "columns[0].attribute",
        ),
        (
            json!({"filter": {"countryCode": "Spain"}}),
            "filter.countryCode",
        ),
        (
            json!({"filter": {"createdFrom": "soon"}}),
            "filter.createdFrom",
        ),
        (
            json!({"filter": {"search": "x".repeat(101)}}),
            "filter.search",
        ),
    ];
    for (extra, field) in cases {
        let mut variables = january();
        variables["p"] = json!(project_id);
        variables
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let body = app.graphql(Some(&agent.token), EXPORT, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{extra}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // Both sides of a column at once is not a column.
    let mut variables = january();
    variables["p"] = json!(project_id);
    variables["columns"] = json!([{"field": "EMAIL", "attribute": "plan"}]);
    let body = app.graphql(Some(&agent.token), EXPORT, variables).await;
    assert!(
        body["data"].is_null() && body["errors"].is_array(),
        "{body}"
    );
    let jobs = entity::export_job::Entity::find()
        .all(&app.app_services.db)
        .await
        .unwrap();
    assert!(jobs.is_empty(), "{jobs:?}");
}
