//! The operations running on one connection, each a stream of events keyed by the client's id.

use async_graphql::{Response, ServerError, Value};
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio_stream::StreamMap;

use crate::graphql::AppSchema;
use crate::graphql::errors::tag_request_errors;

/// At most this many operations run at once on one connection; one more is
/// answered with an `error` for its id, and the connection stays open.
pub const MAX_OPERATIONS: usize = 100;

/// What an operation has to tell its client.
pub enum OperationEvent {
    /// A result: `next` (`data` on the legacy protocol).
    Result(Response),
    /// The request failed before it ran (parse, validation, limits): an
    /// `error` message, which ends the operation without `complete`.
    Failed(Vec<ServerError>),
    /// The stream ended: `complete`.
    Done,
}

#[derive(Default)]
pub struct Operations {
    running: StreamMap<String, BoxStream<'static, OperationEvent>>,
}

impl Operations {
    pub fn contains(&self, id: &str) -> bool {
        self.running.contains_key(id)
    }

    pub fn is_full(&self) -> bool {
        self.running.len() >= MAX_OPERATIONS
    }

    pub fn start(&mut self, schema: &AppSchema, id: String, request: async_graphql::Request) {
        let mut first = true;
        let events = schema
            .execute_stream(request)
            .map(move |response| {
                let response = tag_request_errors(response);
                let failed_before_running = first && is_request_error(&response);
                first = false;
                if failed_before_running {
                    OperationEvent::Failed(response.errors)
                } else {
                    OperationEvent::Result(response)
                }
            })
            .chain(stream::once(async { OperationEvent::Done }));
        self.running.insert(id, events.boxed());
    }

    /// Stops the operation, dropping its stream; whether it was running.
    pub fn stop(&mut self, id: &str) -> bool {
        self.running.remove(id).is_some()
    }

    /// The next event of any operation, with its id; pending while none runs.
    pub async fn next(&mut self) -> (String, OperationEvent) {
        match self.running.next().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }
}

/// async-graphql answers a request that never ran (it did not parse, or
/// failed validation or a limit) with errors that have no path and no data;
/// errors of resolvers always name their field.
fn is_request_error(response: &Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}
