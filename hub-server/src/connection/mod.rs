//! One hub connection: who it is, its bounded outbound queue, keep-alive, and how it closes.
//!
//! Everything that leaves a connection goes through its queue as whole, already encoded messages
//! (a broadcast hands every queue a cheap clone of the same bytes). One writer task per connection
//! drains the queue into the transport, batching what is waiting into one transport frame, and
//! sends a Ping when nothing was written for the keep-alive interval. A queue that is full means
//! the client cannot keep up: the connection is closed with an error rather than buffering more.

pub(crate) mod reconnect;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hub_core::negotiate::TransportType;
use hub_core::protocol::{Ack, Close, EncodeMessage, HubMessage, HubProtocol, Protocol, Sequence};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::connection::reconnect::{MessageBuffer, Sequencer};
use crate::request::RequestInfo;
use crate::transport::{TransportError, TransportSink};

/// Frames larger than this are not merged with others into one transport write.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// With stateful reconnect, `Ack`s go at most this often (and only when something new arrived).
const ACK_INTERVAL: Duration = Duration::from_secs(1);

/// Why a frame could not be queued without waiting.
#[derive(Debug)]
pub(crate) enum TrySendError {
    /// The connection is closed or closing.
    Closed,
    /// The queue is full; the frame is handed back.
    Full(Bytes),
}

/// Why a message could not be queued for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closed or closing.
    Closed,
    /// The connection's queue stayed full for the send timeout; it is being closed.
    QueueFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the connection is closed",
            SendError::QueueFull => {
                "the connection's outbound queue stayed full; it is being closed"
            }
        })
    }
}

impl std::error::Error for SendError {}

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

/// Settings of the writer task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterConfig {
    /// `None` disables keep-alive pings (long polling).
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) send_timeout: Duration,
}

/// How a stateful-reconnect connection's writer works with one socket.
pub(crate) struct Resumable {
    /// The numbered messages of both directions.
    pub(crate) sequencer: Arc<Sequencer>,
    /// Fires when this socket is lost, noticed by the reader or the writer.
    pub(crate) lost: CancellationToken,
    /// A reconnected socket: `Sequence` and the unacknowledged messages go first.
    pub(crate) replay: bool,
}

/// Why the writer stopped.
pub(crate) enum WriterExit {
    /// The connection ended (its Close message was written if possible).
    Ended,
    /// The socket of a stateful-reconnect connection was lost; the queue waits for the next one.
    Lost(Outbox),
}

/// Drains the connection's queue into `sink` until the connection ends, then writes the Close
/// message and closes the transport. With stateful reconnect, also numbers and keeps what it
/// sends (waiting while the replay buffer is full), sends `Ack`s at most once a second, and stops
/// without ending the connection when the socket is lost.
pub(crate) async fn write_loop<S: TransportSink>(
    connection: Arc<Connection>,
    mut outbox: Outbox,
    mut sink: S,
    config: WriterConfig,
    resumable: Option<Resumable>,
) -> WriterExit {
    let ping = connection
        .protocol
        .encode_to_bytes(&HubMessage::<(), ()>::Ping)
        .unwrap_or_default();
    let sequencer = resumable.as_ref().map(|r| r.sequencer.clone());
    let lost = resumable.as_ref().map(|r| r.lost.clone());
    let mut last_write = Instant::now();
    let mut batch = BytesMut::new();
    if let (Some(resumable), Some(sequencer)) = (&resumable, &sequencer) {
        if resumable.replay {
            if let Err(error) = Box::pin(replay(
                &connection,
                &mut sink,
                sequencer,
                config.send_timeout,
            ))
            .await
            {
                tracing::debug!(connection_id = %connection.id, %error, "replay after a reconnect failed");
                resumable.lost.cancel();
                return WriterExit::Lost(outbox);
            }
        }
    }
    let mut acks = tokio::time::interval(ACK_INTERVAL);
    acks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One timer for the whole connection, re-armed only when it fires early: no timer work per
    // message.
    let keep_alive = config.keep_alive;
    let mut keep_alive_timer = std::pin::pin!(tokio::time::sleep(
        keep_alive.unwrap_or(Duration::from_secs(3600))
    ));
    // The ends to watch, each registered once rather than once per message.
    let mut closing = std::pin::pin!(connection.closing().cancelled());
    let mut socket_gone = std::pin::pin!(async {
        match &lost {
            Some(lost) => lost.cancelled().await,
            None => std::future::pending().await,
        }
    });
    loop {
        let has_room = sequencer
            .as_ref()
            .is_none_or(|sequencer| sequencer.with(|buffer| buffer.has_room()));
        let room_freed = async {
            match &sequencer {
                Some(sequencer) if !has_room => sequencer.room_freed().await,
                _ => std::future::pending().await,
            }
        };
        let ack_due = async {
            match &sequencer {
                Some(sequencer) => loop {
                    acks.tick().await;
                    if let Some(id) = sequencer.with(MessageBuffer::take_ack) {
                        break id;
                    }
                },
                None => std::future::pending().await,
            }
        };
        // Checked here with one atomic load; the `closing` branch below is polled (and its lock
        // taken) only when there is nothing to write.
        if connection.is_closing() {
            break;
        }
        let frame = tokio::select! {
            biased;
            () = socket_gone.as_mut() => return WriterExit::Lost(outbox),
            id = ack_due => match connection.protocol.encode_to_bytes(&HubMessage::<(), ()>::Ack(Ack { sequence_id: id })) {
                Ok(ack) => ack,
                Err(_) => continue,
            },
            () = room_freed => continue,
            frame = outbox.receiver.recv(), if has_room => match frame {
                Some(frame) => collect_batch(frame, &mut outbox.receiver, &mut batch, sequencer.as_deref()),
                None => break,
            },
            () = keep_alive_timer.as_mut(), if keep_alive.is_some() => {
                let due = last_write + keep_alive.unwrap_or_default();
                if due > Instant::now() {
                    keep_alive_timer.as_mut().reset(due);
                    continue;
                }
                keep_alive_timer.as_mut().reset(Instant::now() + keep_alive.unwrap_or_default());
                ping.clone()
            }
            () = closing.as_mut() => break,
        };
        if let Err(error) = send_with_timeout(&mut sink, frame, config.send_timeout).await {
            tracing::debug!(connection_id = %connection.id, %error, "transport write failed");
            if let Some(lost) = &lost {
                // The frame is in the replay buffer: the next socket sends it again.
                lost.cancel();
                return WriterExit::Lost(outbox);
            }
            connection.end(
                Close::with_error(),
                Some(format!("The transport failed: {error}")),
            );
            let _ = tokio::time::timeout(config.send_timeout, sink.close(true)).await;
            return WriterExit::Ended;
        }
        last_write = Instant::now();
    }

    // Ending (boxed, as the replay is: the task stays the size of its loop).
    Box::pin(flush_and_close(
        &connection,
        &mut outbox,
        &mut sink,
        &mut batch,
        config.send_timeout,
    ))
    .await;
    WriterExit::Ended
}

/// The writer's end: flushes what is already queued (unless the queue overflowed), then sends the
/// Close message and closes the transport, all within one send timeout.
async fn flush_and_close<S: TransportSink>(
    connection: &Connection,
    outbox: &mut Outbox,
    sink: &mut S,
    batch: &mut BytesMut,
    send_timeout: Duration,
) {
    let ending = connection.ending().unwrap_or(Ending {
        message: Close::new(),
        error: None,
        flush: true,
    });
    let deadline = Instant::now() + send_timeout;
    let mut healthy = true;
    if ending.flush {
        while let Ok(frame) = outbox.receiver.try_recv() {
            let frame = collect_batch(frame, &mut outbox.receiver, batch, None);
            if tokio::time::timeout_at(deadline, sink.send(frame))
                .await
                .map_or(true, |r| r.is_err())
            {
                healthy = false;
                break;
            }
        }
    }
    outbox.receiver.close();
    if healthy {
        if let Ok(close) = connection.protocol.encode_to_bytes(&ending.message) {
            healthy = matches!(
                tokio::time::timeout_at(deadline, sink.send(close)).await,
                Ok(Ok(()))
            );
        }
    }
    let _ = tokio::time::timeout_at(deadline, sink.close(!healthy)).await;
}

/// On a reconnected socket: `Sequence` (the first id that follows), then every unacknowledged
/// message, in order, batched into frames of whole messages.
async fn replay<S: TransportSink>(
    connection: &Connection,
    sink: &mut S,
    sequencer: &Sequencer,
    timeout: Duration,
) -> Result<(), TransportError> {
    let (sequence_id, messages) = sequencer.with(|buffer| buffer.replay());
    tracing::debug!(
        connection_id = %connection.id,
        sequence_id,
        replayed = messages.len(),
        "resuming on a new socket"
    );
    let mut frame = BytesMut::from(
        connection
            .protocol
            .encode_to_bytes(&HubMessage::<(), ()>::Sequence(Sequence { sequence_id }))
            .map_err(|error| TransportError(error.to_string()))?
            .as_ref(),
    );
    for message in messages {
        if !frame.is_empty() && frame.len() + message.len() > MAX_BATCH_BYTES {
            send_with_timeout(sink, frame.split().freeze(), timeout).await?;
        }
        frame.extend_from_slice(&message);
    }
    if !frame.is_empty() {
        send_with_timeout(sink, frame.freeze(), timeout).await?;
    }
    Ok(())
}

/// Joins `first` with the frames already waiting, up to [`MAX_BATCH_BYTES`], into one buffer.
/// With a sequencer, every frame taken is numbered and kept for replay, and no more are taken once
/// the replay buffer is full.
fn collect_batch(
    first: Bytes,
    receiver: &mut mpsc::Receiver<Bytes>,
    batch: &mut BytesMut,
    sequencer: Option<&Sequencer>,
) -> Bytes {
    let record = |frame: &Bytes| {
        sequencer.is_none_or(|sequencer| {
            sequencer.with(|buffer| {
                buffer.record_sent(frame.clone());
                buffer.has_room()
            })
        })
    };
    let room = record(&first);
    if !room || first.len() >= MAX_BATCH_BYTES || receiver.is_empty() {
        return first;
    }
    batch.clear();
    batch.extend_from_slice(&first);
    while batch.len() < MAX_BATCH_BYTES {
        match receiver.try_recv() {
            Ok(next) => {
                batch.extend_from_slice(&next);
                if !record(&next) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    batch.split().freeze()
}

async fn send_with_timeout<S: TransportSink>(
    sink: &mut S,
    frame: Bytes,
    timeout: Duration,
) -> Result<(), TransportError> {
    // Most writes complete at once: try first, and arm the timer only for one that waits.
    let mut send = std::pin::pin!(sink.send(frame));
    if let Some(result) = futures_util::FutureExt::now_or_never(send.as_mut()) {
        return result;
    }
    match tokio::time::timeout(timeout, send).await {
        Ok(result) => result,
        Err(_) => Err(TransportError(format!(
            "a write did not complete within {timeout:?}"
        ))),
    }
}
