//! The up-channel of the HTTP transports (Server-Sent Events and long polling): the client sends
//! with `POST {hub}?id=<token>`, each body holding one or more whole messages.
//!
//! Bodies are handed to the connection's [`HttpSource`] through a channel of one slot, in the order
//! the requests took the connection's send lock (a fair, first-come-first-served lock, as ASP.NET
//! Core's): concurrent POSTs queue rather than fail. A POST is answered once its bytes are in the
//! channel, so a client that sends faster than its connection reads waits for its POSTs' answers.
//! Memory per connection stays bounded: at most one body in the channel and one being read, each
//! at most the hub's request body limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use super::{TransportError, TransportSource};

/// Why a POST body was not delivered.
#[derive(Debug)]
pub(crate) enum DeliverError {
    /// The connection has ended (404).
    Closed,
    /// The body is larger than the limit (413).
    TooLarge,
    /// Reading the body failed, e.g. the client went away (400).
    Body(String),
}

/// Where the POSTs of one connection go.
#[derive(Debug)]
pub(crate) struct Inbound {
    sender: Mutex<mpsc::Sender<Bytes>>,
}

impl Inbound {
    /// A new up-channel and the receiving end for the connection's source.
    pub(crate) fn new() -> (Inbound, mpsc::Receiver<Bytes>) {
        let (sender, receiver) = mpsc::channel(1);
        (
            Inbound {
                sender: Mutex::new(sender),
            },
            receiver,
        )
    }

    /// Reads `body` (at most `limit` bytes) and hands it to the connection, after the POSTs that
    /// came first.
    pub(crate) async fn deliver<B>(&self, body: B, limit: usize) -> Result<(), DeliverError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let sender = self.sender.lock().await;
        if sender.is_closed() {
            return Err(DeliverError::Closed);
        }
        // A body that trickles in must not outlive its connection (or delay shutdown).
        let collected = tokio::select! {
            collected = Limited::new(body, limit).collect() => collected,
            () = sender.closed() => return Err(DeliverError::Closed),
        };
        let bytes = match collected {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(DeliverError::TooLarge)
            }
            Err(error) => return Err(DeliverError::Body(error.to_string())),
        };
        if bytes.is_empty() {
            return Ok(());
        }
        sender.send(bytes).await.map_err(|_| DeliverError::Closed)
    }
}

/// The receiving half of an HTTP transport: POST bodies, in order, until the client is gone.
pub(crate) struct HttpSource {
    receiver: mpsc::Receiver<Bytes>,
    /// Fires when the client is gone: its event stream closed, it sent DELETE, or it stopped
    /// polling.
    gone: CancellationToken,
    /// Set when it is gone because it stopped polling (long polling only).
    expired: Option<Arc<AtomicBool>>,
}

impl HttpSource {
    pub(crate) fn new(
        receiver: mpsc::Receiver<Bytes>,
        gone: CancellationToken,
        expired: Option<Arc<AtomicBool>>,
    ) -> Self {
        HttpSource {
            receiver,
            gone,
            expired,
        }
    }
}

impl TransportSource for HttpSource {
    async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        tokio::select! {
            biased;
            chunk = self.receiver.recv() => chunk.map(Ok),
            () = self.gone.cancelled() => None,
        }
    }

    fn timed_out(&self) -> bool {
        self.expired
            .as_ref()
            .is_some_and(|expired| expired.load(Ordering::Acquire))
    }
}
