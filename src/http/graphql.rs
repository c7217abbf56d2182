//! `/graphql` over HTTP, as GraphQL over HTTP has it: queries over GET and
//! POST, mutations over POST only. GET also serves the playground to
//! browsers asking for a page, and upgrades websockets for subscriptions.
//! Both methods share one way to an answer (`answer`): persisted queries,
//! the caller, the request pipeline, execution and null propagation.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::ServerError;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument as _;

use super::caller::{self, Unavailable};
use super::negotiation::{ResponseFormat, response_format, wants_html};
use super::persisted_queries::{IncomingRequest, Resolved, Unresolved};
use super::request_log::{CallerLabel, OperationShape, RequestSummary};
use super::request_pipeline::{Refusal, prepare_request};
use super::{HttpState, playground, websocket};
use crate::graphql::errors::{client_request_error, tag_request_errors};
use crate::graphql::null_propagation::propagate_nulls;
use crate::graphql::written_json::write_response;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

pub async fn post(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(format) = response_format(&headers) else {
        return not_acceptable();
    };
    let limit = state.max_body_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > limit) {
        return body_too_large(format, limit);
    }
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return body_too_large(format, limit);
    };
    // serde_json refuses JSON nested deeper than 128 levels, so a deep
    // body is an error here, not a deep recursion.
    let Ok(incoming) = serde_json::from_slice::<IncomingRequest>(&bytes) else {
        return errors(
            format,
            StatusCode::BAD_REQUEST,
            [client_request_error(
                "the body must be one GraphQL request as JSON: {\"query\": ..., \"variables\": ...}",
            )],
        );
    };
    answer(&state, peer, &headers, incoming, Method::Post, format).await
}

/// The parameters of a GET: `variables` and `extensions` are JSON text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParameters {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

impl GetParameters {
    fn into_request(self) -> Result<IncomingRequest, &'static str> {
        let json_object = |text: Option<String>| match text.filter(|text| !text.is_empty()) {
            None => Ok(None),
            // The same depth bound as a POST body: serde_json's.
            Some(text) => serde_json::from_str(&text).map_err(|_| ()),
        };
        Ok(IncomingRequest {
            query: self.query,
            operation_name: self.operation_name.filter(|name| !name.is_empty()),
            variables: json_object(self.variables)
                .map_err(|_| "the variables parameter must be a JSON object")?,
            extensions: json_object(self.extensions)
                .map_err(|_| "the extensions parameter must be a JSON object")?,
        })
    }
}

pub async fn get(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let wants_websocket = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    if wants_websocket {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(upgrade) => websocket::upgrade(state, peer, &parts.headers, upgrade),
            Err(rejection) => rejection.into_response(),
        };
    }
    let headers = &parts.headers;
    // A GET carries in its URL what a POST carries in its body: the same bound.
    let limit = state.max_body_bytes;
    if parts.uri.query().is_some_and(|query| query.len() > limit) {
        let format = response_format(headers).unwrap_or(ResponseFormat::Json);
        return errors(
            format,
            StatusCode::URI_TOO_LONG,
            [client_request_error(format!(
                "the query string exceeds {limit} bytes; send large requests with POST"
            ))],
        );
    }
    let parameters = Query::<GetParameters>::try_from_uri(&parts.uri).map(|Query(found)| found);
    let names_an_operation = parameters
        .as_ref()
        .is_ok_and(|found| found.query.is_some() || found.extensions.is_some());
    if !names_an_operation && wants_html(headers) {
        return playground::page(state.services.settings.playground);
    }
    let Ok(format) = response_format(headers) else {
        return not_acceptable();
    };
    let incoming = match parameters {
        Ok(found) if names_an_operation => found.into_request(),
        Ok(_) => Err("a GET request carries its query in the query parameter"),
        Err(_) => Err("the query string is not form-encoded GraphQL parameters"),
    };
    match incoming {
        Ok(incoming) => answer(&state, peer, headers, incoming, Method::Get, format).await,
        Err(message) => errors(
            format,
            StatusCode::BAD_REQUEST,
            [client_request_error(message)],
        ),
    }
}

async fn answer(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    incoming: IncomingRequest,
    method: Method,
    format: ResponseFormat,
) -> Response {
    let persisted_queries = &state.persisted_queries;
    let Resolved {
        request: raw,
        register,
    } = match persisted_queries.resolve(incoming) {
        Ok(resolved) => resolved,
        // Apollo's link sends the query after this answer, which it
        // expects with status 200.
        Err(Unresolved::NotFound) => {
            return errors(format, StatusCode::OK, [Unresolved::NotFound.error()]);
        }
        Err(other) => return errors(format, StatusCode::BAD_REQUEST, [other.error()]),
    };
    let services = &state.services;
    let caller = match caller::identify(services, peer, headers).await {
        Ok(caller) => caller,
        Err(Unavailable) => {
            let mut error = ServerError::new("service unavailable", None);
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", "INTERNAL");
            error.extensions = Some(extensions);
            return errors(format, StatusCode::SERVICE_UNAVAILABLE, [error]);
        }
    };
    // Kept for the rare response with field errors, which is checked
    // against the document's nullability.
    let (query, operation_name) = (raw.query.clone(), raw.operation_name.clone());
    let caller_label = CallerLabel::of(&caller.viewer);
    let mut request = match prepare_request(raw, caller, &state.pipeline) {
        Ok(request) => request,
        Err(Refusal::Document(error)) => {
            // Answered as async-graphql's validation errors are.
            return errors(format, request_error_status(format), [error]);
        }
        Err(refusal) => {
            return errors(format, StatusCode::BAD_REQUEST, [refusal.into_error()]);
        }
    };
    if let Some(hash) = register {
        persisted_queries.register(hash, &query);
    }
    let shape = OperationShape::of(&mut request);
    if method == Method::Get && !runs_a_query(&mut request) {
        let mut response = errors(
            format,
            StatusCode::METHOD_NOT_ALLOWED,
            [client_request_error(
                "only queries may be sent with GET: send mutations and subscriptions with POST",
            )],
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let operation_span = tracing::info_span!(
        "graphql operation",
        operation = shape.name.as_deref().unwrap_or(""),
        operation_type = shape.kind.unwrap_or(""),
        root_fields = shape.root_fields.join(","),
    );
    let mut response = state
        .schema
        .execute(request)
        .instrument(operation_span)
        .await;
    propagate_nulls(&mut response, &query, operation_name.as_deref());
    // Headers resolvers set, such as Retry-After.
    let resolver_headers = std::mem::take(&mut response.http_headers);
    let response = tag_request_errors(response);
    let summary = RequestSummary {
        shape,
        caller: caller_label,
        ..RequestSummary::default()
    }
    .with_errors(&response.errors);
    if is_request_error(&response) {
        // Nothing ran, so the answer has no `data` entry at all (GraphQL
        // spec 7.1.2), as for the refusals made before the schema runs.
        let mut answer = errors(format, request_error_status(format), response.errors);
        answer.headers_mut().extend(resolver_headers);
        answer.extensions_mut().insert(summary);
        return answer;
    }
    let mut answer = write_response(&response).into_response();
    set_content_type(&mut answer, format);
    answer.headers_mut().extend(resolver_headers);
    answer.extensions_mut().insert(summary);
    answer
}

/// A request error's status: GraphQL over HTTP has 400 for the
/// `application/graphql-response+json` it defines, and 200 for legacy
/// `application/json` clients, which read the errors from the body.
fn request_error_status(format: ResponseFormat) -> StatusCode {
    if format == ResponseFormat::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// Whether the operation that would run is a query. A document that does
/// not parse, or names no operation it has, is left for execution to
/// report, as over POST.
fn runs_a_query(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return true;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str()),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_none_or(|operation| operation.node.ty == OperationType::Query)
}

/// A request error: nothing ran (no data), and no error belongs to a field.
/// A field error that nulled all of `data` is not one.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

fn errors(
    format: ResponseFormat,
    status: StatusCode,
    errors: impl IntoIterator<Item = ServerError>,
) -> Response {
    let errors: Vec<ServerError> = errors.into_iter().collect();
    let summary = RequestSummary::refused(&errors);
    let mut response = (status, Json(json!({ "errors": errors }))).into_response();
    set_content_type(&mut response, format);
    response.extensions_mut().insert(summary);
    response
}

fn set_content_type(response: &mut Response, format: ResponseFormat) {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
}

fn not_acceptable() -> Response {
    errors(
        ResponseFormat::Json,
        StatusCode::NOT_ACCEPTABLE,
        [client_request_error(
            "GraphQL answers are application/graphql-response+json or application/json: accept one of them",
        )],
    )
}

fn body_too_large(format: ResponseFormat, limit: usize) -> Response {
    errors(
        format,
        StatusCode::PAYLOAD_TOO_LARGE,
        [client_request_error(format!(
            "the request body exceeds {limit} bytes"
        ))],
    )
}

/// A client error outside GraphQL over HTTP's answers (a refused websocket
/// upgrade), as JSON with a code.
pub(super) fn client_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]})),
    )
        .into_response()
}
