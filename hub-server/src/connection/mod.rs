//! One hub connection: who it is, its bounded outbound queue, keep-alive, and how it closes.
//!
//! Everything that leaves a connection goes through its queue as whole, already encoded messages
//! (a broadcast hands every queue a cheap clone of the same bytes). One writer task per connection
//! drains the queue into the transport, batching what is waiting into one transport frame, and
//! sends a Ping when nothing was written for the keep-alive interval. A queue that is full means
//! the client cannot keep up: the connection is closed with an error rather than buffering more.

pub(crate) mod reconnect;
mod writer;

pub(crate) use writer::{write_loop, Resumable, WriterConfig, WriterExit};

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hub_core::negotiate::TransportType;
use hub_core::protocol::{Close, EncodeMessage, HubProtocol, Protocol};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::request::RequestInfo;

/// Why a frame could not be queued without waiting.
#[derive(Debug)]
pub(crate) enum TrySendError {
    /// The connection is closed or closing.
    Closed,
    /// The queue is full; the frame is handed back.
    Full(Bytes),
}

/// Why a message could not be queued for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closed or closing.
    #[error("the connection is closed")]
    Closed,
    /// The connection's queue stayed full for the send timeout; it is being closed.
    #[error("the connection's outbound queue stayed full; it is being closed")]
    QueueFull,
}

/// How a connection ends: the Close message the client gets, and the error (if any) that the
/// on-disconnected hook and the logs see.
#[derive(Debug, Clone)]
pub(crate) struct Ending {
    pub(crate) message: Close,
    pub(crate) error: Option<String>,
    /// Whether messages already queued are still written before the Close message (not when the
    /// queue overflowed: the client is not reading).
    pub(crate) flush: bool,
}

/// A live connection, shared by its tasks, the lifetime manager and every context that refers to
/// it.
pub(crate) struct Connection {
    pub(crate) id: Arc<str>,
    /// How long a send may wait for room in the queue before the client counts as too slow.
    pub(crate) send_timeout: Duration,
    pub(crate) user_id: Option<Arc<str>>,
    pub(crate) principal: Principal,
    pub(crate) request: RequestInfo,
    pub(crate) transport: TransportType,
    pub(crate) protocol: Protocol,
    outbound: mpsc::Sender<Bytes>,
    closing: CancellationToken,
    /// Set with `closing`: one atomic load on every send instead of the token's lock.
    closed: AtomicBool,
    ending: Mutex<Option<Ending>>,
    state: Mutex<http::Extensions>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("transport", &self.transport)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// The parts of a connection the writer task owns.
pub(crate) struct Outbox {
    pub(crate) receiver: mpsc::Receiver<Bytes>,
}

pub(crate) struct ConnectionParts {
    pub(crate) id: Arc<str>,
    pub(crate) send_timeout: Duration,
    pub(crate) user_id: Option<Arc<str>>,
    pub(crate) principal: Principal,
    pub(crate) request: RequestInfo,
    pub(crate) transport: TransportType,
    pub(crate) protocol: Protocol,
    pub(crate) queue_capacity: usize,
}

impl Connection {
    pub(crate) fn new(parts: ConnectionParts) -> (Arc<Connection>, Outbox) {
        let (sender, receiver) = mpsc::channel(parts.queue_capacity);
        let connection = Connection {
            id: parts.id,
            send_timeout: parts.send_timeout,
            user_id: parts.user_id,
            principal: parts.principal,
            request: parts.request,
            transport: parts.transport,
            protocol: parts.protocol,
            outbound: sender,
            closing: CancellationToken::new(),
            closed: AtomicBool::new(false),
            ending: Mutex::new(None),
            state: Mutex::new(http::Extensions::new()),
        };
        (Arc::new(connection), Outbox { receiver })
    }

    /// Queues one encoded frame (whole messages) if there is room, without waiting.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), TrySendError> {
        if self.is_closing() {
            return Err(TrySendError::Closed);
        }
        match self.outbound.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TrySendError::Closed),
            Err(mpsc::error::TrySendError::Full(frame)) => Err(TrySendError::Full(frame)),
        }
    }

    /// Queues one encoded frame, waiting up to the send timeout for room. A client whose queue
    /// stays full that long cannot keep up: it is closed with an error.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), SendError> {
        let frame = match self.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed) => return Err(SendError::Closed),
            Err(TrySendError::Full(frame)) => frame,
        };
        tokio::select! {
            permit = self.outbound.reserve() => match permit {
                Ok(permit) => {
                    permit.send(frame);
                    Ok(())
                }
                Err(_) => Err(SendError::Closed),
            },
            () = self.closing.cancelled() => Err(SendError::Closed),
            () = tokio::time::sleep(self.send_timeout) => {
                self.overflowed();
                Err(SendError::QueueFull)
            }
        }
    }

    /// Encodes `message` in this connection's protocol; an encoding failure is logged.
    pub(crate) fn encode(&self, message: &dyn EncodeMessage) -> Option<Bytes> {
        match self.protocol.encode_to_bytes(message) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::error!(connection_id = %self.id, %error, "a message could not be encoded; it was not sent");
                None
            }
        }
    }

    fn overflowed(&self) {
        tracing::warn!(
            connection_id = %self.id,
            capacity = self.outbound.max_capacity(),
            timeout = ?self.send_timeout,
            "closing a connection whose client does not read fast enough: its outbound queue stayed full"
        );
        self.end_with(Ending {
            message: Close::with_error(),
            error: Some("The client did not keep up: its outbound queue stayed full.".into()),
            flush: false,
        });
    }

    /// Ends the connection: the client gets `message`, then the transport closes. The first call
    /// decides; later ones are ignored.
    pub(crate) fn end(&self, message: Close, error: Option<String>) {
        self.end_with(Ending {
            message,
            error,
            flush: true,
        });
    }

    fn end_with(&self, how: Ending) {
        {
            let mut ending = self.ending.lock().unwrap_or_else(PoisonError::into_inner);
            if ending.is_some() {
                return;
            }
            *ending = Some(how);
        }
        self.closed.store(true, Ordering::Release);
        self.closing.cancel();
    }

    /// Whether the connection is ending (cheap: an atomic load).
    pub(crate) fn is_closing(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How the connection ended (set once it is ending).
    pub(crate) fn ending(&self) -> Option<Ending> {
        self.ending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Fires when the connection starts ending.
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut http::Extensions) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
