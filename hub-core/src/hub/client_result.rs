//! Why a server-to-client invocation (a *client result*) produced no value.

use std::time::Duration;

use super::HubError;

/// Why awaiting a client's result failed. Each case says who is at fault, so a caller can tell a
/// timeout from a closed connection from the client's own error.
///
/// Converting it into a [`HubError`] (with `?` in a hub method) keeps its text for the caller,
/// as the server has always sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientResultError {
    /// No connection has this id (it never existed or has ended).
    #[error("Connection '{0}' does not exist.")]
    NoSuchConnection(String),
    /// The connection ended before the client answered.
    #[error("The connection was closed before the client answered.")]
    ConnectionClosed,
    /// The client did not answer in time.
    #[error("The client did not answer within {0:?}.")]
    TimedOut(Duration),
    /// The client answered with an error: its text, as the client sent it.
    #[error("{0}")]
    Client(String),
    /// The client has no handler for the method, or answered without a result.
    #[error("Client didn't provide a result.")]
    NoResult,
    /// The client's result does not deserialize into the expected type.
    #[error("The client's result has the wrong type: {0}")]
    WrongType(String),
    /// The invocation could not be encoded in the connection's protocol.
    #[error("The client invocation could not be encoded.")]
    Encode,
    /// The connection belongs to another server, which is gone or unreachable.
    #[error("The server that owns connection '{connection_id}' is unavailable: {reason}")]
    ServerUnavailable {
        /// The connection asked.
        connection_id: String,
        /// Why the owning server cannot be reached.
        reason: String,
    },
}

impl ClientResultError {
    /// The hub error a hub method returns for it: the same text, shown to the caller.
    pub fn to_hub_error(&self) -> HubError {
        HubError::new(self.to_string())
    }
}
