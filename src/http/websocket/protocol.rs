//! The messages of `graphql-transport-ws` and of the legacy `graphql-ws` (subscriptions-transport-ws), and the close codes.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::http::request_pipeline::RawRequest;

/// The subprotocol a client asked for in `Sec-WebSocket-Protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// graphql-ws's `graphql-transport-ws`.
    TransportWs,
    /// Apollo's subscriptions-transport-ws, named `graphql-ws`.
    Legacy,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::Legacy => "graphql-ws",
        }
    }

    /// The first protocol of the client's list that the server speaks.
    pub fn negotiate(offered: &str) -> Option<Protocol> {
        offered.split(',').find_map(|name| match name.trim() {
            "graphql-transport-ws" => Some(Protocol::TransportWs),
            "graphql-ws" => Some(Protocol::Legacy),
            _ => None,
        })
    }
}

/// A message from the client, checked against the protocol it speaks.
#[derive(Debug)]
pub enum ClientMessage {
    ConnectionInit {
        payload: Option<Value>,
    },
    Subscribe {
        id: String,
        request: RawRequest,
    },
    /// `complete` (graphql-transport-ws) or `stop` (legacy).
    Stop {
        id: String,
    },
    Ping {
        payload: Option<Value>,
    },
    Pong,
    /// Legacy only: the client leaves.
    Terminate,
}

/// The envelope all client messages share.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

impl ClientMessage {
    /// `None` for a message the protocol does not have, or one lacking its
    /// id or payload: the connection closes with 4400.
    pub fn parse(protocol: Protocol, text: &str) -> Option<ClientMessage> {
        let Envelope { kind, id, payload } = serde_json::from_str(text).ok()?;
        let message = match (protocol, kind.as_str()) {
            (_, "connection_init") => ClientMessage::ConnectionInit { payload },
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let request = serde_json::from_value(payload?).ok()?;
                ClientMessage::Subscribe { id: id?, request }
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                ClientMessage::Stop { id: id? }
            }
            (Protocol::TransportWs, "ping") => ClientMessage::Ping { payload },
            (Protocol::TransportWs, "pong") => ClientMessage::Pong,
            (Protocol::Legacy, "connection_terminate") => ClientMessage::Terminate,
            _ => return None,
        };
        Some(message)
    }
}

/// A message to the client; `text` writes it in the connection's protocol.
pub enum ServerMessage<'a> {
    ConnectionAck,
    /// Legacy only: refuses `connection_init` before the close.
    ConnectionError {
        payload: Value,
    },
    /// `next` (graphql-transport-ws) or `data` (legacy).
    Next {
        id: &'a str,
        payload: &'a async_graphql::Response,
    },
    /// The operation failed before it ran; it ends without `complete`.
    Error {
        id: &'a str,
        errors: &'a [async_graphql::ServerError],
    },
    Complete {
        id: &'a str,
    },
    Pong {
        payload: Option<Value>,
    },
    /// Legacy only.
    KeepAlive,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire<'a> {
    ConnectionAck,
    ConnectionError {
        payload: &'a Value,
    },
    Next {
        id: &'a str,
        payload: &'a async_graphql::Response,
    },
    Data {
        id: &'a str,
        payload: &'a async_graphql::Response,
    },
    Error {
        id: &'a str,
        payload: &'a [async_graphql::ServerError],
    },
    Complete {
        id: &'a str,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: &'a Option<Value>,
    },
    #[serde(rename = "ka")]
    KeepAlive,
}

impl ServerMessage<'_> {
    pub fn text(&self, protocol: Protocol) -> String {
        let wire = match self {
            ServerMessage::ConnectionAck => Wire::ConnectionAck,
            ServerMessage::ConnectionError { payload } => Wire::ConnectionError { payload },
            ServerMessage::Next { id, payload } => match protocol {
                Protocol::TransportWs => Wire::Next { id, payload },
                Protocol::Legacy => Wire::Data { id, payload },
            },
            ServerMessage::Error { id, errors } => Wire::Error {
                id,
                payload: errors,
            },
            ServerMessage::Complete { id } => Wire::Complete { id },
            ServerMessage::Pong { payload } => Wire::Pong { payload },
            ServerMessage::KeepAlive => Wire::KeepAlive,
        };
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

/// Why the server closes a connection, with the code clients act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// 1001: the server is shutting down; clients reconnect elsewhere.
    GoingAway,
    /// 1009: a message over the size limit.
    TooBig,
    /// 1011: the token could not be checked (the database is down).
    Unavailable,
    /// 4400: not JSON, an unknown type, a missing id or payload.
    BadMessage,
    /// 4401: an operation before the ack, or with a token revoked or
    /// expired since `connection_init`.
    Unauthorized,
    /// 4403: `connection_init` without a live agent token.
    Forbidden,
    /// 4408: no `connection_init` in time.
    InitTimeout,
    /// 4409: an operation id that is already running.
    DuplicateId(String),
    /// 4429: a second `connection_init`.
    TooManyInits,
}

impl CloseReason {
    pub fn code(&self) -> u16 {
        match self {
            CloseReason::GoingAway => 1001,
            CloseReason::TooBig => 1009,
            CloseReason::Unavailable => 1011,
            CloseReason::BadMessage => 4400,
            CloseReason::Unauthorized => 4401,
            CloseReason::Forbidden => 4403,
            CloseReason::InitTimeout => 4408,
            CloseReason::DuplicateId(_) => 4409,
            CloseReason::TooManyInits => 4429,
        }
    }

    pub fn reason(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            CloseReason::GoingAway => "the server is shutting down",
            CloseReason::TooBig => "the message is too large",
            CloseReason::Unavailable => "try again later",
            CloseReason::BadMessage => "invalid message",
            CloseReason::Unauthorized => "Unauthorized",
            CloseReason::Forbidden => "Forbidden",
            CloseReason::InitTimeout => "Connection initialisation timeout",
            CloseReason::DuplicateId(id) => {
                // A close reason holds at most 123 bytes.
                let id: String = id.chars().take(80).collect();
                return Cow::Owned(format!("Subscriber for {id} already exists"));
            }
            CloseReason::TooManyInits => "Too many initialisation requests",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_belong_to_their_protocol() {
        let subscribe = r#"{"type":"subscribe","id":"1","payload":{"query":"{ me { id } }"}}"#;
        let start = subscribe.replace("subscribe", "start");
        assert!(matches!(
            ClientMessage::parse(Protocol::TransportWs, subscribe),
            Some(ClientMessage::Subscribe { .. })
        ));
        assert!(ClientMessage::parse(Protocol::Legacy, subscribe).is_none());
        assert!(matches!(
            ClientMessage::parse(Protocol::Legacy, &start),
            Some(ClientMessage::Subscribe { .. })
        ));
        assert!(ClientMessage::parse(Protocol::TransportWs, &start).is_none());
        for malformed in [
            "not json",
            r#"{"type":"subscribe","payload":{"query":"{ me { id } }"}}"#,
            r#"{"type":"subscribe","id":"1"}"#,
            r#"{"type":"subscribe","id":"1","payload":{"variables":{}}}"#,
            r#"{"type":"complete"}"#,
            r#"{"type":"shout"}"#,
        ] {
            assert!(
                ClientMessage::parse(Protocol::TransportWs, malformed).is_none(),
                "{malformed}"
            );
        }
    }

    #[test]
    fn results_are_named_by_protocol() {
        let response = async_graphql::Response::new(async_graphql::Value::Null);
        let next = ServerMessage::Next {
            id: "a",
            payload: &response,
        };
        assert!(
            next.text(Protocol::TransportWs)
                .contains(r#""type":"next""#)
        );
        assert!(next.text(Protocol::Legacy).contains(r#""type":"data""#));
        assert_eq!(
            ServerMessage::KeepAlive.text(Protocol::Legacy),
            r#"{"type":"ka"}"#
        );
        assert_eq!(
            ServerMessage::Pong { payload: None }.text(Protocol::TransportWs),
            r#"{"type":"pong"}"#
        );
    }

    #[test]
    fn the_first_known_offered_protocol_wins() {
        assert_eq!(
            Protocol::negotiate("foo, graphql-ws, graphql-transport-ws"),
            Some(Protocol::Legacy)
        );
        assert_eq!(Protocol::negotiate("foo"), None);
    }
}
