//! The error of a document over the row cost limit.

use async_graphql::ServerError;

use crate::graphql::errors::client_request_error;

/// The refusal of a document that may read `cost` rows, over `limit`.
pub fn too_costly(cost: u64, limit: u64) -> ServerError {
    let mut error = client_request_error(format!(
        "the query costs {cost} rows, more than the limit of {limit}"
    ));
    if let Some(extensions) = error.extensions.as_mut() {
        extensions.set("cost", cost);
        extensions.set("limit", limit);
    }
    error
}
