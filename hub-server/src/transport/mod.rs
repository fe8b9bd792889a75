//! Transports: how bytes reach a connection and leave it. The connection lifecycle only sees the
//! two traits here; each transport implements them.
//!
//! WebSockets carry both directions. Server-Sent Events and long polling carry the server's
//! messages; the client sends with POST requests, which both share ([`http`]).

pub(crate) mod http;
pub(crate) mod long_polling;
pub(crate) mod sse;
pub(crate) mod websocket;

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use hub_core::protocol::Protocol;

/// The transport failed: the peer went away, sent something the transport rejects, or a write
/// timed out.
#[derive(Debug)]
pub(crate) struct TransportError(pub(crate) String);

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The receiving half of a transport: chunks of the client's byte stream, in order.
pub(crate) trait TransportSource: Send {
    /// The next chunk; `None` when the client closed the transport.
    fn next(&mut self) -> impl Future<Output = Option<Result<Bytes, TransportError>>> + Send;

    /// Whether the source ended because the client stopped coming back (a long-polling client
    /// that no poll reached for the disconnect timeout).
    fn timed_out(&self) -> bool {
        false
    }
}

/// What became of a frame offered to [`TransportSink::try_send`].
#[derive(Debug)]
pub(crate) enum TrySend {
    /// Written (or handed to the transport's own buffer, as far as it goes without waiting).
    Sent,
    /// Taken, but its flush has to wait: [`TransportSink::flush`] finishes it.
    Flushing,
    /// The transport cannot take it without waiting; handed back untouched.
    Busy(Bytes),
    /// The transport failed.
    Failed(TransportError),
}

/// The sending half of a transport.
pub(crate) trait TransportSink: Send + 'static {
    /// Called once the handshake picked a protocol: frames that follow are in it (WebSockets then
    /// send binary frames for MessagePack). Handshake errors are sent before, as text.
    fn set_protocol(&mut self, protocol: Protocol);
    /// Writes one transport frame holding one or more whole messages.
    fn send(&mut self, frame: Bytes) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Writes one frame if the transport takes it without waiting, else hands it back: how a
    /// connection's reader writes its own replies without ever waiting on the client.
    fn try_send(&mut self, frame: Bytes) -> TrySend;
    /// Finishes a write [`try_send`](Self::try_send) left [`Flushing`](TrySend::Flushing).
    fn flush(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send {
        std::future::ready(Ok(()))
    }
    /// Closes the transport: normally, or as an internal error.
    fn close(&mut self, internal_error: bool) -> impl Future<Output = ()> + Send;
}
