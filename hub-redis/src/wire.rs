//! What nodes publish to each other: a versioned MessagePack [`Packet`].
//!
//! Hub messages travel as an [`Envelope`] — encoded once per protocol by the sender — so
//! receivers write the bytes and never re-encode. Fields are named (MessagePack maps), so a
//! field added later is ignored by older nodes; a packet of another [`VERSION`] is dropped.

use bytes::Bytes;
use hub_server::protocol::{CompletionOutcome, Format, RawValue};
use hub_server::{ClientResultError, Envelope, ForwardedRequest, ForwardedResponse, Target};
use serde::{Deserialize, Serialize};

/// The version of the packet format; a node drops packets of another version.
pub(crate) const VERSION: u8 = 1;

/// One message between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Packet {
    /// [`VERSION`].
    pub(crate) v: u8,
    /// The node that published it (a node drops its own echo).
    pub(crate) origin: String,
    /// W3C trace context of the operation that published it, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) trace: Option<String>,
    /// When it was published, in milliseconds since the Unix epoch (for the backplane lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) at: Option<u64>,
    /// What it carries.
    pub(crate) body: Body,
}

/// What a packet carries.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Body {
    /// A hub message for the receiving node's connections among `target`.
    Send {
        /// Who it is for (the receiver delivers to its own connections among them).
        target: Target,
        /// The message in every protocol.
        message: Envelope,
    },
    /// Add a connection of the receiving node to a group (or remove it); answered with `Ack`.
    GroupChange {
        /// Identifies the answer.
        request: u64,
        /// The connection.
        connection: String,
        /// The group.
        group: String,
        /// Add (true) or remove (false).
        add: bool,
    },
    /// A request of the receiving node's origin is done.
    Ack {
        /// The request answered.
        request: u64,
    },
    /// Call a client method of a connection of the receiving node and forward its Completion.
    InvokeClient {
        /// The connection.
        connection: String,
        /// The invocation id (it names the asking node).
        invocation: String,
        /// The Invocation message, with that id, in every protocol.
        message: Envelope,
        /// How long the asker waits, in milliseconds (the receiver forgets it after that).
        timeout_ms: u64,
    },
    /// The outcome of an `InvokeClient`.
    ClientResult {
        /// The invocation id.
        invocation: String,
        /// What the client answered, or why it could not.
        outcome: WireOutcome,
    },
    /// End the receiving node's connections among `target`.
    Abort {
        /// Who.
        target: Target,
    },
    /// A question about the receiving node's connections; answered with `Answer`.
    Query {
        /// Identifies the answer.
        request: u64,
        /// The question.
        query: Query,
    },
    /// The receiving node's answer to a `Query`.
    Answer {
        /// The request answered.
        request: u64,
        /// Connection ids or group names, as the query asked.
        names: Vec<String>,
    },
    /// An HTTP request (send, poll, DELETE) of a connection of the receiving node that reached
    /// the origin; answered with `HttpResponse`.
    HttpRequest {
        /// Identifies the answer.
        request: u64,
        /// The request.
        http: ForwardedRequest,
    },
    /// The receiving node's answer to its `HttpRequest`.
    HttpResponse {
        /// The request answered.
        request: u64,
        /// The response.
        http: ForwardedResponse,
    },
}

impl Body {
    /// The packet's kind, as the backplane metrics label it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Body::Send { .. } => "send",
            Body::GroupChange { .. } => "group_change",
            Body::Ack { .. } => "ack",
            Body::InvokeClient { .. } => "invoke_client",
            Body::ClientResult { .. } => "client_result",
            Body::Abort { .. } => "abort",
            Body::Query { .. } => "query",
            Body::Answer { .. } => "answer",
            Body::HttpRequest { .. } => "http_request",
            Body::HttpResponse { .. } => "http_response",
        }
    }
}

/// A question about the connections of a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Query {
    /// The connections in a group.
    GroupMembers(String),
    /// The groups of a connection.
    GroupsOf(String),
    /// The connections of a user.
    UserConnections(String),
}

/// A client result as it crosses nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireOutcome {
    /// A JSON result, as the client sent it.
    Json(Bytes),
    /// A MessagePack result, as the client sent it.
    MessagePack(Bytes),
    /// The client answered without a result.
    NoResult,
    /// The client answered with an error text.
    ClientError(String),
    /// The connection ended before answering.
    ConnectionClosed,
    /// The receiving node has no such connection.
    NoSuchConnection,
}

impl WireOutcome {
    /// The wire form of a client's Completion.
    pub(crate) fn from_completion(outcome: CompletionOutcome) -> Self {
        match outcome {
            CompletionOutcome::Result(value) => match value.format() {
                Format::Json => WireOutcome::Json(value.bytes().clone()),
                Format::MessagePack => WireOutcome::MessagePack(value.bytes().clone()),
            },
            CompletionOutcome::NoResult => WireOutcome::NoResult,
            CompletionOutcome::Error(text) => WireOutcome::ClientError(text.to_string()),
        }
    }

    /// What the waiting hub method gets. Bytes that are not a well-formed value (a node of
    /// another build) become an error rather than a panic.
    pub(crate) fn into_answer(self, connection_id: &str) -> Result<RawValue, ClientResultError> {
        match self {
            WireOutcome::Json(bytes) => RawValue::from_json(bytes)
                .map_err(|error| ClientResultError::WrongType(error.to_string())),
            WireOutcome::MessagePack(bytes) => RawValue::from_msgpack(bytes)
                .map_err(|error| ClientResultError::WrongType(error.to_string())),
            WireOutcome::NoResult => Err(ClientResultError::NoResult),
            WireOutcome::ClientError(text) => Err(ClientResultError::Client(text)),
            WireOutcome::ConnectionClosed => Err(ClientResultError::ConnectionClosed),
            WireOutcome::NoSuchConnection => Err(ClientResultError::NoSuchConnection(
                connection_id.to_owned(),
            )),
        }
    }
}

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Not MessagePack of this shape.
    #[error("a backplane packet is malformed: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
    /// Another version of the format.
    #[error("a backplane packet has version {0}, this node reads version {VERSION}")]
    Version(u8),
}

impl Packet {
    /// A packet from `origin` carrying `body`.
    pub(crate) fn new(origin: &str, body: Body) -> Self {
        Packet {
            v: VERSION,
            origin: origin.to_owned(),
            trace: None,
            at: None,
            body,
        }
    }

    /// The packet as MessagePack.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// Reads a packet.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        let packet: Packet = rmp_serde::from_slice(bytes)?;
        if packet.v != VERSION {
            return Err(DecodeError::Version(packet.v));
        }
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_packet_round_trips_and_keeps_the_bytes_of_each_protocol() {
        let message = Envelope {
            json: Bytes::from_static(b"{\"type\":1}\x1e"),
            messagepack: Bytes::from_static(&[3, 0x91, 1, 2]),
        };
        let packet = Packet::new(
            "node-a",
            Body::Send {
                target: Target::GroupExcept("room".into(), vec!["c1".into()]),
                message: message.clone(),
            },
        );
        let decoded = Packet::decode(&packet.encode().unwrap()).unwrap();
        assert_eq!(decoded.origin, "node-a");
        match decoded.body {
            Body::Send { target, message: m } => {
                assert_eq!(
                    target,
                    Target::GroupExcept("room".into(), vec!["c1".into()])
                );
                assert_eq!(m, message);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_version_and_garbage_are_errors_not_panics() {
        let mut packet = Packet::new("a", Body::Ack { request: 7 });
        packet.v = 9;
        assert!(matches!(
            Packet::decode(&packet.encode().unwrap()),
            Err(DecodeError::Version(9))
        ));
        for garbage in [&b""[..], b"\xc1", b"\x92\x01", b"{\"v\":1}"] {
            assert!(Packet::decode(garbage).is_err());
        }
    }

    #[test]
    fn outcomes_come_back_as_the_hub_method_sees_them() {
        let json = WireOutcome::from_completion(CompletionOutcome::Result(
            RawValue::from_json("[1,2]").unwrap(),
        ));
        assert_eq!(json.into_answer("c").unwrap().as_bytes(), b"[1,2]");
        assert_eq!(
            WireOutcome::ClientError("nope".into()).into_answer("c"),
            Err(ClientResultError::Client("nope".into()))
        );
        assert_eq!(
            WireOutcome::NoSuchConnection.into_answer("c"),
            Err(ClientResultError::NoSuchConnection("c".into()))
        );
        assert!(WireOutcome::Json(Bytes::from_static(b"{"))
            .into_answer("c")
            .is_err());
    }
}
