//! The writer task of a stateful-reconnect connection's socket: writes what the reader could not
//! write at once (anything queued by other tasks — broadcasts, invocations that waited — and
//! whatever has to wait for the client), sends keep-alive Pings, `Ack`s, replays and waits for
//! room in the replay buffer; at the end, the Close message. (Without stateful reconnect, the
//! connection's own task does the writing: [`Writing`](super::Writing).)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hub_core::protocol::{Ack, Close, HubMessage, HubProtocol};
use tokio::time::Instant;

use super::outlet::Outlet;
use super::reconnect::MessageBuffer;
use super::*;
use crate::transport::TransportSink;

/// With stateful reconnect, `Ack`s go at most this often (and only when something new arrived).
const ACK_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of a connection's writing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterConfig {
    /// `None` disables keep-alive pings (long polling).
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) send_timeout: Duration,
}

/// Why the writer stopped.
pub(crate) enum WriterExit {
    /// The connection ended (its Close message was written if possible).
    Ended,
    /// The socket of a stateful-reconnect connection was lost; the queue waits for the next one.
    Lost,
}

/// Writes what waits whenever it is wanted until the connection ends, then writes the Close
/// message and closes the transport. With stateful reconnect, also sends `Ack`s at most once a
/// second, waits while the replay buffer is full, and stops without ending the connection when
/// the socket is lost.
pub(crate) async fn write_loop<S: TransportSink>(
    connection: Arc<Connection>,
    outlet: Arc<Outlet<S>>,
    config: WriterConfig,
) -> WriterExit {
    let ping = connection
        .protocol
        .encode_to_bytes(&HubMessage::<(), ()>::Ping)
        .unwrap_or_default();
    let sequencer = outlet.sequencer.clone();
    let lost = outlet.lost.clone();
    // What was queued before this writer started (and a replay) goes first.
    connection.wake_writer();
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
        let has_room = outlet.has_room();
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
        let extra: Option<Bytes> = tokio::select! {
            biased;
            () = socket_gone.as_mut() => {
                // The socket is gone, not the connection: the queue waits for the next socket.
                Outlet::abandon(&mut *outlet.lock().await);
                return WriterExit::Lost;
            }
            id = ack_due => connection
                .protocol
                .encode_to_bytes(&HubMessage::<(), ()>::Ack(Ack { sequence_id: id }))
                .ok(),
            () = room_freed => None,
            () = connection.writer_wanted(), if has_room => None,
            () = keep_alive_timer.as_mut(), if keep_alive.is_some() => {
                let interval = keep_alive.unwrap_or_default();
                let due = outlet.lock().await.last_write + interval;
                if due > Instant::now() {
                    keep_alive_timer.as_mut().reset(due);
                    continue;
                }
                keep_alive_timer.as_mut().reset(Instant::now() + interval);
                Some(ping.clone())
            }
            () = closing.as_mut() => break,
        };
        let mut state = outlet.lock().await;
        let written = match extra {
            // Boxed: a ping or an ack is rare, and the task stays the size of its common path.
            Some(frame) => {
                Box::pin(outlet.send_extra(&mut state, frame, config.send_timeout)).await
            }
            None => outlet.write_waiting(&mut state, config.send_timeout).await,
        };
        if let Err(error) = written {
            // Ends the connection (its transport is only closed below), or loses the socket.
            outlet.failed(&mut state, &error);
            if lost.is_some() {
                return WriterExit::Lost;
            }
            break;
        }
    }

    // Ending: flush what is already queued (unless the queue overflowed), then the Close
    // message, all within one send timeout.
    let ending = connection.ending().unwrap_or(Ending {
        message: Close::new(),
        error: None,
        flush: true,
        timed_out: false,
    });
    let deadline = Instant::now() + config.send_timeout;
    let mut state = outlet.lock().await;
    Box::pin(outlet.close(&mut state, &ending.message, ending.flush, deadline)).await;
    WriterExit::Ended
}
