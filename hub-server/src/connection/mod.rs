//! One hub connection: who it is, its bounded outbound queue, keep-alive, and how it closes.
//!
//! Everything that leaves a connection goes through its queue as whole, already encoded messages
//! (a broadcast hands every queue a cheap clone of the same bytes), and leaves it through the
//! connection's write side ([`Outlet`]), batching what is waiting into one transport frame. The
//! reader writes what its own dispatching queued as soon as it is done, as far as the transport
//! takes it without waiting; the connection's task writes what others queued when they wake it,
//! and sends a Ping when nothing was written for the keep-alive interval ([`Writing`]). A write
//! that has to wait for the client is polled alongside the reads; with stateful reconnect, a
//! writer task per socket does that part ([`write_loop`]).
//!
//! A sender never waits on another connection: a frame that finds the queue full waits in the
//! connection's overflow (as long again as the queue), in order, and a drainer task of the
//! connection moves it into the queue as the client reads. A client that makes no progress for
//! the send timeout, or falls behind by more than queue and overflow hold, is closed with an
//! error (the frames it missed are counted in the log) rather than buffering more. Only the
//! connection's own replies and stream items wait for room in its overflow: backpressure on the
//! client's own calls.

mod outlet;
mod queue;
pub(crate) mod reconnect;
mod writer;
mod writing;

pub(crate) use outlet::{Outlet, Resumable};
use queue::{OutboundQueue, PushError};
pub(crate) use writer::{write_loop, WriterConfig, WriterExit};
pub(crate) use writing::{alongside, WriteSide, Writing};

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{fence, AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use hub_core::negotiate::TransportType;
use hub_core::protocol::{Close, EncodeMessage, HubProtocol, Protocol};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::Identity;
use crate::observability::HubMetrics;
use crate::request::RequestInfo;

/// Why a message could not be queued for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closed or closing.
    #[error("the connection is closed")]
    Closed,
    /// The client made no progress for the send timeout, or fell further behind than its queue
    /// and overflow hold; it is being closed.
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
    /// It ended because the client went silent or did not come back in time.
    pub(crate) timed_out: bool,
}

/// A live connection, shared by its tasks, the lifetime manager and every context that refers to
/// it.
///
/// `repr(C)`, in three parts: what a delivery touches — the flags and the writer's waker, then
/// the queue's lock and oldest frame — sits in two cache lines (the 64 bytes after `Arc`'s
/// counts and the first part, then the next 64), so that a broadcast to many connections misses
/// the cache twice per connection rather than three times; the rest follows. See the test
/// `a_delivery_touches_two_cache_lines`.
#[repr(C)]
pub(crate) struct Connection {
    // ---- Cold: 48 bytes, with `Arc`'s two counts in the first cache line.
    pub(crate) id: Arc<str>,
    pub(crate) user_id: Option<Arc<str>>,
    /// How long a send may wait for room in the queue before the client counts as too slow.
    pub(crate) send_timeout: Duration,
    // ---- Hot: what a delivery touches (with the queue's first 64 bytes, below).
    /// The writer, while it waits to be wanted.
    writer_waker: AtomicWaker,
    /// The hub's instruments.
    pub(crate) metrics: Arc<HubMetrics>,
    /// The most frames this connection's queue has held (reported when it grows).
    high_water: AtomicUsize,
    /// Set with `closing`: one atomic load on every send instead of the token's lock.
    closed: AtomicBool,
    /// Set while frames wait in `overflow`: new frames queue behind them, so order is kept.
    stalled: AtomicBool,
    /// Set when the writer (the connection's task, or its writer task) has something to do
    /// (frames queued) since it last looked.
    writer_wanted: AtomicBool,
    /// Set while the reader dispatches what it read: frames queued meanwhile do not wake the
    /// writer, as the reader writes them (or wakes the writer) when it is done.
    deferring: AtomicBool,
    /// Why the reader was woken since it last looked: [`TRANSPORT_WOKE`], [`POKED`].
    reader_wakes: AtomicU8,
    pub(crate) transport: TransportType,
    pub(crate) protocol: Protocol,
    /// `repr(C)` too: its lock and oldest frame first, its `Notify` last.
    outbound: OutboundQueue,
    // ---- Cold.
    /// The reader (the connection's task), while it waits for the transport.
    reader_waker: AtomicWaker,
    /// Who the connection belongs to; an authentication refresh may renew it.
    pub(crate) identity: Arc<Identity>,
    closing: CancellationToken,
    /// Frames that found the queue full, oldest first; at most the queue's capacity.
    overflow: Mutex<VecDeque<Bytes>>,
    /// Signalled each time the drainer moves a frame from the overflow into the queue.
    room: Notify,
    /// Set once, by the first ending (boxed: a connection lives most of its life without one).
    ending: OnceLock<Box<Ending>>,
    state: Mutex<http::Extensions>,
    pub(crate) request: RequestInfo,
}

/// The connection as a waker is its reader's, given to the transport: a wake-up notes that the
/// transport has something, so that the reader's task, woken for something else (most often,
/// frames others queued), does not poll the transport for nothing — on a WebSocket, that poll
/// takes the stream's lock and registers with the I/O driver again. It lives in the connection
/// rather than in an allocation of its own.
impl Wake for Connection {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reader_wakes.fetch_or(TRANSPORT_WOKE, Ordering::AcqRel);
        self.reader_waker.wake();
    }
}

/// The transport woke the reader.
const TRANSPORT_WOKE: u8 = 1;
/// The connection woke the reader: it ends, or its socket was lost.
const POKED: u8 = 2;

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

/// The right to take the connection's queued frames, held by its write side. Dropping it closes
/// the queue (nothing more will be written).
pub(crate) struct Outbox {
    connection: Arc<Connection>,
}

impl Outbox {
    /// Takes the oldest queued frame.
    pub(crate) fn pop(&self) -> Option<Bytes> {
        self.connection.outbound.pop()
    }

    /// Whether no frame waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.connection.outbound.is_empty()
    }

    /// Closes the queue: what waits is dropped, and sends fail from now on.
    pub(crate) fn close(&self) {
        self.connection.outbound.close();
    }

    /// Waits for the next frame (`None` once the queue is closed and empty).
    #[cfg(test)]
    pub(crate) async fn recv(&self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pop() {
                return Some(frame);
            }
            if self.connection.is_closing() {
                return None;
            }
            self.connection.writer_wanted().await;
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.close();
    }
}

pub(crate) struct ConnectionParts {
    pub(crate) id: Arc<str>,
    pub(crate) send_timeout: Duration,
    pub(crate) user_id: Option<Arc<str>>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) request: RequestInfo,
    pub(crate) transport: TransportType,
    pub(crate) protocol: Protocol,
    pub(crate) queue_capacity: usize,
    pub(crate) metrics: Arc<HubMetrics>,
}

impl Connection {
    pub(crate) fn new(parts: ConnectionParts) -> (Arc<Connection>, Outbox) {
        let connection = Connection {
            id: parts.id,
            send_timeout: parts.send_timeout,
            user_id: parts.user_id,
            identity: parts.identity,
            request: parts.request,
            transport: parts.transport,
            protocol: parts.protocol,
            outbound: OutboundQueue::new(parts.queue_capacity),
            stalled: AtomicBool::new(false),
            overflow: Mutex::new(VecDeque::new()),
            room: Notify::new(),
            closing: CancellationToken::new(),
            closed: AtomicBool::new(false),
            ending: OnceLock::new(),
            state: Mutex::new(http::Extensions::new()),
            metrics: parts.metrics,
            high_water: AtomicUsize::new(0),
            writer_wanted: AtomicBool::new(false),
            writer_waker: AtomicWaker::new(),
            deferring: AtomicBool::new(false),
            reader_wakes: AtomicU8::new(0),
            reader_waker: AtomicWaker::new(),
        };
        let connection = Arc::new(connection);
        let outbox = Outbox {
            connection: connection.clone(),
        };
        (connection, outbox)
    }

    /// Queues one encoded frame (whole messages) without waiting: in the queue if it has room
    /// and nothing waits before it, else in the overflow. A client whose overflow is full is
    /// closed ([`SendError::QueueFull`]). What fan-out uses: one slow client never delays a
    /// sender or the other recipients.
    pub(crate) fn send_now(self: &Arc<Self>, frame: Bytes) -> Result<(), SendError> {
        match self.offer(frame) {
            Offer::Queued { .. } => Ok(()),
            Offer::Closed => Err(SendError::Closed),
            Offer::Full(_) => {
                let missed = self.lock_overflow().len() + 1;
                self.overflowed(missed);
                Err(SendError::QueueFull)
            }
        }
    }

    /// Queues one encoded frame if that needs no wait (or drops it if the connection is
    /// closed); hands it back when [`send`](Self::send) would wait for room.
    pub(crate) fn try_send(self: &Arc<Self>, frame: Bytes) -> Option<Bytes> {
        match self.offer(frame) {
            Offer::Queued { .. } | Offer::Closed => None,
            Offer::Full(frame) => Some(frame),
        }
    }

    /// Queues one encoded frame, waiting up to the send timeout for room (in the overflow, when
    /// the queue is full). For the connection's own replies and stream items: backpressure on
    /// the client's own calls. A client that stays that far behind is closed with an error.
    pub(crate) async fn send(self: &Arc<Self>, frame: Bytes) -> Result<(), SendError> {
        let mut frame = match self.offer(frame) {
            Offer::Queued { .. } => return Ok(()),
            Offer::Closed => return Err(SendError::Closed),
            Offer::Full(frame) => frame,
        };
        let deadline = Instant::now() + self.send_timeout;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before trying again: a frame moved meanwhile wakes this waiter.
            room.as_mut().enable();
            frame = match self.offer(frame) {
                Offer::Queued { .. } => return Ok(()),
                Offer::Closed => return Err(SendError::Closed),
                Offer::Full(frame) => frame,
            };
            tokio::select! {
                () = room => {}
                () = self.closing.cancelled() => return Err(SendError::Closed),
                () = tokio::time::sleep_until(deadline) => {
                    let missed = self.lock_overflow().len() + 1;
                    self.overflowed(missed);
                    return Err(SendError::QueueFull);
                }
            }
        }
    }

    /// Puts a frame in the queue, or behind the frames waiting in the overflow (starting the
    /// drainer if none runs); hands it back when the overflow is full.
    fn offer(self: &Arc<Self>, frame: Bytes) -> Offer {
        if self.is_closing() {
            return Offer::Closed;
        }
        let offered = self.offer_frame(frame);
        if let Offer::Queued { bytes, depth } = &offered {
            // Queued, then the reader's flag read (Dekker with `resume_writer_wakes`): either
            // this sees the reader done and wakes the writer, or the reader sees the frame.
            fence(Ordering::SeqCst);
            if !self.deferring.load(Ordering::Relaxed) {
                self.wake_writer();
            }
            self.metrics.sent(*bytes);
            if *depth > self.high_water.load(Ordering::Relaxed) {
                self.high_water.fetch_max(*depth, Ordering::Relaxed);
                self.metrics.queue_depth(*depth);
            }
        }
        offered
    }

    fn offer_frame(self: &Arc<Self>, frame: Bytes) -> Offer {
        let length = frame.len();
        // Into the queue, unless frames wait in the overflow (then behind them); the frame back
        // if the queue is full.
        let push = |frame: Bytes| {
            if self.stalled.load(Ordering::Acquire) {
                return Err(frame);
            }
            match self.outbound.try_push(frame) {
                Ok(depth) => Ok(Offer::Queued {
                    bytes: length,
                    depth,
                }),
                Err(PushError::Closed) => Ok(Offer::Closed),
                Err(PushError::Full(frame)) => Err(frame),
            }
        };
        let frame = match push(frame) {
            Ok(offered) => return offered,
            Err(frame) => frame,
        };
        let mut overflow = self.lock_overflow();
        // The drainer may have emptied the overflow since the look above: the queue may have room.
        let frame = match push(frame) {
            Ok(offered) => return offered,
            Err(frame) => frame,
        };
        if overflow.len() >= self.outbound.capacity() {
            return Offer::Full(frame);
        }
        overflow.push_back(frame);
        let waiting = overflow.len() + self.outbound.capacity();
        if waiting > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(waiting, Ordering::Relaxed);
            self.metrics.queue_depth(waiting);
        }
        if !self.stalled.swap(true, Ordering::AcqRel) {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                // No runtime to drain it (not reached from hub code): the client cannot be
                // served in order.
                let missed = overflow.len();
                drop(overflow);
                self.overflowed(missed);
                return Offer::Closed;
            };
            runtime.spawn(drain(self.clone()));
        }
        // Its depth was reported above (queue and overflow).
        Offer::Queued {
            bytes: length,
            depth: 0,
        }
    }

    fn lock_overflow(&self) -> MutexGuard<'_, VecDeque<Bytes>> {
        self.overflow.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the writer it has something to do.
    pub(crate) fn wake_writer(&self) {
        self.writer_wanted.store(true, Ordering::Release);
        self.writer_waker.wake();
    }

    /// Ready when the writer is wanted (at once if it was since it last looked); otherwise
    /// registers `cx` to be woken when it is.
    pub(crate) fn poll_writer_wanted(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.writer_wanted.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.writer_waker.register(cx.waker());
        if self.writer_wanted.swap(false, Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits until the writer is wanted (at once if it was since it last looked).
    pub(crate) fn writer_wanted(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poll_writer_wanted(cx))
    }

    /// Whether the transport woke the reader since it last looked. The reader's task is
    /// registered (to be woken when the transport wakes the connection, or the connection ends)
    /// unless it still is: `registered` says it was, and no wake-up took it since.
    pub(crate) fn take_read_wake(&self, cx: &mut Context<'_>, registered: bool) -> bool {
        let wakes = self.reader_wakes.swap(0, Ordering::AcqRel);
        if wakes != 0 || !registered {
            self.reader_waker.register(cx.waker());
        }
        wakes & TRANSPORT_WOKE != 0
    }

    /// Wakes the reader to look at the connection (it ends; its socket was lost).
    pub(crate) fn poke_reader(&self) {
        self.reader_wakes.fetch_or(POKED, Ordering::AcqRel);
        self.reader_waker.wake();
    }

    /// From now until [`resume_writer_wakes`](Self::resume_writer_wakes), frames queued do not
    /// wake the writer: the reader is dispatching and writes them itself afterwards.
    pub(crate) fn defer_writer_wakes(&self) {
        self.deferring.store(true, Ordering::Relaxed);
    }

    /// Ends [`defer_writer_wakes`](Self::defer_writer_wakes). Every frame queued meanwhile is
    /// visible to the caller's next look at the queue, which must follow (the caller then writes
    /// it or wakes the writer).
    pub(crate) fn resume_writer_wakes(&self) {
        self.deferring.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
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

    /// Closes a connection whose client does not keep up; `missed` frames were not delivered.
    fn overflowed(&self, missed: usize) {
        let missed = missed + self.outbound.len();
        tracing::warn!(
            connection_id = %self.id,
            capacity = self.outbound.capacity(),
            timeout = ?self.send_timeout,
            missed,
            "closing a connection whose client does not read fast enough: its outbound queue stayed full"
        );
        if !self.is_closing() {
            self.metrics.slow_consumer_closed();
        }
        self.end_with(Ending {
            message: Close::with_error(),
            error: Some("The client did not keep up: its outbound queue stayed full.".into()),
            flush: false,
            timed_out: false,
        });
    }

    /// Ends the connection: the client gets `message`, then the transport closes. The first call
    /// decides; later ones are ignored.
    pub(crate) fn end(&self, message: Close, error: Option<String>) {
        self.end_with(Ending {
            message,
            error,
            flush: true,
            timed_out: false,
        });
    }

    /// Ends a connection whose client went silent or did not come back in time (as
    /// [`end`](Self::end); its end counts as a timeout).
    pub(crate) fn end_timed_out(&self, message: Close, error: String) {
        self.end_with(Ending {
            message,
            error: Some(error),
            flush: true,
            timed_out: true,
        });
    }

    fn end_with(&self, how: Ending) {
        if self.ending.set(Box::new(how)).is_err() {
            return;
        }
        self.closed.store(true, Ordering::Release);
        self.closing.cancel();
        // The reader looks at `closed` rather than wait on the token.
        self.poke_reader();
    }

    /// Whether the connection is ending (cheap: an atomic load).
    pub(crate) fn is_closing(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How the connection ended (set once it is ending).
    pub(crate) fn ending(&self) -> Option<Ending> {
        self.ending.get().map(|ending| (**ending).clone())
    }

    /// Fires when the connection starts ending.
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut http::Extensions) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What became of a frame offered to a connection.
enum Offer {
    /// In the queue (`depth` frames deep) or the overflow (`depth` 0: reported there); so many
    /// bytes.
    Queued { bytes: usize, depth: usize },
    /// The connection is closed or closing.
    Closed,
    /// The overflow is full; the frame is handed back.
    Full(Bytes),
}

/// Moves a stalled connection's overflow into its queue as the client reads, oldest first; ends
/// when the overflow is empty (the connection is no longer stalled) or the connection ends. A
/// client that frees no room for the send timeout is closed.
async fn drain(connection: Arc<Connection>) {
    loop {
        tokio::select! {
            room = connection.outbound.room() => if !room {
                break;
            },
            () = connection.closing.cancelled() => break,
            () = tokio::time::sleep(connection.send_timeout) => {
                let missed = connection.lock_overflow().len();
                connection.overflowed(missed);
                break;
            }
        }
        let mut overflow = connection.lock_overflow();
        match overflow.pop_front() {
            // Only this drainer fills the queue while the connection is stalled (senders queue
            // behind it), bar one that looked just before: then the frame goes back, in front.
            Some(frame) => match connection.outbound.try_push(frame) {
                Ok(_) => {
                    drop(overflow);
                    connection.wake_writer();
                    connection.room.notify_waiters();
                }
                Err(PushError::Full(frame)) => overflow.push_front(frame),
                Err(PushError::Closed) => break,
            },
            None => {
                // Under the lock: a sender that sees `stalled` false finds the overflow empty.
                connection.stalled.store(false, Ordering::Release);
                return;
            }
        }
    }
    // Ended: what waits will never be written.
    connection.lock_overflow().clear();
    connection.room.notify_waiters();
}

#[cfg(test)]
mod layout_tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    /// A delivery touches the flags and the writer's waker, the hub's instruments and the queue's
    /// first 64 bytes (its lock, length and oldest frame): with `Arc`'s 16 bytes of counts in
    /// front, they must lie in the allocation's second and third cache lines, and the
    /// allocation must stay in the allocator's 512-byte class (whose blocks are 512-aligned).
    #[test]
    fn a_delivery_touches_two_cache_lines() {
        let counts = 2 * size_of::<usize>();
        let first = counts + offset_of!(Connection, writer_waker);
        let last = counts + offset_of!(Connection, outbound) + 64;
        assert_eq!(first, 64, "the hot fields start a cache line");
        assert!(
            last <= 192,
            "the hot fields end at {last}, past two cache lines"
        );
        for field in [
            offset_of!(Connection, metrics),
            offset_of!(Connection, high_water),
            offset_of!(Connection, closed),
            offset_of!(Connection, stalled),
            offset_of!(Connection, writer_wanted),
            offset_of!(Connection, deferring),
            offset_of!(Connection, reader_wakes),
        ] {
            assert!((first..last).contains(&(counts + field)));
        }
        assert!(size_of::<Connection>() + counts <= 512);
    }
}
