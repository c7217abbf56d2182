//! The operations running on one connection, each in a task of its own, keyed by the client's id.

use std::collections::HashMap;

use async_graphql::{Response, ServerError, Value};
use futures_util::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument;

use crate::domain::access::ProjectAccess;
use crate::graphql::AppSchema;
use crate::graphql::context::HeldAccess;
use crate::graphql::errors::tag_request_errors;
use crate::graphql::null_propagation::propagate_nulls;
use crate::http::request_log::{CallerLabel, OperationLog, OperationShape};
use crate::metrics::GaugeHeld;

/// At most this many operations run at once on one connection; one more is
/// answered with an `error` for its id, and the connection stays open.
pub const MAX_OPERATIONS: usize = 100;

/// Results waiting for the socket; past this, operations wait for a slow
/// client instead of piling up memory.
const QUEUED_EVENTS: usize = 64;

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

/// An event of the operation started as number `run` under `id`; the
/// number tells a stopped operation's late events from those of a new one
/// reusing the id.
struct Tagged {
    id: String,
    run: u64,
    event: OperationEvent,
}

/// A running operation: its run number, its task, and the project accesses
/// its resolvers hold.
struct Running {
    run: u64,
    abort: AbortHandle,
    held: HeldAccess,
}

/// Each operation runs in its own task, so that one waiting on the
/// database or on the client never holds up the others or the connection.
/// Dropping this aborts them all.
pub struct Operations {
    running: HashMap<String, Running>,
    tasks: JoinSet<()>,
    sender: mpsc::Sender<Tagged>,
    events: mpsc::Receiver<Tagged>,
    runs: u64,
    running_gauge: Gauge,
}

impl Operations {
    /// `running_gauge` counts the operations running, on every connection.
    pub fn new(running_gauge: Gauge) -> Self {
        let (sender, events) = mpsc::channel(QUEUED_EVENTS);
        Operations {
            running: HashMap::new(),
            tasks: JoinSet::new(),
            sender,
            events,
            runs: 0,
            running_gauge,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.running.contains_key(id)
    }

    pub fn is_full(&self) -> bool {
        self.running.len() >= MAX_OPERATIONS
    }

    pub fn start(
        &mut self,
        schema: &AppSchema,
        id: String,
        mut request: async_graphql::Request,
        caller: CallerLabel,
    ) {
        self.runs += 1;
        let run = self.runs;
        let sender = self.sender.clone();
        let (query, operation_name) = (request.query.clone(), request.operation_name.clone());
        let mut log = OperationLog::started(OperationShape::of(&mut request), caller);
        let held = HeldAccess::default();
        let mut responses = schema.execute_stream(request.data(held.clone()));
        let key = id.clone();
        let running = GaugeHeld::raise(&self.running_gauge);
        let task = async move {
            // Lowered when the task ends or is aborted.
            let _running = running;
            let mut first = true;
            while let Some(mut response) = responses.next().await {
                propagate_nulls(&mut response, &query, operation_name.as_deref());
                let response = tag_request_errors(response);
                log.saw(&response.errors);
                let failed_before_running = first && is_request_error(&response);
                first = false;
                let event = if failed_before_running {
                    OperationEvent::Failed(response.errors)
                } else {
                    OperationEvent::Result(response)
                };
                let tagged = Tagged {
                    id: key.clone(),
                    run,
                    event,
                };
                if sender.send(tagged).await.is_err() || failed_before_running {
                    log.ended_as("failed");
                    return;
                }
            }
            log.ended_as("completed");
            let done = Tagged {
                id: key,
                run,
                event: OperationEvent::Done,
            };
            let _ = sender.send(done).await;
        };
        let abort = self
            .tasks
            .spawn(task.instrument(tracing::info_span!("websocket operation", id)));
        self.running.insert(id, Running { run, abort, held });
    }

    /// The running operations that hold project accesses, with those
    /// accesses.
    pub fn holding_access(&self) -> Vec<(String, Vec<ProjectAccess>)> {
        self.running
            .iter()
            .map(|(id, running)| (id.clone(), running.held.accesses()))
            .filter(|(_, accesses)| !accesses.is_empty())
            .collect()
    }

    /// Stops the operation; whether it was running.
    pub fn stop(&mut self, id: &str) -> bool {
        match self.running.remove(id) {
            Some(running) => {
                running.abort.abort();
                true
            }
            None => false,
        }
    }

    /// The next event of a running operation, with its id; an operation is
    /// forgotten with its last event. Pending while none runs.
    pub async fn next(&mut self) -> (String, OperationEvent) {
        loop {
            // Never `None`: `self` holds a sender.
            let Some(Tagged { id, run, event }) = self.events.recv().await else {
                return std::future::pending().await;
            };
            if self
                .running
                .get(&id)
                .is_none_or(|running| running.run != run)
            {
                continue;
            }
            if matches!(event, OperationEvent::Done | OperationEvent::Failed(_)) {
                self.running.remove(&id);
                while self.tasks.try_join_next().is_some() {}
            }
            return (id, event);
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
