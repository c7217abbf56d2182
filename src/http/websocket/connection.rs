//! One websocket connection: the handshake, then its operations, until either side ends it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{BoxStream, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::connection_init::{InitRefusal, authenticate_connection, still_live};
use super::operations::{MAX_OPERATIONS, OperationEvent, Operations};
use super::protocol::{ClientMessage, CloseReason, Protocol, ServerMessage};
use super::session::{AccessEnd, Consequence, Session};
use crate::domain::access::{self, Role};
use crate::domain::events::Event;
use crate::error::AppError;
use crate::graphql::{AppSchema, written_json};
use crate::http::request_log::CallerLabel;
use crate::http::request_pipeline::{Caller, Pipeline, RawRequest, prepare_request};
use crate::metrics::{GaugeHeld, Metrics};
use crate::pubsub::EventBus;

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a legacy connection hears `ka`, so that proxies keep it open
/// and the client knows the server is there.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(12);

/// What a connection starts with, captured at the upgrade.
pub struct Setup {
    pub protocol: Protocol,
    pub schema: AppSchema,
    pub db: DatabaseConnection,
    /// The client address and browser origin; the viewer comes with
    /// `connection_init`.
    pub caller: Caller,
    /// Tells of revoked tokens and ended memberships, from any instance.
    pub bus: Arc<dyn EventBus>,
    /// The input guard, the parse and the document checks, as over HTTP.
    pub pipeline: Arc<Pipeline>,
    pub shutdown: CancellationToken,
    pub metrics: Arc<Metrics>,
}

/// How the connection ends.
enum End {
    /// The server closes it, with this code.
    Close(CloseReason),
    /// The client left, or the socket broke.
    Gone,
}

struct Connection {
    setup: Setup,
    sink: SplitSink<WebSocket, Message>,
    /// Set by an accepted `connection_init`.
    acknowledged: bool,
    /// The token the connection was acknowledged with.
    session: Option<Session>,
    /// The bus, from just before the token was checked, so that no
    /// revocation after the check goes unheard.
    events: Option<BoxStream<'static, Event>>,
    operations: Operations,
}

/// A token lives at most this long as far as the timer knows, so that a
/// far-off expiry does not overflow it.
const LONGEST_TIMER: Duration = Duration::from_secs(24 * 60 * 60);

pub async fn serve(socket: WebSocket, setup: Setup) {
    let (sink, incoming) = socket.split();
    let _open = GaugeHeld::raise(&setup.metrics.websocket_connections);
    let subscriptions = setup.metrics.active_subscriptions.clone();
    let mut connection = Connection {
        setup,
        sink,
        acknowledged: false,
        session: None,
        events: None,
        operations: Operations::new(subscriptions),
    };
    let end = connection.run(incoming).await;
    if let End::Close(reason) = end {
        let frame = CloseFrame {
            code: reason.code(),
            reason: reason.reason().into_owned().into(),
        };
        let _ = connection.sink.send(Message::Close(Some(frame))).await;
    }
    let _ = connection.sink.close().await;
}

impl Connection {
    async fn run(&mut self, mut incoming: SplitStream<WebSocket>) -> End {
        let shutdown = self.setup.shutdown.clone();
        let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
        tokio::pin!(init_deadline);
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE_INTERVAL);
        let sends_keep_alive = self.setup.protocol == Protocol::Legacy;
        loop {
            let step = tokio::select! {
                _ = shutdown.cancelled() => Err(End::Close(CloseReason::GoingAway)),
                _ = &mut init_deadline, if !self.acknowledged => {
                    Err(End::Close(CloseReason::InitTimeout))
                }
                _ = keep_alive.tick(), if sends_keep_alive && self.acknowledged => {
                    self.send(ServerMessage::KeepAlive).await
                }
                // Re-armed every turn: a re-check may have moved the expiry.
                _ = tokio::time::sleep(self.until_expiry()), if self.session.is_some() => {
                    Err(End::Close(CloseReason::Unauthorized))
                }
                event = next_event(&mut self.events) => match event {
                    Some(event) => self.on_bus_event(event).await,
                    // The bus is gone: the server is stopping.
                    None => {
                        self.events = None;
                        Ok(())
                    }
                },
                (id, event) = self.operations.next() => self.on_event(id, event).await,
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                    Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                        Ok(text) => self.on_text(text).await,
                        Err(_) => Err(End::Close(CloseReason::BadMessage)),
                    },
                    // Pings are answered by the websocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    Some(Ok(Message::Close(_))) | None => Err(End::Gone),
                    Some(Err(error)) if is_too_big(&error) => Err(End::Close(CloseReason::TooBig)),
                    Some(Err(_)) => Err(End::Gone),
                },
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), End> {
        let Some(message) = ClientMessage::parse(self.setup.protocol, text) else {
            return Err(End::Close(CloseReason::BadMessage));
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.on_init(payload).await,
            ClientMessage::Subscribe { id, request } => self.on_subscribe(id, request).await,
            ClientMessage::Stop { id } => {
                let stopped = self.operations.stop(&id);
                // The legacy protocol confirms a stop; graphql-transport-ws
                // sends nothing more for that id.
                if stopped && self.setup.protocol == Protocol::Legacy {
                    self.send(ServerMessage::Complete { id: &id }).await?;
                }
                Ok(())
            }
            ClientMessage::Ping { payload } => self.send(ServerMessage::Pong { payload }).await,
            ClientMessage::Pong => Ok(()),
            ClientMessage::Terminate => Err(End::Gone),
        }
    }

    async fn on_init(&mut self, payload: Option<serde_json::Value>) -> Result<(), End> {
        if self.acknowledged {
            return Err(End::Close(CloseReason::TooManyInits));
        }
        let events = self.setup.bus.subscribe();
        match authenticate_connection(&self.setup.db, payload.as_ref()).await {
            Ok((viewer, session)) => {
                self.setup.caller.viewer = viewer;
                self.session = Some(Session::from(&session));
                self.events = Some(events);
                self.acknowledged = true;
                // A legacy client hears its first `ka` at once, from the
                // keep-alive timer.
                self.send(ServerMessage::ConnectionAck).await
            }
            Err(refusal) => {
                let (code, message, close) = match refusal {
                    InitRefusal::NoLiveToken => (
                        "UNAUTHENTICATED",
                        "a valid agent token is required",
                        CloseReason::Forbidden,
                    ),
                    InitRefusal::Unavailable => {
                        ("INTERNAL", "try again later", CloseReason::Unavailable)
                    }
                };
                if self.setup.protocol == Protocol::Legacy {
                    let payload = json!({"message": message, "extensions": {"code": code}});
                    self.send(ServerMessage::ConnectionError { payload })
                        .await?;
                }
                Err(End::Close(close))
            }
        }
    }

    async fn on_subscribe(&mut self, id: String, raw: RawRequest) -> Result<(), End> {
        if !self.acknowledged {
            return Err(End::Close(CloseReason::Unauthorized));
        }
        if self.operations.contains(&id) {
            return Err(End::Close(CloseReason::DuplicateId(id)));
        }
        self.recheck_token().await?;
        if self.operations.is_full() {
            let error = async_graphql::ServerError::new(
                format!("at most {MAX_OPERATIONS} operations may run at once on one connection"),
                None,
            );
            let response = crate::graphql::errors::tag_request_errors(
                async_graphql::Response::from_errors(vec![error]),
            );
            return self
                .send(ServerMessage::Error {
                    id: &id,
                    errors: &response.errors,
                })
                .await;
        }
        let caller = CallerLabel::of(&self.setup.caller.viewer);
        match prepare_request(raw, self.setup.caller.clone(), &self.setup.pipeline) {
            Ok(request) => {
                self.operations
                    .start(&self.setup.schema, id, request, caller);
                Ok(())
            }
            Err(refusal) => {
                let errors = [refusal.into_error()];
                self.send(ServerMessage::Error {
                    id: &id,
                    errors: &errors,
                })
                .await
            }
        }
    }

    /// A token revoked or expired since `connection_init` ends the
    /// connection: its subscriptions must not outlive the login.
    async fn recheck_token(&mut self) -> Result<(), End> {
        let Some(token) = self.setup.caller.viewer.token.clone() else {
            return Err(End::Close(CloseReason::Unauthorized));
        };
        match still_live(&self.setup.db, &token).await {
            Ok(Some(live)) => {
                self.session = Some(Session::from(&live));
                self.setup.caller.viewer.agent = Some(live.agent);
                Ok(())
            }
            Ok(None) => Err(End::Close(CloseReason::Unauthorized)),
            Err(_) => Err(End::Close(CloseReason::Unavailable)),
        }
    }

    fn until_expiry(&self) -> Duration {
        self.session
            .as_ref()
            .map_or(LONGEST_TIMER, Session::remaining)
            .min(LONGEST_TIMER)
    }

    async fn on_bus_event(&mut self, event: Event) -> Result<(), End> {
        let Some(session) = &self.session else {
            return Ok(());
        };
        match session.consequence_of(&event) {
            None => Ok(()),
            Some(Consequence::SessionEnded) => Err(End::Close(CloseReason::Unauthorized)),
            Some(Consequence::AccessEnded { project_id, end }) => {
                let ended: Vec<String> = self
                    .operations
                    .holding_access()
                    .into_iter()
                    .filter(|(_, accesses)| accesses.iter().any(|a| a.project_id() == project_id))
                    .map(|(id, _)| id)
                    .collect();
                self.end_operations(ended, end).await
            }
            Some(Consequence::CheckAgain) => {
                self.recheck_token().await?;
                self.recheck_accesses().await
            }
        }
    }

    /// Reads every access the running subscriptions hold again, and ends
    /// those whose access is gone or changed.
    async fn recheck_accesses(&mut self) -> Result<(), End> {
        let Some(agent_id) = self.session.as_ref().map(Session::agent_id) else {
            return Ok(());
        };
        let mut current: HashMap<Uuid, Option<AccessEnd>> = HashMap::new();
        let mut ended: HashMap<AccessEnd, Vec<String>> = HashMap::new();
        for (id, accesses) in self.operations.holding_access() {
            for held in accesses {
                let end = match current.get(&held.project_id()) {
                    Some(end) => *end,
                    None => {
                        let end = match access::require_role(
                            &self.setup.db,
                            agent_id,
                            held.project_id(),
                            Role::Agent,
                        )
                        .await
                        {
                            Ok(now) if now.role() == held.role() => None,
                            Ok(_) => Some(AccessEnd::RoleChanged),
                            Err(AppError::NotFound(_)) => Some(AccessEnd::Removed),
                            Err(error) => {
                                tracing::warn!(
                                    ?error,
                                    "cannot check a subscription's access again"
                                );
                                return Err(End::Close(CloseReason::Unavailable));
                            }
                        };
                        current.insert(held.project_id(), end);
                        end
                    }
                };
                if let Some(end) = end {
                    ended.entry(end).or_default().push(id.clone());
                    break;
                }
            }
        }
        for (end, ids) in ended {
            self.end_operations(ids, end).await?;
        }
        Ok(())
    }

    /// Stops the operations and tells the client why, with an `error` for
    /// each: in both protocols that ends the operation, and nothing follows
    /// for its id.
    async fn end_operations(&mut self, ids: Vec<String>, end: AccessEnd) -> Result<(), End> {
        let errors = [end.error()];
        for id in ids {
            if self.operations.stop(&id) {
                self.send(ServerMessage::Error {
                    id: &id,
                    errors: &errors,
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn on_event(&mut self, id: String, event: OperationEvent) -> Result<(), End> {
        match event {
            OperationEvent::Result(mut response) => {
                // The transports' messages are serialised whole, by serde.
                written_json::expand(&mut response.data);
                self.send(ServerMessage::Next {
                    id: &id,
                    payload: &response,
                })
                .await
            }
            OperationEvent::Failed(errors) => {
                self.send(ServerMessage::Error {
                    id: &id,
                    errors: &errors,
                })
                .await
            }
            OperationEvent::Done => self.send(ServerMessage::Complete { id: &id }).await,
        }
    }

    async fn send(&mut self, message: ServerMessage<'_>) -> Result<(), End> {
        let text = message.text(self.setup.protocol);
        self.sink
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| End::Gone)
    }
}

/// The next event of the bus; pending until the connection listens.
async fn next_event(events: &mut Option<BoxStream<'static, Event>>) -> Option<Event> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

/// A message over the size limit: the websocket layer refuses it when it
/// reads the frame header, before the payload arrives.
fn is_too_big(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)))
}
