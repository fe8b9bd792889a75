//! The one error type of the protocol core.

use crate::protocol::Format;

/// Everything that can go wrong while framing, decoding or encoding SignalR messages, parsing a
/// handshake or reading a negotiate exchange.
///
/// A `ProtocolError` on input from a peer means the peer broke the protocol: the server closes that
/// one connection (with a Close message carrying an error) and nothing else. The `Display` texts of
/// the handshake variants are the exact texts ASP.NET Core sends, so a server can put
/// `error.to_string()` straight into a handshake error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A message (or the handshake) is longer than the configured maximum message size.
    #[error("the message is larger than the maximum message size of {limit} bytes; raise the limit or send smaller messages")]
    MessageTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// A MessagePack length prefix is not a valid 1–5 byte varint of at most 2^31−1.
    #[error("invalid MessagePack length prefix: {0}")]
    InvalidLengthPrefix(&'static str),
    /// The input ended inside a message (only reported where a complete message was required).
    #[error("the input ended in the middle of a message")]
    Incomplete,
    /// A JSON message is not valid JSON or not an object.
    #[error("invalid JSON hub message: {0}")]
    InvalidJson(String),
    /// A MessagePack message is malformed.
    #[error("invalid MessagePack hub message: {0}")]
    InvalidMessagePack(String),
    /// A message has no `type`, or a type that is not an integer.
    #[error("the message has no integer 'type' field")]
    MissingType,
    /// A required field of a message kind is missing.
    #[error("the {kind} message is missing its required '{field}' field")]
    MissingField {
        /// The message kind, e.g. `Invocation`.
        kind: &'static str,
        /// The wire name of the missing field.
        field: &'static str,
    },
    /// A field has the wrong type.
    #[error("the '{field}' field of the {kind} message has the wrong type: expected {expected}")]
    InvalidField {
        /// The message kind, e.g. `Completion`.
        kind: &'static str,
        /// The wire name of the field.
        field: &'static str,
        /// What the field should hold.
        expected: &'static str,
    },
    /// A Completion carries both a result and an error.
    #[error("the Completion message has both a result and an error; send one of them")]
    ResultAndError,
    /// A MessagePack Completion has a result kind other than 1, 2 or 3.
    #[error("the Completion message has an unknown result kind {0}; expected 1 (error), 2 (no result) or 3 (result)")]
    InvalidResultKind(u64),
    /// A value could not be deserialized into the type the caller asked for.
    #[error("cannot deserialize the {format} value: {message}")]
    Deserialize {
        /// The encoding of the value.
        format: Format,
        /// What serde reported.
        message: String,
    },
    /// A value could not be serialized.
    #[error("cannot serialize the value as {format}: {message}")]
    Serialize {
        /// The encoding that was being written.
        format: Format,
        /// What serde reported.
        message: String,
    },
    /// A message would be larger than a MessagePack length prefix can describe (2^31−1 bytes).
    #[error("the encoded message is larger than 2^31-1 bytes")]
    EncodedMessageTooLarge,

    // ----- handshake (Display texts are ASP.NET Core's, sent to the client verbatim) -----
    /// The handshake request is malformed (not JSON, or without `protocol`/`version`).
    #[error("An unexpected error occurred during connection handshake.")]
    InvalidHandshake,
    /// The handshake names a protocol this server does not speak.
    #[error("The protocol '{0}' is not supported.")]
    UnsupportedProtocol(String),
    /// The handshake asks for a protocol version above what this server speaks.
    #[error("The server does not support version {version} of the '{protocol}' protocol.")]
    UnsupportedProtocolVersion {
        /// The protocol name from the request.
        protocol: String,
        /// The version from the request.
        version: i64,
    },
    /// The protocol needs binary frames but the transport carries only text (MessagePack over SSE).
    #[error("Cannot use the '{0}' protocol on the current transport. The transport does not support 'Binary' transfer format.")]
    TransferFormatNotSupported(&'static str),
    /// The handshake did not arrive in time, or was larger than the maximum message size.
    #[error("Handshake was canceled.")]
    HandshakeCanceled,
    /// The server answered the handshake with an error (client side).
    #[error("Server returned handshake error: {0}")]
    HandshakeRejected(String),

    // ----- negotiate (Display texts are ASP.NET Core's) -----
    /// `negotiateVersion` in the query is not an integer.
    #[error("The client requested a non-integer protocol version.")]
    NonIntegerNegotiateVersion,
    /// `negotiateVersion` is below the server's minimum.
    #[error("The client requested version '{0}', but the server does not support this version.")]
    UnsupportedNegotiateVersion(i64),
    /// A negotiate response body is not what the protocol allows (client side).
    #[error("invalid negotiate response: {0}")]
    InvalidNegotiateResponse(String),
    /// An authentication refresh answer is not a JSON object (client side).
    #[error("invalid authentication refresh response received: {0}")]
    InvalidRefreshResponse(String),
}

impl ProtocolError {
    pub(crate) fn json(err: impl std::fmt::Display) -> Self {
        ProtocolError::InvalidJson(err.to_string())
    }

    pub(crate) fn msgpack(err: impl std::fmt::Display) -> Self {
        ProtocolError::InvalidMessagePack(err.to_string())
    }
}
