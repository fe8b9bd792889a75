//! A connection's outbound queue: whole encoded frames, in order, at most `capacity` of them,
//! taken by whoever holds the connection's write side ([`Outlet`](super::Outlet)).
//!
//! A deque under a lock rather than a channel: the write side has its own wake-up (the
//! connection's writer signal), an idle connection's queue allocates nothing, and a frame costs
//! one short lock on each side. The oldest frame sits next to the lock (in the same cache line
//! when the queue leads its connection, see [`Connection`](super::Connection)): a broadcast to
//! many connections touches, for each, the line it locks and no buffer of its own (the deque
//! behind it is allocated only when a second frame waits).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The queue holds `capacity` frames; the frame is handed back.
    Full(Bytes),
    /// The queue was closed: nothing more is written.
    Closed,
}

/// The outbound queue of one connection. `repr(C)`: the lock and the oldest frame come first.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct OutboundQueue {
    state: Mutex<QueueState>,
    capacity: u32,
    /// Set while someone waits in [`room`](Self::room).
    room_wanted: AtomicBool,
    /// Signalled when frames are taken while someone waits for room.
    room: Notify,
}

/// The frames: the oldest in `first`, the others (boxed, kept once made) in `rest`. `first` is
/// empty only when `rest` is.
#[derive(Debug, Default)]
#[repr(C)]
struct QueueState {
    first: Option<Bytes>,
    closed: bool,
    /// Boxed: 8 bytes here rather than the deque's 32, so that the lock, `first` and `closed`
    /// fit in 48 bytes.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Bytes>>>,
}

impl QueueState {
    fn len(&self) -> usize {
        match &self.first {
            None => 0,
            Some(_) => 1 + self.rest.as_ref().map_or(0, |rest| rest.len()),
        }
    }
}

impl OutboundQueue {
    /// An empty queue for at most `capacity` frames.
    pub(crate) fn new(capacity: usize) -> Self {
        OutboundQueue {
            state: Mutex::default(),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX).max(1),
            room_wanted: AtomicBool::new(false),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `frame` if there is room; returns the queue's length after it.
    pub(crate) fn try_push(&self, frame: Bytes) -> Result<usize, PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        let len = state.len();
        if len >= self.capacity() {
            return Err(PushError::Full(frame));
        }
        if state.first.is_none() {
            state.first = Some(frame);
        } else {
            state.rest.get_or_insert_with(Box::default).push_back(frame);
        }
        Ok(len + 1)
    }

    /// Takes the oldest frame.
    pub(crate) fn pop(&self) -> Option<Bytes> {
        let frame = {
            let mut state = self.lock();
            let frame = state.first.take();
            if frame.is_some() {
                state.first = state.rest.as_mut().and_then(|rest| rest.pop_front());
            }
            frame
        };
        // After the pop's unlock: a waiter that looked before it registered first (the lock
        // orders its look and this pop), so it sees the flag set.
        if frame.is_some() && self.room_wanted.load(Ordering::SeqCst) {
            self.room.notify_waiters();
        }
        frame
    }

    /// Whether no frame waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().first.is_none()
    }

    /// How many frames wait.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The most frames the queue holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Closes the queue: what waits is dropped, and pushes fail from now on.
    pub(crate) fn close(&self) {
        let dropped = {
            let mut state = self.lock();
            state.closed = true;
            (state.first.take(), state.rest.take())
        };
        drop(dropped);
        self.room.notify_waiters();
    }

    /// Waits until the queue has room (true) or is closed (false). One waiter at a time (the
    /// connection's drainer).
    pub(crate) async fn room(&self) -> bool {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.room_wanted.store(true, Ordering::SeqCst);
            {
                let state = self.lock();
                if state.closed || state.len() < self.capacity() {
                    self.room_wanted.store(false, Ordering::SeqCst);
                    return !state.closed;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_leave_in_order_and_a_full_queue_hands_the_frame_back() {
        let queue = OutboundQueue::new(2);
        assert!(matches!(queue.try_push(Bytes::from_static(b"a")), Ok(1)));
        assert!(matches!(queue.try_push(Bytes::from_static(b"b")), Ok(2)));
        match queue.try_push(Bytes::from_static(b"c")) {
            Err(PushError::Full(frame)) => assert_eq!(&frame[..], b"c"),
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(queue.pop().as_deref(), Some(&b"a"[..]));
        assert_eq!(queue.pop().as_deref(), Some(&b"b"[..]));
        assert!(queue.pop().is_none());
        queue.close();
        assert!(matches!(
            queue.try_push(Bytes::from_static(b"d")),
            Err(PushError::Closed)
        ));
    }

    #[test]
    fn frames_keep_their_order_through_the_first_slot_and_the_deque_behind_it() {
        let queue = OutboundQueue::new(3);
        let mut expected = std::collections::VecDeque::new();
        let mut next = 0u32;
        // Pushes and pops interleaved so that the oldest frame moves from the deque into the
        // first slot many times, with the queue at every length from empty to full.
        for step in 0..200u32 {
            if step % 3 != 2 || expected.is_empty() {
                let frame = Bytes::from(next.to_string());
                match queue.try_push(frame.clone()) {
                    Ok(len) => {
                        expected.push_back(frame);
                        assert_eq!(len, expected.len());
                        next += 1;
                    }
                    Err(PushError::Full(back)) => {
                        assert_eq!(back, frame);
                        assert_eq!(expected.len(), 3);
                        assert_eq!(queue.pop(), expected.pop_front());
                    }
                    Err(PushError::Closed) => panic!("the queue is not closed"),
                }
            } else {
                assert_eq!(queue.pop(), expected.pop_front());
            }
            assert_eq!(queue.len(), expected.len());
            assert_eq!(queue.is_empty(), expected.is_empty());
        }
        while let Some(frame) = expected.pop_front() {
            assert_eq!(queue.pop(), Some(frame));
        }
        assert!(queue.pop().is_none() && queue.is_empty());
    }

    #[tokio::test]
    async fn a_waiter_for_room_wakes_when_a_frame_is_taken_or_the_queue_closes() {
        let queue = std::sync::Arc::new(OutboundQueue::new(1));
        assert!(queue.try_push(Bytes::from_static(b"a")).is_ok());
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.room().await }
        });
        tokio::task::yield_now().await;
        assert!(queue.pop().is_some());
        assert!(matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await,
            Ok(Ok(true))
        ));
        assert!(queue.try_push(Bytes::from_static(b"b")).is_ok());
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.room().await }
        });
        tokio::task::yield_now().await;
        queue.close();
        assert!(matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await,
            Ok(Ok(false))
        ));
    }
}
