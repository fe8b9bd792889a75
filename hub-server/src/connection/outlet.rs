//! The write side of a connection — the transport's sink and the outbound queue's receiving end.
//! Whoever holds it writes, and frames leave in queue order either way.
//!
//! The reader writes what its own dispatching queued (a call's Completion, a callback to the
//! caller) as soon as it has dispatched what it read, as far as the transport takes it without
//! waiting: a call then costs no wake-up. Whatever has to wait — a full socket, a flush under
//! way, a replay after a reconnect, a full replay buffer — is left to a write that waits: a
//! future the connection's task polls alongside its reads ([`Writing`](super::Writing)), or,
//! with stateful reconnect, the socket's writer task. The reader never waits for the client.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hub_core::protocol::{Close, HubMessage, HubProtocol, Sequence};
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::reconnect::Sequencer;
use super::{Connection, Outbox};
use crate::transport::{TransportError, TransportSink, TrySend};

/// Frames larger than this are not merged with others into one transport write.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// How a stateful-reconnect connection's write side works with one socket.
pub(crate) struct Resumable {
    /// The numbered messages of both directions.
    pub(crate) sequencer: Arc<Sequencer>,
    /// Fires when this socket is lost, noticed by the reader or the writer.
    pub(crate) lost: CancellationToken,
    /// A reconnected socket: `Sequence` and the unacknowledged messages go first.
    pub(crate) replay: bool,
}

/// A connection's write side over one transport (one socket, with stateful reconnect).
pub(crate) struct Outlet<S> {
    connection: Arc<Connection>,
    /// With stateful reconnect: the numbered messages.
    pub(crate) sequencer: Option<Arc<Sequencer>>,
    /// With stateful reconnect: fires when this socket is lost.
    pub(crate) lost: Option<CancellationToken>,
    state: Mutex<OutletState<S>>,
}

/// What the holder of the write side works with.
pub(crate) struct OutletState<S> {
    sink: S,
    outbox: Outbox,
    /// Where a batch of frames is joined.
    batch: BytesMut,
    /// Frames taken from the queue (and numbered) that the transport could not take without
    /// waiting: they go before anything else.
    held: Option<Bytes>,
    /// The transport took a frame and has yet to flush it.
    flush_pending: bool,
    /// A reconnected socket: `Sequence` and the unacknowledged messages go first.
    replay: bool,
    /// When something was last written (for keep-alive pings).
    pub(crate) last_write: Instant,
    /// Nothing more is written: the transport failed, the socket was lost, or the Close message
    /// went.
    done: bool,
}

impl<S: TransportSink> Outlet<S> {
    pub(crate) fn new(
        connection: Arc<Connection>,
        sink: S,
        outbox: Outbox,
        resumable: Option<Resumable>,
    ) -> Self {
        let (sequencer, lost, replay) = match resumable {
            Some(r) => (Some(r.sequencer), Some(r.lost), r.replay),
            None => (None, None, false),
        };
        Outlet {
            connection,
            sequencer,
            lost,
            state: Mutex::new(OutletState {
                sink,
                outbox,
                batch: BytesMut::new(),
                held: None,
                flush_pending: false,
                replay,
                last_write: Instant::now(),
                done: false,
            }),
        }
    }

    /// The connection written to.
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    /// When something was last written; `None` while someone writes.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        self.state.try_lock().ok().map(|state| state.last_write)
    }

    /// Writes what is queued as far as the transport takes it without waiting. Returns whether
    /// something is left that has to wait for the client (or someone else is writing), for
    /// whoever waits to take over.
    pub(crate) fn write_now(&self) -> bool {
        let Ok(mut state) = self.state.try_lock() else {
            return true;
        };
        match self.try_write_waiting(&mut state) {
            Ok(must_wait) => must_wait,
            Err(error) => {
                self.failed(&mut state, &error);
                false
            }
        }
    }

    /// Takes the write side, waiting while the reader writes.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, OutletState<S>> {
        self.state.lock().await
    }

    /// The queue, back from a lost socket's write side (for the next socket).
    pub(crate) fn into_outbox(self) -> Outbox {
        self.state.into_inner().outbox
    }

    /// Whether the replay buffer takes more frames (always, without stateful reconnect).
    pub(crate) fn has_room(&self) -> bool {
        self.sequencer
            .as_ref()
            .is_none_or(|sequencer| sequencer.with(|buffer| buffer.has_room()))
    }

    /// A write failed: with stateful reconnect the socket is lost (what was taken is in the
    /// replay buffer, and the next socket sends it again); otherwise the connection ends with an
    /// error.
    pub(crate) fn failed(&self, state: &mut OutletState<S>, error: &TransportError) {
        state.done = true;
        tracing::debug!(connection_id = %self.connection.id, %error, "transport write failed");
        match &self.lost {
            Some(lost) => {
                lost.cancel();
                // The reader looks at `lost` rather than wait on it.
                self.connection.poke_reader();
            }
            None => self.connection.end(
                Close::with_error(),
                Some(format!("The transport failed: {error}")),
            ),
        }
    }

    /// Writes everything that waits, in order — a replay, an unfinished flush, held frames, then
    /// the queue, as long as the replay buffer has room — each write within `timeout`.
    pub(crate) async fn write_waiting(
        &self,
        state: &mut OutletState<S>,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        if state.done {
            return Ok(());
        }
        if std::mem::take(&mut state.replay) {
            if let Some(sequencer) = &self.sequencer {
                Box::pin(replay(
                    &self.connection,
                    &mut state.sink,
                    sequencer,
                    timeout,
                ))
                .await?;
                state.last_write = Instant::now();
            }
        }
        if state.flush_pending {
            within(timeout, state.sink.flush()).await?;
            state.flush_pending = false;
        }
        if let Some(frame) = state.held.take() {
            send_within(&mut state.sink, frame, timeout).await?;
            state.last_write = Instant::now();
        }
        while self.has_room() {
            let Some(first) = state.outbox.pop() else {
                break;
            };
            let frame = collect_batch(first, state, self.sequencer.as_deref());
            send_within(&mut state.sink, frame, timeout).await?;
            state.last_write = Instant::now();
        }
        Ok(())
    }

    /// The end of the write side: flushes what waits (when `flush`, and unless a write already
    /// failed), then sends `close` and closes the transport, all before `deadline`.
    pub(crate) async fn close(
        &self,
        state: &mut OutletState<S>,
        close: &Close,
        flush: bool,
        deadline: Instant,
    ) {
        let mut healthy = !state.done;
        if healthy && flush {
            let timeout = deadline.saturating_duration_since(Instant::now());
            healthy = tokio::time::timeout_at(deadline, self.write_waiting(state, timeout))
                .await
                .is_ok_and(|result| result.is_ok());
        }
        state.done = true;
        state.outbox.close();
        if healthy {
            if let Ok(message) = self.connection.protocol.encode_to_bytes(close) {
                healthy = matches!(
                    tokio::time::timeout_at(deadline, state.sink.send(message)).await,
                    Ok(Ok(()))
                );
            }
        }
        let _ = tokio::time::timeout_at(deadline, state.sink.close(!healthy)).await;
    }

    /// Marks a lost socket's write side: nothing more is written to it.
    pub(crate) fn abandon(state: &mut OutletState<S>) {
        state.done = true;
    }

    /// Sends one frame that is not from the queue (a Ping, an Ack), after what waits.
    pub(crate) async fn send_extra(
        &self,
        state: &mut OutletState<S>,
        frame: Bytes,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        self.write_waiting(state, timeout).await?;
        if state.done {
            return Ok(());
        }
        send_within(&mut state.sink, frame, timeout).await?;
        state.last_write = Instant::now();
        Ok(())
    }

    /// What waits, as far as the transport takes it now. Returns whether the rest has to wait.
    fn try_write_waiting(&self, state: &mut OutletState<S>) -> Result<bool, TransportError> {
        if state.done {
            return Ok(false);
        }
        if state.replay || state.flush_pending || state.held.is_some() {
            return Ok(true);
        }
        let mut wrote = false;
        let result = loop {
            if !self.has_room() {
                // The writer waits for an Ack to free room.
                break Ok(!state.outbox.is_empty());
            }
            let Some(first) = state.outbox.pop() else {
                break Ok(false);
            };
            let frame = collect_batch(first, state, self.sequencer.as_deref());
            match state.sink.try_send(frame) {
                TrySend::Sent => wrote = true,
                TrySend::Flushing => {
                    wrote = true;
                    state.flush_pending = true;
                    break Ok(true);
                }
                TrySend::Busy(frame) => {
                    state.held = Some(frame);
                    break Ok(true);
                }
                TrySend::Failed(error) => break Err(error),
            }
        };
        if wrote {
            state.last_write = Instant::now();
        }
        result
    }
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
            send_within(sink, frame.split().freeze(), timeout).await?;
        }
        frame.extend_from_slice(&message);
    }
    if !frame.is_empty() {
        send_within(sink, frame.freeze(), timeout).await?;
    }
    Ok(())
}

/// Joins `first` with the frames already waiting, up to [`MAX_BATCH_BYTES`], into one buffer.
/// With a sequencer, every frame taken is numbered and kept for replay, and no more are taken once
/// the replay buffer is full.
fn collect_batch<S>(
    first: Bytes,
    state: &mut OutletState<S>,
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
    let outbox = &state.outbox;
    let room = record(&first);
    if !room || first.len() >= MAX_BATCH_BYTES || outbox.is_empty() {
        return first;
    }
    let batch = &mut state.batch;
    batch.clear();
    batch.extend_from_slice(&first);
    while batch.len() < MAX_BATCH_BYTES {
        match outbox.pop() {
            Some(next) => {
                batch.extend_from_slice(&next);
                if !record(&next) {
                    break;
                }
            }
            None => break,
        }
    }
    batch.split().freeze()
}

/// Sends `frame`, failing if the write does not complete within `timeout`.
async fn send_within<S: TransportSink>(
    sink: &mut S,
    frame: Bytes,
    timeout: Duration,
) -> Result<(), TransportError> {
    within(timeout, sink.send(frame)).await
}

/// Runs a write, failing if it does not complete within `timeout`. Most writes complete at once:
/// the timer is armed only for one that waits.
async fn within(
    timeout: Duration,
    write: impl std::future::Future<Output = Result<(), TransportError>>,
) -> Result<(), TransportError> {
    let mut write = std::pin::pin!(write);
    if let Some(result) = futures_util::FutureExt::now_or_never(write.as_mut()) {
        return result;
    }
    // A transport that is full: the timer and the wait are boxed, so that the writing future stays
    // the size of a write that completes at once.
    Box::pin(async move {
        match tokio::time::timeout(timeout, write).await {
            Ok(result) => result,
            Err(_) => Err(TransportError(format!(
                "a write did not complete within {timeout:?}"
            ))),
        }
    })
    .await
}
