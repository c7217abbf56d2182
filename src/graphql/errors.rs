//! The one place where service errors become GraphQL errors with a code.

use async_graphql::{ErrorExtensions, Response, Value};

use crate::error::AppError;

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        if let AppError::Internal(cause) = &error {
            if error.is_unavailable() {
                tracing::warn!(error = format!("{cause:#}"), "the database is unavailable");
            } else {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            }
        }
        let code = error.code();
        let message = error.public_message();
        async_graphql::Error::new(message).extend_with(|_, extensions| {
            extensions.set("code", code);
            match &error {
                AppError::BadInput { field, .. } => extensions.set("field", field.as_str()),
                AppError::RateLimited { retry_after_secs } => {
                    extensions.set("retryAfter", *retry_after_secs)
                }
                _ => {}
            }
        })
    }
}

/// A request error of the client's (a limit, a refused document) with its
/// code, for the checks that run before any resolver.
pub fn client_request_error(message: impl Into<String>) -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "BAD_USER_INPUT");
    error.extensions = Some(extensions);
    error
}

/// Errors that async-graphql raises itself (parse errors, validation,
/// depth and complexity limits) carry no code; they are all the client's.
pub fn tag_request_errors(mut response: Response) -> Response {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Value::from("BAD_USER_INPUT"));
        }
    }
    response
}
