//! Events over PostgreSQL `LISTEN`/`NOTIFY`, so that an event published by
//! one server instance reaches the subscribers connected to any instance
//! sharing the database.
//!
//! Publishing serialises the event to JSON and queues it for a background
//! task that runs `SELECT pg_notify(channel, payload)` through the
//! application's pool, one event after the other (so they arrive in the order
//! they were published). One listening connection per bus, outside the
//! application's pool, receives every notification on the channel, this
//! instance's own included, and fans the decoded events out to the local
//! subscribers through an [`InProcessBus`].
//!
//! NOTIFY is fire-and-forget: events published while the listening connection
//! is being re-established are not delivered to this instance. Once it
//! listens again, the bus tells its local subscribers
//! [`Event::EventsMissed`] (and logs a warning), so that what depends on
//! events (open sessions, memberships, caches) is checked against the
//! database.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::BoxStream;
use sea_orm::sqlx;
use sea_orm::sqlx::postgres::{PgListener, PgNotification, PgPool, PgPoolOptions};
use tokio::sync::{mpsc, oneshot};

use super::{EventBus, InProcessBus};
use crate::domain::events::Event;

/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more (default build).
const MAX_PAYLOAD_BYTES: usize = 8000;
/// Channel names are identifiers: at most 63 bytes.
const MAX_CHANNEL_BYTES: usize = 63;
/// Events waiting to be sent; beyond this (the database is down or far too
/// slow) new events are dropped with a warning instead of blocking callers.
const PUBLISH_QUEUE: usize = 16_384;
/// Events buffered per local subscriber before a slow one starts skipping.
const SUBSCRIBER_BUFFER: usize = 1024;
/// Waits between attempts to listen again after an error.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// An [`EventBus`] shared by every instance connected to one PostgreSQL
/// database. Dropping the bus stops its background tasks (events already
/// queued for publication are still sent).
pub struct PgNotifyBus {
    channel: String,
    outbox: mpsc::Sender<String>,
    local: Arc<InProcessBus>,
    /// Dropped with the bus, which tells the listening task to stop.
    _stop_listening: oneshot::Sender<()>,
}

impl PgNotifyBus {
    /// The channel used unless another is given.
    pub const DEFAULT_CHANNEL: &'static str = "contacts_events";

    /// A bus on [`Self::DEFAULT_CHANNEL`]; see [`Self::connect_on`].
    pub async fn connect(pool: &PgPool) -> Result<PgNotifyBus, sqlx::Error> {
        Self::connect_on(pool, Self::DEFAULT_CHANNEL).await
    }

    /// A bus on `channel`: events are sent through `pool`, and received on a
    /// connection of its own made with the same options. Returns once that
    /// connection listens, so every event published after this returns is
    /// delivered to the subscribers of this bus (barring a lost connection).
    pub async fn connect_on(pool: &PgPool, channel: &str) -> Result<PgNotifyBus, sqlx::Error> {
        if channel.is_empty() || channel.len() > MAX_CHANNEL_BYTES || channel.contains('\0') {
            return Err(sqlx::Error::Configuration(
                format!("{channel:?} is not a valid PostgreSQL channel name").into(),
            ));
        }
        // One connection, never returned to a pool to be reused: a listener
        // that fails is replaced by a fresh connection.
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(10))
            .after_release(|_connection, _metadata| async { Ok(false) }.boxed())
            .connect_lazy_with((*pool.connect_options()).clone());
        let listener = listen(&listener_pool, channel).await?;

        let local = Arc::new(InProcessBus::new(SUBSCRIBER_BUFFER));
        let (stop_listening, stop) = oneshot::channel();
        tokio::spawn(run_listener(
            listener_pool,
            listener,
            channel.to_owned(),
            Arc::clone(&local),
            stop,
        ));

        let (outbox, queued) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(run_publisher(pool.clone(), channel.to_owned(), queued));

        Ok(PgNotifyBus {
            channel: channel.to_owned(),
            outbox,
            local,
            _stop_listening: stop_listening,
        })
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl EventBus for PgNotifyBus {
    fn publish(&self, event: Event) {
        // Only ever true of this instance's own subscribers.
        if event == Event::EventsMissed {
            self.local.publish(event);
            return;
        }
        let payload = match serde_json::to_string(&event) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, ?event, "an event cannot be serialised; it was not published");
                return;
            }
        };
        if !fits_in_notify(&payload) {
            tracing::error!(
                bytes = payload.len(),
                limit = MAX_PAYLOAD_BYTES,
                ?event,
                "an event is too large for PostgreSQL NOTIFY; it was not published"
            );
            return;
        }
        match self.outbox.try_send(payload) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!(
                ?event,
                "too many events are waiting to be sent to PostgreSQL; this one was dropped"
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => tracing::warn!(
                ?event,
                "the event publisher has stopped; the event was dropped"
            ),
        }
    }

    fn subscribe(&self) -> BoxStream<'static, Event> {
        self.local.subscribe()
    }
}

fn fits_in_notify(payload: &str) -> bool {
    payload.len() < MAX_PAYLOAD_BYTES
}

/// A listener on `channel`, connected and listening.
async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    Ok(listener)
}

/// Sends the queued payloads in order until the bus is gone and the queue
/// is empty.
async fn run_publisher(pool: PgPool, channel: String, mut queued: mpsc::Receiver<String>) {
    while let Some(payload) = queued.recv().await {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&channel)
            .bind(&payload)
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, %channel, %payload, "an event could not be published");
        }
    }
    tracing::debug!(%channel, "event publisher stopped");
}

/// Receives notifications and hands the decoded events to local subscribers
/// until `stop` fires (the bus was dropped). Survives errors: the listener is
/// replaced by a new one, with a growing delay between attempts.
async fn run_listener(
    pool: PgPool,
    listener: PgListener,
    channel: String,
    local: Arc<InProcessBus>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut listener = Some(listener);
    let mut retry_delay = FIRST_RETRY_DELAY;
    loop {
        let Some(active) = listener.as_mut() else {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = tokio::time::sleep(retry_delay) => {}
            }
            retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
            tokio::select! {
                biased;
                _ = &mut stop => break,
                listening = listen(&pool, &channel) => match listening {
                    Ok(new_listener) => {
                        tracing::info!(
                            %channel,
                            "listening for events again; events published meanwhile were missed"
                        );
                        listener = Some(new_listener);
                        local.publish(Event::EventsMissed);
                    }
                    Err(error) => {
                        tracing::warn!(%error, %channel, ?retry_delay, "cannot listen for events; retrying");
                    }
                }
            }
            continue;
        };
        tokio::select! {
            biased;
            _ = &mut stop => break,
            received = active.try_recv() => match received {
                Ok(Some(notification)) => {
                    retry_delay = FIRST_RETRY_DELAY;
                    deliver(&local, &channel, &notification);
                }
                // The connection dropped and the listener made a new one
                // (it reconnects eagerly), which listens already.
                Ok(None) => {
                    tracing::warn!(
                        %channel,
                        "the connection listening for events was lost and re-established; \
                         events published meanwhile were missed"
                    );
                    local.publish(Event::EventsMissed);
                }
                Err(error) => {
                    tracing::warn!(%error, %channel, "lost the connection listening for events; reconnecting");
                    listener = None;
                }
            }
        }
    }
    drop(listener);
    pool.close().await;
    tracing::debug!(%channel, "event listener stopped");
}

fn deliver(local: &InProcessBus, channel: &str, notification: &PgNotification) {
    if notification.channel() != channel {
        return;
    }
    match serde_json::from_str::<Event>(notification.payload()) {
        Ok(event) => local.publish(event),
        // For instance an event kind added by a newer instance.
        Err(error) => tracing::warn!(
            %error,
            %channel,
            payload = notification.payload(),
            "skipped an event that cannot be decoded"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_must_stay_under_the_notify_limit() {
        assert!(fits_in_notify(&"x".repeat(MAX_PAYLOAD_BYTES - 1)));
        assert!(!fits_in_notify(&"x".repeat(MAX_PAYLOAD_BYTES)));
        // The limit is in bytes, not characters.
        assert!(!fits_in_notify(&"é".repeat(MAX_PAYLOAD_BYTES / 2)));
    }
}
