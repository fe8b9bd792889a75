//! The write side as the connection's own task drives it: no writer task of its own.
//!
//! The connection's task writes its replies after dispatching (as the reader always did), and
//! between reads whatever else comes up: frames other tasks queued (broadcasts, invocations that
//! finished later), keep-alive Pings and, at the end, the Close message. A write that has to wait
//! for the client (a full socket, a flush under way) becomes a boxed future polled alongside the
//! reads, so the reader still never waits for the client; an idle connection is then one task
//! and no write future at all.
//!
//! A stateful-reconnect connection keeps its writer task per socket ([`write_loop`]): it also
//! sends `Ack`s, replays, and waits for room in the replay buffer.
//!
//! [`write_loop`]: super::write_loop

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hub_core::protocol::{Close, HubMessage, HubProtocol};
use tokio::time::{Instant, Sleep};

use super::outlet::Outlet;
use super::writer::{WriterConfig, WriterExit};
use super::{Connection, Ending};
use crate::transport::TransportSink;

/// What a connection's read loop sees of its write side.
pub(crate) trait WriteSide: Send {
    /// After dispatching: writes what is queued as far as the transport takes it without
    /// waiting, and leaves the rest to whoever waits for the client.
    fn write_from_reader(&mut self);

    /// Does the writing that comes up while the connection's task waits for something else
    /// (its next read, an invocation slot, a hook). Never ready.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Infallible>;
}

/// Runs `work` while doing the connection's writing; returns what `work` returns.
pub(crate) async fn alongside<F: Future>(writes: &mut dyn WriteSide, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        match writes.poll_write(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(never) => match never {},
        }
    })
    .await
}

/// A write that waits for the client, polled by the connection's task.
type Waiting = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The write side of a connection without stateful reconnect, driven by the connection's task.
pub(crate) struct Writing<S> {
    outlet: Arc<Outlet<S>>,
    config: WriterConfig,
    /// The write under way that waits for the client (at most one: frames go in order).
    waiting: Option<Waiting>,
    /// Keep-alive Pings (none for long polling).
    keep_alive: Option<KeepAlive>,
}

/// The keep-alive timer: it fires when a Ping may be due, and is re-armed only when it fires
/// early. It wakes the connection's task when it fires, so it is polled (which costs a waker
/// clone) only to register it and once it has fired — seen with one atomic load
/// ([`Sleep::is_elapsed`]), not a clock read — not at every wake-up of the task.
struct KeepAlive {
    interval: Duration,
    timer: Pin<Box<Sleep>>,
    /// The timer was polled since it was last armed.
    registered: bool,
}

impl<S: TransportSink> Writing<S> {
    /// The write side of `outlet`. What was queued before goes first.
    pub(crate) fn new(outlet: Outlet<S>, config: WriterConfig) -> Self {
        let outlet = Arc::new(outlet);
        outlet.connection().wake_writer();
        Writing {
            outlet,
            config,
            waiting: None,
            keep_alive: config.keep_alive.map(|interval| KeepAlive {
                interval,
                timer: Box::pin(tokio::time::sleep(interval)),
                registered: false,
            }),
        }
    }

    /// The connection written to.
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        self.outlet.connection()
    }

    /// Ending: goes on writing until the connection ends (a shutdown ends it only after its grace
    /// period, whose replies still go out); then, after the write under way, flushes what is
    /// queued (unless the queue overflowed), sends the Close message and closes the transport,
    /// within one send timeout.
    pub(crate) async fn finish(mut self) -> WriterExit {
        if let Some(keep_alive) = self.keep_alive.as_mut() {
            // Perhaps in another task from here on: its waker is registered afresh.
            keep_alive.registered = false;
        }
        let connection = self.outlet.connection().clone();
        alongside(&mut self, connection.closing().cancelled()).await;
        let Writing {
            outlet, waiting, ..
        } = self;
        if let Some(waiting) = waiting {
            waiting.await;
        }
        let ending = connection.ending().unwrap_or(Ending {
            message: Close::new(),
            error: None,
            flush: true,
            timed_out: false,
        });
        let deadline = Instant::now() + self.config.send_timeout;
        let mut state = outlet.lock().await;
        outlet
            .close(&mut state, &ending.message, ending.flush, deadline)
            .await;
        WriterExit::Ended
    }

    /// Writes what waits, however long the client takes (up to the send timeout per write).
    fn wait_and_write(&self) -> Waiting {
        let outlet = self.outlet.clone();
        let timeout = self.config.send_timeout;
        Box::pin(async move {
            let mut state = outlet.lock().await;
            if let Err(error) = outlet.write_waiting(&mut state, timeout).await {
                // Ends the connection; its read loop sees it.
                outlet.failed(&mut state, &error);
            }
        })
    }

    /// Sends a keep-alive Ping after what waits.
    fn ping(&self) -> Waiting {
        let outlet = self.outlet.clone();
        let timeout = self.config.send_timeout;
        Box::pin(async move {
            let connection = outlet.connection();
            let Ok(ping) = connection
                .protocol
                .encode_to_bytes(&HubMessage::<(), ()>::Ping)
            else {
                return;
            };
            let mut state = outlet.lock().await;
            if let Err(error) = outlet.send_extra(&mut state, ping, timeout).await {
                outlet.failed(&mut state, &error);
            }
        })
    }

    /// Whether a keep-alive Ping is due (its timer fired); re-arms the timer.
    fn poll_ping_due(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(keep_alive) = self.keep_alive.as_mut() else {
            return false;
        };
        if keep_alive.registered && !keep_alive.timer.is_elapsed() {
            return false;
        }
        keep_alive.registered = true;
        if keep_alive.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        let now = Instant::now();
        // Nothing else holds the write side while no write waits.
        let due = self
            .outlet
            .last_write()
            .map(|last| last + keep_alive.interval)
            .filter(|due| *due > now);
        keep_alive
            .timer
            .as_mut()
            .reset(due.unwrap_or(now + keep_alive.interval));
        // Registered with its new deadline (not due yet).
        let _ = keep_alive.timer.as_mut().poll(cx);
        due.is_none()
    }
}

impl<S: TransportSink> WriteSide for Writing<S> {
    fn write_from_reader(&mut self) {
        // With a write under way, what is queued goes when it is done.
        if self.waiting.is_none() && self.outlet.write_now() {
            self.waiting = Some(self.wait_and_write());
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Infallible> {
        let mut look = false;
        loop {
            if let Some(waiting) = self.waiting.as_mut() {
                if waiting.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.waiting = None;
                // Frames queued meanwhile did not start a write.
                look = true;
            }
            if self.outlet.connection().is_closing() {
                // The read loop returns; `finish` writes the rest.
                return Poll::Pending;
            }
            let wanted = self.outlet.connection().poll_writer_wanted(cx).is_ready();
            if std::mem::take(&mut look) || wanted {
                if self.outlet.write_now() {
                    self.waiting = Some(self.wait_and_write());
                }
                continue;
            }
            if self.poll_ping_due(cx) {
                self.waiting = Some(self.ping());
                continue;
            }
            return Poll::Pending;
        }
    }
}

impl<S: TransportSink> WriteSide for &Outlet<S> {
    fn write_from_reader(&mut self) {
        if self.write_now() {
            // The writer task takes over.
            self.connection().wake_writer();
        }
    }

    fn poll_write(&mut self, _: &mut Context<'_>) -> Poll<Infallible> {
        // The connection's writer task does the rest.
        Poll::Pending
    }
}
