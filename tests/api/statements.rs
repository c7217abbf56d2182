//! Counting the SQL statements one request costs, for the tests that
//! show a page costs the same whatever its size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::TestApp;

/// Counts, per request id, the SQL statements the server runs: the
/// `contacts::sql` events that `db::connect` emits for every statement,
/// attributed to the HTTP request span (with its `x-request-id`) that they
/// run under. Dataloader batches carry the span of the request that started
/// them, so their statements count too; statements of anything else the
/// app runs meanwhile do not.
#[derive(Clone, Default)]
pub struct StatementCounter {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

struct RequestId(String);

struct RequestIdVisitor(Option<String>);

impl tracing::field::Visit for RequestIdVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "request_id" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for StatementCounter
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = RequestIdVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(request_id), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "contacts::sql" {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(RequestId(request_id)) = span.extensions().get::<RequestId>() {
                *self
                    .counts
                    .lock()
                    .unwrap()
                    .entry(request_id.clone())
                    .or_default() += 1;
                return;
            }
        }
    }
}

impl StatementCounter {
    /// The counter of this test process, installed as the global subscriber
    /// on first use. Global rather than per thread: tracing caches whether a
    /// call site is wanted, and a subscriber set for one thread while other
    /// tests run misses events. Counting by request id keeps the tests that
    /// run at the same time apart.
    pub fn installed() -> StatementCounter {
        use tracing_subscriber::Layer;
        use tracing_subscriber::filter::filter_fn;
        use tracing_subscriber::layer::SubscriberExt;

        static COUNTER: std::sync::OnceLock<StatementCounter> = std::sync::OnceLock::new();
        COUNTER
            .get_or_init(|| {
                let counter = StatementCounter::default();
                // Only request spans and statement events: nothing else pays.
                let layer = counter.clone().with_filter(filter_fn(|metadata| {
                    metadata.target() == "contacts::sql"
                        || (metadata.is_span() && metadata.name() == "request")
                }));
                tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                    .expect("no other subscriber in the API tests");
                counter
            })
            .clone()
    }

    /// Runs one operation with its own request id; returns the body and
    /// the number of statements it cost.
    pub async fn run(
        &self,
        app: &TestApp,
        token: &str,
        query: &str,
        variables: Value,
    ) -> (Value, usize) {
        self.run_as(app, Some(token), query, variables).await
    }

    /// Like [`StatementCounter::run`], for any caller (`None`: a public one).
    pub async fn run_as(
        &self,
        app: &TestApp,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (Value, usize) {
        let request_id = format!("count-{}", Uuid::now_v7());
        let body = app
            .graphql_with_headers(token, &[("x-request-id", &request_id)], query, variables)
            .await;
        let count = self
            .counts
            .lock()
            .unwrap()
            .get(&request_id)
            .copied()
            .unwrap_or(0);
        (body, count)
    }
}
