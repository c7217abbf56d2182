//! One log line per GraphQL request over HTTP, written when it ends: what
//! ran (operation name and type, root fields), how it ended (status,
//! error codes, duration), who asked (agent or visitor's project) and the
//! request id. Slow requests are logged at `warn`. Never a token,
//! password, variable or query text.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::ServerError;
use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::HttpState;
use crate::graphql::context::Viewer;

/// What a request asked to run, read from its parsed document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationShape {
    pub name: Option<String>,
    /// `query`, `mutation` or `subscription`; none when the document names
    /// no operation it holds (execution reports that).
    pub kind: Option<&'static str>,
    /// The root fields' names (not aliases), in document order, without
    /// repeats; fragments at the root are looked into.
    pub root_fields: Vec<String>,
}

impl OperationShape {
    pub fn of(request: &mut async_graphql::Request) -> OperationShape {
        let name = request.operation_name.clone();
        let Ok(document) = request.parsed_query() else {
            return OperationShape {
                name,
                ..OperationShape::default()
            };
        };
        let operation = match (&document.operations, name.as_deref()) {
            (DocumentOperations::Single(operation), _) => Some(operation),
            (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                operations.values().next()
            }
            (DocumentOperations::Multiple(_), None) => None,
        };
        let Some(operation) = operation else {
            return OperationShape {
                name,
                ..OperationShape::default()
            };
        };
        let name = name.or_else(|| match &document.operations {
            DocumentOperations::Multiple(operations) => operations
                .iter()
                .find(|(_, candidate)| std::ptr::eq(*candidate, operation))
                .map(|(name, _)| name.to_string()),
            DocumentOperations::Single(_) => None,
        });
        let mut root_fields = Vec::new();
        let mut pending = vec![&operation.node.selection_set.node];
        // Each fragment is looked into once: the pipeline has refused cycles,
        // and this bounds the walk whatever it is given.
        let mut fragments_seen = BTreeSet::new();
        while let Some(selection_set) = pending.pop() {
            for selection in &selection_set.items {
                match &selection.node {
                    Selection::Field(field) => {
                        let field_name = field.node.name.node.to_string();
                        if !root_fields.contains(&field_name) {
                            root_fields.push(field_name);
                        }
                    }
                    Selection::InlineFragment(fragment) => {
                        pending.push(&fragment.node.selection_set.node);
                    }
                    Selection::FragmentSpread(spread) => {
                        let fragment_name = &spread.node.fragment_name.node;
                        if fragments_seen.insert(fragment_name.as_str())
                            && let Some(fragment) = document.fragments.get(fragment_name)
                        {
                            pending.push(&fragment.node.selection_set.node);
                        }
                    }
                }
            }
        }
        OperationShape {
            name,
            kind: Some(match operation.node.ty {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            }),
            root_fields,
        }
    }
}

/// Who made a request, as far as it can be said without a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CallerLabel {
    Agent(uuid::Uuid),
    VisitorOfProject(uuid::Uuid),
    #[default]
    Anonymous,
}

impl CallerLabel {
    pub fn of(viewer: &Viewer) -> CallerLabel {
        match (&viewer.agent, &viewer.visitor) {
            (Some(agent), _) => CallerLabel::Agent(agent.id),
            (None, Some(visitor)) => CallerLabel::VisitorOfProject(visitor.project_id),
            (None, None) => CallerLabel::Anonymous,
        }
    }

    /// The `agent` and `visitor_project` fields of a line; empty when not known.
    fn fields(&self) -> (String, String) {
        match self {
            CallerLabel::Agent(id) => (id.to_string(), String::new()),
            CallerLabel::VisitorOfProject(id) => (String::new(), id.to_string()),
            CallerLabel::Anonymous => (String::new(), String::new()),
        }
    }
}

/// What the handler tells the log about the request it answered; carried
/// in the response's extensions.
#[derive(Clone, Debug, Default)]
pub struct RequestSummary {
    pub shape: OperationShape,
    pub caller: CallerLabel,
    /// The distinct `extensions.code` of the errors answered.
    pub error_codes: BTreeSet<String>,
    /// The code of the first error answered.
    pub first_error_code: Option<String>,
}

/// The code of a refusal by a rate limit or a login lock.
const RATE_LIMITED: &str = "RATE_LIMITED";

impl RequestSummary {
    pub fn refused<'a>(errors: impl IntoIterator<Item = &'a ServerError>) -> RequestSummary {
        RequestSummary::default().with_errors(errors)
    }

    pub fn with_errors<'a>(mut self, errors: impl IntoIterator<Item = &'a ServerError>) -> Self {
        for error in errors {
            let code = error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .and_then(|code| match code {
                    async_graphql::Value::String(code) => Some(code.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "UNKNOWN".to_owned());
            self.first_error_code.get_or_insert_with(|| code.clone());
            self.error_codes.insert(code);
        }
        self
    }

    fn error_codes_joined(&self) -> String {
        let codes: Vec<&str> = self.error_codes.iter().map(String::as_str).collect();
        codes.join(",")
    }
}

/// The middleware on `/graphql`. Websocket upgrades and the playground
/// page carry no summary and are not GraphQL requests here: a websocket's
/// operations are logged as they start and end.
pub async fn log_graphql_requests(
    State(state): State<Arc<HttpState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&super::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    if let Some(summary) = response.extensions().get::<RequestSummary>() {
        let took = started.elapsed();
        write_line(
            summary,
            response.status().as_u16(),
            took,
            state.services.settings.slow_request,
            &request_id,
        );
        state.metrics.record_request(
            &summary.shape.root_fields,
            summary.shape.kind,
            summary.first_error_code.as_deref(),
            summary.error_codes.contains(RATE_LIMITED),
            took,
        );
    }
    response
}

fn write_line(
    summary: &RequestSummary,
    status: u16,
    duration: Duration,
    slow: Duration,
    request_id: &str,
) {
    let operation = summary.shape.name.as_deref().unwrap_or("");
    let operation_type = summary.shape.kind.unwrap_or("");
    let root_fields = summary.shape.root_fields.join(",");
    let error_codes = summary.error_codes_joined();
    let (agent, visitor_project) = summary.caller.fields();
    let duration_ms = duration.as_secs_f64() * 1000.0;
    macro_rules! line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                operation,
                operation_type,
                root_fields,
                status,
                error_codes,
                duration_ms,
                agent,
                visitor_project,
                request_id,
                $message
            )
        };
    }
    if duration >= slow {
        line!(warn, "slow graphql request");
    } else {
        line!(info, "graphql request");
    }
}

/// The start and end lines of one websocket operation. Dropped without
/// an end (the client sent `complete`, the connection closed, or the
/// caller lost access), it logs the operation as stopped.
pub struct OperationLog {
    summary: RequestSummary,
    started: Instant,
    ended: bool,
}

impl OperationLog {
    pub fn started(shape: OperationShape, caller: CallerLabel) -> OperationLog {
        let log = OperationLog {
            summary: RequestSummary {
                shape,
                caller,
                ..RequestSummary::default()
            },
            started: Instant::now(),
            ended: false,
        };
        let (agent, visitor_project) = log.summary.caller.fields();
        tracing::info!(
            operation = log.summary.shape.name.as_deref().unwrap_or(""),
            operation_type = log.summary.shape.kind.unwrap_or(""),
            root_fields = log.summary.shape.root_fields.join(","),
            agent,
            visitor_project,
            "websocket operation started"
        );
        log
    }

    /// Errors of a result sent to the client.
    pub fn saw(&mut self, errors: &[ServerError]) {
        let summary = std::mem::take(&mut self.summary);
        self.summary = summary.with_errors(errors);
    }

    /// `completed` when the stream ended, `failed` when it never ran.
    pub fn ended_as(&mut self, outcome: &'static str) {
        self.ended = true;
        let (agent, visitor_project) = self.summary.caller.fields();
        tracing::info!(
            operation = self.summary.shape.name.as_deref().unwrap_or(""),
            operation_type = self.summary.shape.kind.unwrap_or(""),
            root_fields = self.summary.shape.root_fields.join(","),
            outcome,
            error_codes = self.summary.error_codes_joined(),
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            agent,
            visitor_project,
            "websocket operation ended"
        );
    }
}

impl Drop for OperationLog {
    fn drop(&mut self) {
        if !self.ended {
            self.ended_as("stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str, operation_name: Option<&str>) -> OperationShape {
        let mut request = async_graphql::Request::new(query);
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        OperationShape::of(&mut request)
    }

    #[test]
    fn names_the_operation_that_runs_and_its_root_fields() {
        let found = shape(
            "query a { me { id } } mutation b { login(email: \"\", password: \"\") { token } x: logout }",
            Some("b"),
        );
        assert_eq!(found.name.as_deref(), Some("b"));
        assert_eq!(found.kind, Some("mutation"));
        assert_eq!(found.root_fields, ["login", "logout"]);
    }

    #[test]
    fn an_anonymous_operation_and_fields_behind_root_fragments() {
        let found = shape(
            "{ me { id } ...more ... on QueryRoot { projects { id } me { email } } } fragment more on QueryRoot { me { id } ...more }",
            None,
        );
        assert_eq!(found.name, None);
        assert_eq!(found.kind, Some("query"));
        assert_eq!(found.root_fields, ["me", "projects"]);
    }

    #[test]
    fn the_only_named_operation_is_named_without_operation_name() {
        let found = shape("subscription watch { notifications { id } }", None);
        assert_eq!(found.name.as_deref(), Some("watch"));
        assert_eq!(found.kind, Some("subscription"));
    }

    #[test]
    fn a_document_that_does_not_parse_or_names_nothing_has_no_kind() {
        assert_eq!(shape("{ me ", None).kind, None);
        assert_eq!(shape("query a { me } query b { me }", None).kind, None);
        assert_eq!(shape("query a { me }", Some("c")).kind, None);
    }
}
