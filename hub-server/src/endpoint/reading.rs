//! A connection's read loop: chunks from the transport → frames (size-limited) → messages →
//! the dispatcher, until the connection ends; the client-silence timer; a stateful connection's
//! sequence numbers.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hub_core::negotiate::TransportType;
use hub_core::protocol::{Close, FrameDecoder, HubMessage, HubProtocol};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connection::reconnect::{Incoming, Sequencer};
use crate::connection::{alongside, Connection, WriteSide};
use crate::dispatch::{Dispatcher, Flow, Handled};
use crate::endpoint::Endpoint;
use crate::transport::TransportSource;

/// Polls `end` (a cancellation) once to register its wake-up, and after that only when `fired`
/// (an atomic load, set before `end` fires) says it did: polling a cancellation token takes its
/// lock, and the shutdown token's is shared by every connection, where the read loop polls its
/// ends once per read.
fn poll_watched(
    end: Pin<&mut impl Future<Output = ()>>,
    registered: &mut bool,
    fired: bool,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if *registered && !fired {
        return Poll::Pending;
    }
    *registered = true;
    end.poll(cx)
}

/// The transport's next chunk, polled with the connection as its waker (see its [`Wake`]
/// implementation): at once, and then only when the transport woke it.
///
/// [`Wake`]: std::task::Wake
async fn read_when_woken<R: TransportSource>(
    source: &mut R,
    connection: &Connection,
    waker: &Waker,
) -> Option<Result<bytes::Bytes, crate::transport::TransportError>> {
    let mut read = std::pin::pin!(source.next());
    let mut first = true;
    poll_fn(|cx| {
        let woken = connection.take_read_wake(cx, !first);
        if !std::mem::take(&mut first) && !woken {
            return Poll::Pending;
        }
        read.as_mut().poll(&mut Context::from_waker(waker))
    })
    .await
}

/// What the decoder gave the read loop.
enum Next {
    /// No whole message is buffered.
    Empty,
    /// A message to dispatch.
    Message(HubMessage),
    /// A frame that holds no message.
    Ignored,
    /// A message the sequencer skips (sent again after a reconnect) or took (an Ack).
    Consumed,
    /// The client broke the protocol or sent a bad Sequence: the connection is ending.
    End,
}

/// The next buffered message. Not async: the read loop's task does not keep a message (or its
/// decoding) across its waits.
fn next_message(
    connection: &Connection,
    dispatcher: &Dispatcher,
    decoder: &mut FrameDecoder,
    sequencer: Option<&Sequencer>,
) -> Next {
    let frame = match decoder.next_frame() {
        Ok(Some(frame)) => frame,
        Ok(None) => return Next::Empty,
        Err(error) => {
            dispatcher.protocol_violation(&error);
            return Next::End;
        }
    };
    let message = match connection.protocol.decode(frame) {
        Ok(Some(message)) => message,
        Ok(None) => return Next::Ignored,
        Err(error) => {
            dispatcher.protocol_violation(&error);
            return Next::End;
        }
    };
    if let Some(sequencer) = sequencer {
        match sequencer.receive(&message) {
            Ok(Incoming::Dispatch) => {}
            Ok(Incoming::Skip | Incoming::Acked) => return Next::Consumed,
            Err(error) => {
                tracing::debug!(%error, "closing the connection: a bad Sequence");
                connection.end(Close::with_error(), Some(error.to_string()));
                return Next::End;
            }
        }
    }
    Next::Message(message)
}

/// Reads and dispatches until the connection ends; writes what the dispatching queued, and does
/// the connection's other writing meanwhile, through `writes`.
///
/// While the reader dispatches what one read brought, frames queued for the connection do not
/// wake the writer; the reader writes them when it is done (or before anything it waits for: a
/// call that has to wait for an invocation slot).
pub(super) async fn read_loop<R: TransportSource>(
    endpoint: &Endpoint,
    connection: &Arc<Connection>,
    dispatcher: &mut Dispatcher,
    decoder: &mut FrameDecoder,
    source: &mut R,
    writes: &mut dyn WriteSide,
    resumable: Option<(&Sequencer, &CancellationToken)>,
) {
    let client_timeout = endpoint.config.client_timeout;
    let sequencer = resumable.map(|(sequencer, _)| sequencer);
    let lost = resumable.map(|(_, lost)| lost);
    let socket_lost = || {
        if let Some(lost) = lost {
            lost.cancel();
            true
        } else {
            false
        }
    };
    let mut timeout_armed = false;
    // One timer for the whole connection, re-armed only when it fires early: no timer work per
    // chunk read.
    let mut last_heard = Instant::now();
    let mut heard = false;
    let mut silence_timer = std::pin::pin!(tokio::time::sleep(client_timeout));
    // The shutdown to watch, registered once rather than once per chunk. The connection's own
    // end and a lost socket poke the reader (`Connection::poke_reader`): flags looked at on each
    // wake-up, with no waiter kept in the task.
    let mut shutdown = std::pin::pin!(endpoint.shutdown.token().cancelled());
    let mut shutdown_watched = false;
    let ended = || connection.is_closing() || lost.is_some_and(CancellationToken::is_cancelled);
    let metrics = &endpoint.metrics;
    // The connection is the transport's waker.
    let read_waker = Waker::from(connection.clone());
    // Ends the deferral of writer wake-ups (if on) and writes what the dispatching queued.
    let write_deferred = |deferring: &mut bool, writes: &mut dyn WriteSide| {
        if std::mem::take(deferring) {
            connection.resume_writer_wakes();
            writes.write_from_reader();
        }
    };
    loop {
        // Dispatch every whole message received so far, then write the replies.
        let mut received = 0;
        let mut deferring = false;
        loop {
            // The message is gone (dispatched) before any wait: the task does not keep it.
            let wait = match next_message(connection, dispatcher, decoder, sequencer) {
                Next::Empty => break,
                Next::Ignored => None,
                Next::Consumed => {
                    received += 1;
                    None
                }
                Next::Message(message) => {
                    received += 1;
                    timeout_armed |= matches!(message, HubMessage::Ping);
                    if !deferring {
                        connection.defer_writer_wakes();
                        deferring = true;
                    }
                    match dispatcher.handle(message) {
                        Handled::Done(Flow::Continue) => None,
                        Handled::Done(Flow::ClientClosed) => {
                            write_deferred(&mut deferring, writes);
                            connection.end(Close::new(), None);
                            return;
                        }
                        Handled::Wait(wait) => {
                            // It waits (for an invocation slot, an upload's reader): what is
                            // queued goes now, and the writing goes on meanwhile.
                            write_deferred(&mut deferring, writes);
                            Some(wait)
                        }
                    }
                }
                Next::End => {
                    write_deferred(&mut deferring, writes);
                    return;
                }
            };
            if let Some(wait) = wait {
                alongside(writes, wait).await;
            }
        }
        write_deferred(&mut deferring, writes);
        if received > 0 {
            metrics.received(received, 0);
        }
        // Time spent waiting for our own invocation slots is not client silence.
        if std::mem::take(&mut heard) {
            last_heard = Instant::now();
        }
        let watch_silence = timeout_armed && connection.transport != TransportType::LongPolling;
        tokio::select! {
            biased;
            () = poll_fn(|_| if ended() { Poll::Ready(()) } else { Poll::Pending }) => return,
            () = poll_fn(|cx| poll_watched(
                shutdown.as_mut(), &mut shutdown_watched, endpoint.shutdown.is_stopped(), cx,
            )) => return,
            () = silence_timer.as_mut(), if watch_silence => {
                let deadline = last_heard + client_timeout;
                if deadline > Instant::now() {
                    silence_timer.as_mut().reset(deadline);
                    continue;
                }
                tracing::debug!(?client_timeout, "closing a connection whose client went silent");
                connection.end_timed_out(Close::with_error(), format!("The client sent nothing for {client_timeout:?}."));
                return;
            }
            chunk = read_when_woken(source, connection, &read_waker) => match chunk {
                Some(Ok(bytes)) => {
                    metrics.received(0, bytes.len() as u64);
                    decoder.push(bytes);
                    heard = true;
                }
                Some(Err(error)) => {
                    if socket_lost() {
                        tracing::debug!(%error, "the socket failed");
                        return;
                    }
                    connection.end(Close::with_error(), Some(format!("The transport failed: {error}")));
                    return;
                }
                None => {
                    if source.timed_out() {
                        connection.end_timed_out(
                            Close::new(),
                            "The client stopped polling.".to_owned(),
                        );
                    } else if !socket_lost() {
                        connection.end(Close::new(), None);
                    }
                    return;
                }
            },
            // After the read: a read that is ready is dispatched (and its replies written) first.
            never = poll_fn(|cx| writes.poll_write(cx)) => match never {},
        }
    }
}
