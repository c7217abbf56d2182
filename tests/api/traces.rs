//! Traces as a collector receives them: the real binary sends its spans
//! over OTLP/HTTP (protobuf) to a receiver this test runs, continuing the
//! trace of the client's `traceparent`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};

use crate::server_process::ServerProcess;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver on a free port; what it was sent, as received.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, Bytes)>>>) {
    let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                kept.lock().unwrap().push((content_type, body));
                // An empty ExportTraceServiceResponse.
                ([("content-type", "application/x-protobuf")], Bytes::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn string_attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attribute(span, key) {
        Some(AnyValue::StringValue(text)) => Some(text),
        _ => None,
    }
}

#[tokio::test]
async fn spans_of_a_request_reach_the_collector_in_the_clients_trace() {
    let (endpoint, received) = receiver().await;
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.path().join("contacts.db").display()
    );
    let client = reqwest::Client::new();
    let mut server = ServerProcess::spawn(
        &database_url,
        data_dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    server.wait_until_up(&client).await;
    let password = std::fs::read_to_string(data_dir.path().join("first-start-login.txt"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("password: ").map(str::to_owned))
        .unwrap();
    let graphql = format!("http://{}/graphql", server.address);
    let login: Value = client
        .post(&graphql)
        .json(&json!({"query": "mutation($p: String!) { login(email: \"owner@contacts.local\", password: $p) { token } }", "variables": {"p": password}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let me: Value = client
        .post(&graphql)
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"))
        .json(&json!({"query": "query whoAmI { me { id email } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(me["data"]["me"]["id"].is_string(), "{me}");

    // An export: its job and steps are spans too.
    let ask = |query: &'static str, variables: Value| {
        let request = client
            .post(&graphql)
            .bearer_auth(&token)
            .json(&json!({"query": query, "variables": variables}));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let projects = ask("{ projects { id } }", json!({})).await;
    let project_id = projects["data"]["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let asked = ask(
        "mutation($p: ID!) { exportContacts(projectId: $p, from: \"2000-01-01\", to: \"2100-01-01\") { id } }",
        json!({"p": project_id}),
    )
    .await;
    let job_id = asked["data"]["exportContacts"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..200 {
        let job = ask(
            "query($id: ID!) { exportJob(id: $id) { status mailSentAt } }",
            json!({"id": job_id}),
        )
        .await;
        if job["data"]["exportJob"]["mailSentAt"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    server.wait_for_exit(Duration::from_secs(30)).await;

    let exports = received.lock().unwrap().clone();
    assert!(
        !exports.is_empty(),
        "no OTLP request came:\n{}",
        server.log()
    );
    let mut spans = Vec::new();
    for (content_type, body) in &exports {
        assert_eq!(content_type, "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("an OTLP request");
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| {
                    resource
                        .attributes
                        .iter()
                        .find(|attribute| attribute.key == "service.name")
                })
                .and_then(|attribute| attribute.value.clone())
                .and_then(|value| value.value);
            assert_eq!(service, Some(AnyValue::StringValue("contacts".into())));
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans);
            }
        }
    }
    let in_trace: Vec<&Span> = spans
        .iter()
        .filter(|span| hex(&span.trace_id) == TRACE_ID)
        .collect();
    let names: Vec<&str> = in_trace.iter().map(|span| span.name.as_str()).collect();
    let named = |name: &str| {
        *in_trace
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no {name} span in the client's trace: {names:?}"))
    };
    let request = named("request");
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN_ID);
    assert_eq!(string_attribute(request, "path"), Some("/graphql"));
    let operation = named("graphql operation");
    assert_eq!(operation.parent_span_id, request.span_id);
    assert_eq!(string_attribute(operation, "operation"), Some("whoAmI"));
    let field = named("graphql field");
    assert_eq!(field.parent_span_id, operation.span_id);
    assert_eq!(string_attribute(field, "field"), Some("me"));
    // The token's check runs before the operation; the agent's row is read
    // inside it, by `me`.
    let statements: Vec<&&Span> = in_trace
        .iter()
        .filter(|span| span.name.starts_with("sql "))
        .collect();
    assert!(!statements.is_empty(), "no SQL span: {names:?}");
    for statement in &statements {
        assert!(statement.end_time_unix_nano >= statement.start_time_unix_nano);
        assert!(string_attribute(statement, "db.query.text").is_some_and(|sql| !sql.is_empty()));
        assert!(
            in_trace
                .iter()
                .any(|span| span.span_id == statement.parent_span_id),
            "a statement without its parent in the trace"
        );
    }
    // Spans of the request nest in time inside it.
    for span in &in_trace {
        if span.span_id != request.span_id {
            assert!(
                span.start_time_unix_nano >= request.start_time_unix_nano,
                "{}",
                span.name
            );
        }
    }
    // The export's job span, with its steps inside it.
    let job_span = spans
        .iter()
        .find(|span| {
            span.name == "export" && string_attribute(span, "job") == Some(job_id.as_str())
        })
        .unwrap_or_else(|| panic!("no span of export {job_id}"));
    assert_eq!(
        string_attribute(job_span, "project"),
        Some(project_id.as_str())
    );
    for step in ["export file", "export mail"] {
        assert!(
            spans
                .iter()
                .any(|span| span.name == step && span.parent_span_id == job_span.span_id),
            "no {step} span inside the job's"
        );
    }
    let file_span = spans
        .iter()
        .find(|span| span.name == "export file" && span.parent_span_id == job_span.span_id)
        .unwrap();
    assert!(
        spans
            .iter()
            .any(|span| span.name == "export upload" && span.parent_span_id == file_span.span_id),
        "no upload span inside the file's"
    );
    assert!(
        spans
            .iter()
            .any(|span| span.name.starts_with("sql ") && span.trace_id == job_span.trace_id),
        "no SQL span in the export's trace"
    );

    // No span carries the token or the password.
    let everything = format!("{spans:?}");
    assert!(!everything.contains(&token));
    assert!(!everything.contains(&password));
}
