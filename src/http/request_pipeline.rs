//! The one way from a request as a client sent it, over HTTP or a websocket, to an `async_graphql::Request` ready to execute.

use std::sync::Arc;

use crate::graphql::errors::client_request_error;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, Variables};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::fragment_expansion::{MAX_EXPANDED_FIELDS, expanded_fields, undefined_or_cyclic};
use super::input_guard::{self, InputRefusal};
use super::parsed_documents::ParsedDocuments;
use crate::graphql::context::{RequestOrigin, Viewer};
use crate::graphql::document_checks::DocumentChecks;
use crate::protection::origins::BrowserOrigin;

/// A GraphQL request as JSON: the body of a POST, the payload of a
/// websocket `subscribe` or `start`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRequest {
    pub query: String,
    #[serde(default)]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    #[serde(default)]
    pub extensions: Option<Map<String, Value>>,
}

/// Who is calling and from where, as the transport established it.
#[derive(Clone, Default)]
pub struct Caller {
    pub viewer: Viewer,
    pub origin: RequestOrigin,
    pub browser_origin: BrowserOrigin,
}

/// What every request passes through on its way to the schema, over HTTP
/// and websockets alike.
pub struct Pipeline {
    pub checks: DocumentChecks,
    parsed: ParsedDocuments,
}

impl Pipeline {
    pub fn new(checks: DocumentChecks) -> Pipeline {
        Pipeline {
            checks,
            parsed: ParsedDocuments::default(),
        }
    }

    /// Parses `text`, which passed the input guard, and bounds it with its
    /// fragments spread; keeps what passes. `None` for a text that does
    /// not parse, which async-graphql reports.
    fn parse(&self, text: &str) -> Result<Option<Arc<ExecutableDocument>>, InputRefusal> {
        // Parsed here, after the guard made parsing safe, to bound what
        // validation will walk; async-graphql reuses this parse.
        let Ok(document) = async_graphql::parser::parse_query(text) else {
            return Ok(None);
        };
        if undefined_or_cyclic(&document) {
            return Err(InputRefusal::UndefinedOrCyclicFragments);
        }
        if expanded_fields(&document) > MAX_EXPANDED_FIELDS {
            return Err(InputRefusal::FragmentsExpandTooFar);
        }
        let document = Arc::new(document);
        self.parsed.keep(text, document.clone());
        Ok(Some(document))
    }
}

/// Applies the input guard, parses the document once, bounds it with its
/// fragments spread and passes it through the document checks (depth,
/// arguments, cost), then hands the caller to the resolvers.
pub fn prepare_request(
    raw: RawRequest,
    caller: Caller,
    pipeline: &Pipeline,
) -> Result<async_graphql::Request, Refusal> {
    // A text kept before passed the guard and the fragment bounds.
    let kept = pipeline.parsed.get(&raw.query);
    if kept.is_none() {
        input_guard::check_document(&raw.query)?;
    }
    if raw
        .operation_name
        .as_deref()
        .is_some_and(|name| name.contains('\0'))
    {
        return Err(InputRefusal::Nul.into());
    }
    let variables = raw.variables.map(Value::Object);
    let extensions = raw.extensions.map(Value::Object);
    input_guard::check_json(variables.iter().chain(extensions.iter()))?;
    let variables = variables.map(Variables::from_json).unwrap_or_default();
    let document = match kept {
        Some(document) => Some(document),
        None => pipeline.parse(&raw.query)?,
    };
    if let Some(document) = &document {
        pipeline
            .checks
            .check(document, raw.operation_name.as_deref(), &variables)
            .map_err(Refusal::Document)?;
    }
    let mut request = async_graphql::Request::new(raw.query);
    if let Some(document) = document {
        // async-graphql takes its document by value and edits it (it drops
        // the selections `@skip` leaves out).
        request.set_parsed_query(ExecutableDocument::clone(&document));
    }
    if let Some(name) = raw.operation_name {
        request = request.operation_name(name);
    }
    request = request.variables(variables);
    if let Some(Value::Object(extensions)) = extensions {
        for (name, value) in extensions {
            if let Ok(value) = async_graphql::Value::from_json(value) {
                request.extensions.0.insert(name, value);
            }
        }
    }
    Ok(request
        .data(caller.viewer)
        .data(caller.origin)
        .data(caller.browser_origin))
}

/// Why a request does not reach the schema.
pub enum Refusal {
    /// Input no GraphQL server should parse or walk: a malformed request.
    Input(InputRefusal),
    /// A well-formed document over a limit (depth, an argument value, the
    /// row cost): a request error like async-graphql's validation errors.
    Document(ServerError),
}

impl From<InputRefusal> for Refusal {
    fn from(refusal: InputRefusal) -> Self {
        Refusal::Input(refusal)
    }
}

impl Refusal {
    pub fn into_error(self) -> ServerError {
        match self {
            Refusal::Input(refusal) => refusal_error(refusal),
            Refusal::Document(error) => error,
        }
    }
}

/// The refusal as a GraphQL error, coded like every other client mistake.
pub fn refusal_error(refusal: InputRefusal) -> ServerError {
    client_request_error(refusal.to_string())
}
