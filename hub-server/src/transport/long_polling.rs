//! Long polling: the client polls with `GET {hub}?id=<token>` and sends with POST (see
//! [`super::http`]).
//!
//! The first poll returns at once and starts the connection. Later polls wait until the server has
//! something to send, then take everything pending (whole messages only) in one 200; after the poll
//! timeout they get an empty 200 and the client polls again. A newer poll supersedes a waiting
//! older one (which gets 204), and a poll on a connection that is over gets 204 once everything
//! pending was delivered. `DELETE` ends the connection (a waiting poll gets 204). Between polls the
//! connection is inactive; one that stays inactive for the disconnect timeout is disposed by the
//! endpoint's sweeper.
//!
//! Memory stays bounded: the sink appends frames to a buffer shared with the poll handler until it
//! holds [`BUFFER_LIMIT`] bytes, then waits for a poll to take them (the connection's writer gives
//! up after the hub's send timeout). Behind it, the connection's own bounded queue applies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hub_core::protocol::Protocol;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::http::{Gone, HttpSource, Inbound};
use super::{TransportError, TransportSink, TrySend};

/// How many bytes may wait for a poll before the sink waits (ASP.NET Core's default transport
/// buffer size). One frame may take it past the limit.
pub(crate) const BUFFER_LIMIT: usize = 64 * 1024;

/// What a poll is answered with.
#[derive(Debug)]
pub(crate) enum PollOutcome {
    /// 200 with whole messages.
    Data(Bytes),
    /// 200, empty: the poll timeout passed; the client polls again.
    TimedOut,
    /// 204: the connection is over and everything was delivered.
    Ended,
    /// 204: a newer poll took over.
    Superseded,
    /// 204: the connection was terminated (DELETE, or disposed).
    Terminated,
}

/// The state of one long-polling connection, shared by its sink, its source and the HTTP
/// handlers.
pub(crate) struct LongPolling {
    state: Mutex<State>,
    /// Something for polls: data, the end, a newer poll, termination.
    data: Notify,
    /// Room in the buffer (or termination), for the sink.
    space: Notify,
    inbound: Inbound,
    /// Fires when the client is gone (DELETE or disposal): the source ends.
    gone: Arc<Gone>,
    /// Set (before `gone` fires) when the client stopped polling.
    expired: Arc<AtomicBool>,
}

struct State {
    pending: Vec<Bytes>,
    pending_len: usize,
    /// The sink was closed: nothing more will be added.
    ended: bool,
    /// A poll was told (204) that the connection is over.
    end_delivered: bool,
    /// The number of the newest poll.
    current_poll: u64,
    /// Whether the newest poll is waiting.
    polling: bool,
    /// When the last poll ended (or the connection started).
    last_seen: Instant,
}

impl LongPolling {
    /// A new long-polling connection with its source and sink.
    pub(crate) fn new() -> (Arc<LongPolling>, HttpSource, LongPollingSink) {
        let (inbound, receiver) = Inbound::new();
        let gone = Arc::new(Gone::default());
        let expired = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(LongPolling {
            state: Mutex::new(State {
                pending: Vec::new(),
                pending_len: 0,
                ended: false,
                end_delivered: false,
                current_poll: 0,
                polling: false,
                last_seen: Instant::now(),
            }),
            data: Notify::new(),
            space: Notify::new(),
            inbound,
            gone: gone.clone(),
            expired: expired.clone(),
        });
        let source = HttpSource::new(receiver, gone, Some(expired));
        let sink = LongPollingSink {
            shared: shared.clone(),
        };
        (shared, source, sink)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where this connection's POSTs go.
    pub(crate) fn inbound(&self) -> &Inbound {
        &self.inbound
    }

    /// Serves one poll (not the first): waits up to `timeout` for something to send.
    pub(crate) async fn poll(&self, timeout: Duration) -> PollOutcome {
        let id = {
            let mut state = self.lock();
            state.current_poll += 1;
            state.polling = true;
            state.current_poll
        };
        // An older poll still waiting sees it was superseded.
        self.data.notify_waiters();
        let _guard = PollGuard { shared: self, id };
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.data.notified();
            {
                let mut state = self.lock();
                if self.gone.is_gone() {
                    return PollOutcome::Terminated;
                }
                if state.current_poll != id {
                    return PollOutcome::Superseded;
                }
                if state.pending_len > 0 {
                    let data = take_pending(&mut state);
                    drop(state);
                    self.space.notify_waiters();
                    return PollOutcome::Data(data);
                }
                if state.ended {
                    state.end_delivered = true;
                    return PollOutcome::Ended;
                }
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => return PollOutcome::TimedOut,
            }
        }
    }

    /// Ends a connection whose client stopped polling (its end counts as a timeout).
    pub(crate) fn expire(&self) {
        self.expired.store(true, Ordering::Release);
        self.terminate();
    }

    /// Ends the connection from the client's side (DELETE, or no poll for the disconnect
    /// timeout): the source ends, a waiting poll gets 204, the sink drops what it is given.
    pub(crate) fn terminate(&self) {
        self.gone.set();
        self.data.notify_waiters();
        self.space.notify_waiters();
    }

    /// How long no poll has been waiting; `None` while one is.
    pub(crate) fn inactive_for(&self) -> Option<Duration> {
        let state = self.lock();
        (!state.polling).then(|| state.last_seen.elapsed())
    }

    /// Whether the connection is over but the client has not been told yet: its token must still
    /// answer the next poll (with what is pending, then 204).
    pub(crate) fn awaits_final_poll(&self) -> bool {
        let state = self.lock();
        state.ended && !state.end_delivered && !self.gone.is_gone()
    }
}

/// Joins everything pending into one body.
fn take_pending(state: &mut State) -> Bytes {
    state.pending_len = 0;
    if state.pending.len() == 1 {
        if let Some(only) = state.pending.pop() {
            return only;
        }
    }
    let mut body = BytesMut::with_capacity(state.pending.iter().map(Bytes::len).sum());
    for frame in state.pending.drain(..) {
        body.extend_from_slice(&frame);
    }
    body.freeze()
}

/// Marks the end of a poll (however it ends, also when hyper drops it because the client went
/// away): the connection is inactive from now on, unless a newer poll is waiting.
struct PollGuard<'a> {
    shared: &'a LongPolling,
    id: u64,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.current_poll == self.id {
            state.polling = false;
            state.last_seen = Instant::now();
        }
    }
}

/// The sending half: frames wait in the shared buffer for the next poll.
pub(crate) struct LongPollingSink {
    shared: Arc<LongPolling>,
}

impl TransportSink for LongPollingSink {
    fn set_protocol(&mut self, _protocol: Protocol) {}

    async fn send(&mut self, frame: Bytes) -> Result<(), TransportError> {
        let shared = &self.shared;
        loop {
            let room = shared.space.notified();
            {
                let mut state = shared.lock();
                if shared.gone.is_gone() {
                    return Err(TransportError("the long-polling client is gone".to_owned()));
                }
                if state.pending_len < BUFFER_LIMIT {
                    state.pending_len += frame.len();
                    state.pending.push(frame);
                    drop(state);
                    shared.data.notify_waiters();
                    return Ok(());
                }
            }
            room.await;
        }
    }

    fn try_send(&mut self, frame: Bytes) -> TrySend {
        let shared = &self.shared;
        let mut state = shared.lock();
        if shared.gone.is_gone() {
            return TrySend::Failed(TransportError("the long-polling client is gone".to_owned()));
        }
        if state.pending_len >= BUFFER_LIMIT {
            return TrySend::Busy(frame);
        }
        state.pending_len += frame.len();
        state.pending.push(frame);
        drop(state);
        shared.data.notify_waiters();
        TrySend::Sent
    }

    async fn close(&mut self, _internal_error: bool) {
        self.shared.lock().ended = true;
        self.shared.data.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poll_takes_everything_pending_in_order() {
        let (shared, _source, mut sink) = LongPolling::new();
        sink.send(Bytes::from_static(b"a")).await.ok();
        sink.send(Bytes::from_static(b"bc")).await.ok();
        match shared.poll(Duration::from_secs(1)).await {
            PollOutcome::Data(data) => assert_eq!(&data[..], b"abc"),
            other => panic!("{other:?}"),
        }
        assert!(shared.inactive_for().is_some());
    }

    #[tokio::test]
    async fn pending_data_goes_before_the_end() {
        let (shared, _source, mut sink) = LongPolling::new();
        sink.send(Bytes::from_static(b"close")).await.ok();
        sink.close(false).await;
        assert!(shared.awaits_final_poll());
        assert!(matches!(
            shared.poll(Duration::from_secs(1)).await,
            PollOutcome::Data(_)
        ));
        assert!(matches!(
            shared.poll(Duration::from_secs(1)).await,
            PollOutcome::Ended
        ));
        assert!(!shared.awaits_final_poll());
    }

    #[tokio::test]
    async fn a_full_buffer_makes_the_sink_wait_for_a_poll() {
        let (shared, _source, mut sink) = LongPolling::new();
        sink.send(Bytes::from(vec![0u8; BUFFER_LIMIT])).await.ok();
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            sink.send(Bytes::from_static(b"x")),
        )
        .await;
        assert!(blocked.is_err(), "the sink did not wait");
        let poll = shared.clone();
        let taker = tokio::spawn(async move { poll.poll(Duration::from_secs(1)).await });
        assert!(
            tokio::time::timeout(Duration::from_secs(1), sink.send(Bytes::from_static(b"x")))
                .await
                .is_ok()
        );
        assert!(matches!(taker.await, Ok(PollOutcome::Data(_))));
    }

    #[tokio::test]
    async fn a_newer_poll_supersedes_a_waiting_one() {
        let (shared, _source, _sink) = LongPolling::new();
        let older = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.poll(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let newer = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.poll(Duration::from_millis(100)).await })
        };
        assert!(matches!(older.await, Ok(PollOutcome::Superseded)));
        assert!(matches!(newer.await, Ok(PollOutcome::TimedOut)));
    }

    #[tokio::test]
    async fn terminating_answers_a_waiting_poll_and_fails_the_sink() {
        let (shared, _source, mut sink) = LongPolling::new();
        let poll = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.poll(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(shared.inactive_for().is_none());
        shared.terminate();
        assert!(matches!(poll.await, Ok(PollOutcome::Terminated)));
        assert!(sink.send(Bytes::from_static(b"x")).await.is_err());
    }
}
