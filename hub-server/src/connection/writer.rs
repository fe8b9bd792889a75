//! The writer task of a connection: drains the outbound queue into the transport, batching what
//! is waiting into one frame, sends keep-alive Pings, and, with stateful reconnect, numbers,
//! buffers and replays messages.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hub_core::protocol::{Ack, Close, HubMessage, HubProtocol, Sequence};
use tokio::time::Instant;

use super::reconnect::{MessageBuffer, Sequencer};
use super::*;
use crate::transport::{TransportError, TransportSink};

/// Frames larger than this are not merged with others into one transport write.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// With stateful reconnect, `Ack`s go at most this often (and only when something new arrived).
const ACK_INTERVAL: Duration = Duration::from_secs(1);

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
        timed_out: false,
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
