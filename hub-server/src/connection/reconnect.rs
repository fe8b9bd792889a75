//! Stateful reconnect (WebSockets only): a connection that outlives its socket.
//!
//! Both sides number the tracked messages they send (types 1–5) from 1, keep them until the peer
//! acknowledges them, and replay the unacknowledged ones on a new socket after a `Sequence`
//! message. [`MessageBuffer`] is that bookkeeping, with no I/O; [`Sequencer`] shares it between a
//! connection's reader and writer; [`Session`] hands a reconnecting client's new socket to the
//! connection waiting for it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hub_core::protocol::{HubMessage, MessageType};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a transport could not attach to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttachError {
    /// Unknown or expired token: 404.
    NotFound,
    /// The same transport is already attached: 409.
    Conflict,
    /// Another transport is attached: 400 `Cannot change transports mid-connection`.
    TransportChange,
}

/// The error (ASP.NET Core's and the JavaScript client's text) when a peer's `Sequence` names a
/// message that was never received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SequenceTooLarge;

impl SequenceTooLarge {
    /// The exact text.
    pub(crate) const TEXT: &'static str =
        "Sequence ID greater than amount of messages we've received.";
}

impl fmt::Display for SequenceTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::TEXT)
    }
}

/// What to do with a message the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Hand it to the dispatcher.
    Dispatch,
    /// Drop it: a duplicate, a message before the client's `Sequence`, or a `Sequence` (applied).
    Skip,
    /// An `Ack` freed room in the replay buffer.
    Acked,
}

/// Whether a message of this type is numbered, buffered and replayed (types 1–5).
pub(crate) fn is_tracked(kind: MessageType) -> bool {
    matches!(
        kind,
        MessageType::Invocation
            | MessageType::StreamItem
            | MessageType::Completion
            | MessageType::StreamInvocation
            | MessageType::CancelInvocation
    )
}

/// The sequence bookkeeping of one connection, both directions.
#[derive(Debug)]
pub(crate) struct MessageBuffer {
    /// Sends wait while this many bytes are unacknowledged.
    capacity: usize,
    /// The id of the last tracked message sent (0: none yet).
    sent: u64,
    /// Sent and not yet acknowledged, oldest first.
    unacked: VecDeque<(u64, Bytes)>,
    unacked_bytes: usize,
    /// The id the next tracked message received gets.
    next_receive: u64,
    /// The highest id received and processed.
    latest_received: u64,
    /// The id last acknowledged to the client.
    last_acked: u64,
    /// After a reconnect: everything is dropped until the client's `Sequence`.
    awaiting_sequence: bool,
}

impl MessageBuffer {
    /// An empty buffer that holds up to `capacity` unacknowledged bytes before sends wait.
    pub(crate) fn new(capacity: usize) -> Self {
        MessageBuffer {
            capacity: capacity.max(1),
            sent: 0,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            next_receive: 1,
            latest_received: 0,
            last_acked: 0,
            awaiting_sequence: false,
        }
    }

    /// Whether another message may be sent now (false: back-pressure until an `Ack`).
    pub(crate) fn has_room(&self) -> bool {
        self.unacked_bytes < self.capacity
    }

    /// Numbers and keeps one tracked message about to be sent; returns its id.
    pub(crate) fn record_sent(&mut self, message: Bytes) -> u64 {
        self.sent += 1;
        self.unacked_bytes += message.len();
        self.unacked.push_back((self.sent, message));
        self.sent
    }

    /// The peer processed everything up to `sequence_id`: frees those messages. Returns whether
    /// anything was freed.
    pub(crate) fn ack(&mut self, sequence_id: u64) -> bool {
        let mut freed = false;
        while let Some((id, message)) = self.unacked.front() {
            if *id > sequence_id {
                break;
            }
            self.unacked_bytes -= message.len();
            self.unacked.pop_front();
            freed = true;
        }
        freed
    }

    /// What to send on a new socket: the `Sequence` id (the oldest unacknowledged message, or the
    /// next id when all were acknowledged), then the messages to replay, in order.
    pub(crate) fn replay(&self) -> (u64, Vec<Bytes>) {
        let first = self.unacked.front().map_or(self.sent + 1, |(id, _)| *id);
        (
            first,
            self.unacked
                .iter()
                .map(|(_, bytes)| bytes.clone())
                .collect(),
        )
    }

    /// The socket was lost: after the next one opens, incoming messages are dropped until the
    /// client's `Sequence`.
    pub(crate) fn disconnected(&mut self) {
        self.awaiting_sequence = true;
    }

    /// Decides what happens to a message the client sent, applying `Ack` and `Sequence`.
    pub(crate) fn receive<A, V>(
        &mut self,
        message: &HubMessage<A, V>,
    ) -> Result<Incoming, SequenceTooLarge> {
        if self.awaiting_sequence {
            if !matches!(message, HubMessage::Sequence(_)) {
                return Ok(Incoming::Skip);
            }
            self.awaiting_sequence = false;
        }
        match message {
            HubMessage::Sequence(sequence) => {
                if sequence.sequence_id > self.next_receive {
                    return Err(SequenceTooLarge);
                }
                self.next_receive = sequence.sequence_id;
                Ok(Incoming::Skip)
            }
            HubMessage::Ack(ack) => Ok(if self.ack(ack.sequence_id) {
                Incoming::Acked
            } else {
                Incoming::Skip
            }),
            message if is_tracked(message.message_type()) => {
                let id = self.next_receive;
                self.next_receive += 1;
                if id <= self.latest_received {
                    return Ok(Incoming::Skip);
                }
                self.latest_received = id;
                Ok(Incoming::Dispatch)
            }
            _ => Ok(Incoming::Dispatch),
        }
    }

    /// The id to acknowledge, if something new arrived since the last `Ack`.
    pub(crate) fn take_ack(&mut self) -> Option<u64> {
        (self.latest_received > self.last_acked).then(|| {
            self.last_acked = self.latest_received;
            self.latest_received
        })
    }
}

/// A connection's [`MessageBuffer`], shared by its reader and writer.
#[derive(Debug)]
pub(crate) struct Sequencer {
    buffer: Mutex<MessageBuffer>,
    /// Signalled when an `Ack` frees room (one waiter: the writer).
    room: Notify,
}

impl Sequencer {
    /// A sequencer whose replay buffer holds `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        Sequencer {
            buffer: Mutex::new(MessageBuffer::new(capacity)),
            room: Notify::new(),
        }
    }

    /// Runs `f` on the buffer.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut MessageBuffer) -> R) -> R {
        f(&mut self.buffer.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies a message the client sent (see [`MessageBuffer::receive`]), waking the writer when
    /// an `Ack` freed room.
    pub(crate) fn receive<A, V>(
        &self,
        message: &HubMessage<A, V>,
    ) -> Result<Incoming, SequenceTooLarge> {
        let incoming = self.with(|buffer| buffer.receive(message))?;
        if incoming == Incoming::Acked {
            self.room.notify_one();
        }
        Ok(incoming)
    }

    /// Waits until an `Ack` frees room.
    pub(crate) async fn room_freed(&self) {
        self.room.notified().await;
    }
}

/// Where a resumable connection's socket stands.
enum Slot<R, S> {
    /// Before the handshake (or it asked for version < 2): not resumable.
    Connecting,
    /// A socket is in use.
    Attached,
    /// The socket was lost at `since`; a new one may attach within the disconnect timeout.
    Detached { since: Instant },
    /// A new socket is being upgraded for it.
    Claimed,
    /// A new socket waits for the connection to take it.
    Ready(R, S),
    /// The connection ended.
    Ended,
}

/// A WebSocket connection that negotiated stateful reconnect: how a reconnecting client's new
/// socket reaches it.
pub(crate) struct Session<R, S> {
    /// The numbered messages of both directions.
    pub(crate) sequencer: std::sync::Arc<Sequencer>,
    slot: Mutex<Slot<R, S>>,
    arrived: Notify,
}

impl<R, S> Session<R, S> {
    /// A session whose replay buffer holds `capacity` bytes; resumable once
    /// [`enable`](Self::enable)d.
    pub(crate) fn new(capacity: usize) -> Self {
        Session {
            sequencer: std::sync::Arc::new(Sequencer::new(capacity)),
            slot: Mutex::new(Slot::Connecting),
            arrived: Notify::new(),
        }
    }

    fn slot<T>(&self, f: impl FnOnce(&mut Slot<R, S>) -> T) -> T {
        f(&mut self.slot.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The handshake asked for version 2: the connection may now resume on a new socket.
    pub(crate) fn enable(&self) {
        self.slot(|slot| {
            if matches!(slot, Slot::Connecting) {
                *slot = Slot::Attached;
            }
        });
    }

    /// Reserves the session for a new socket, if its socket is lost and the window (`window`
    /// after the loss) is still open.
    pub(crate) fn claim(&self, window: Duration) -> Result<(), AttachError> {
        self.slot(|slot| match slot {
            Slot::Detached { since } if since.elapsed() <= window => {
                *slot = Slot::Claimed;
                Ok(())
            }
            Slot::Detached { .. } | Slot::Ended => Err(AttachError::NotFound),
            Slot::Connecting | Slot::Attached | Slot::Claimed | Slot::Ready(..) => {
                Err(AttachError::Conflict)
            }
        })
    }

    /// Hands the claimed session its new socket. Gives the socket back if the connection ended
    /// meanwhile.
    pub(crate) fn offer(&self, source: R, sink: S) -> Result<(), (R, S)> {
        let offered = self.slot(|slot| match slot {
            Slot::Claimed => {
                *slot = Slot::Ready(source, sink);
                Ok(())
            }
            _ => Err((source, sink)),
        });
        if offered.is_ok() {
            self.arrived.notify_one();
        }
        offered
    }

    /// The claimed socket could not be upgraded: the session waits for another.
    pub(crate) fn unclaim(&self) {
        self.slot(|slot| {
            if matches!(slot, Slot::Claimed) {
                *slot = Slot::Detached {
                    since: Instant::now(),
                };
            }
        });
    }

    /// The socket was lost: the connection waits for a new one.
    pub(crate) fn detach(&self) {
        self.sequencer.with(MessageBuffer::disconnected);
        self.slot(|slot| {
            *slot = Slot::Detached {
                since: Instant::now(),
            }
        });
    }

    /// Waits until a new socket arrives (`Some`) or `deadline` passes (`None`: the session is
    /// over and refuses later sockets).
    pub(crate) async fn next_socket(&self, deadline: Instant) -> Option<(R, S)> {
        loop {
            let arrived = self.arrived.notified();
            let taken = self.slot(|slot| match std::mem::replace(slot, Slot::Attached) {
                Slot::Ready(source, sink) => Some((source, sink)),
                other => {
                    *slot = other;
                    None
                }
            });
            if taken.is_some() {
                return taken;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let claimed = self.slot(|slot| match std::mem::replace(slot, Slot::Ended) {
                    Slot::Ready(source, sink) => Some((source, sink)),
                    _ => None,
                });
                if claimed.is_some() {
                    self.slot(|slot| *slot = Slot::Attached);
                }
                return claimed;
            }
        }
    }

    /// The connection ended: no socket may attach any more.
    pub(crate) fn end(&self) {
        self.slot(|slot| *slot = Slot::Ended);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use hub_core::protocol::{Ack, CancelInvocation, Sequence};

    type Message = HubMessage<(), ()>;

    fn tracked() -> Message {
        HubMessage::CancelInvocation(CancelInvocation {
            headers: Default::default(),
            invocation_id: "1".into(),
        })
    }

    fn sequence(id: u64) -> Message {
        HubMessage::Sequence(Sequence { sequence_id: id })
    }

    #[test]
    fn sent_messages_are_numbered_from_one_and_freed_by_acks() {
        let mut buffer = MessageBuffer::new(1000);
        assert_eq!(buffer.record_sent(Bytes::from_static(b"a")), 1);
        assert_eq!(buffer.record_sent(Bytes::from_static(b"bb")), 2);
        assert_eq!(buffer.record_sent(Bytes::from_static(b"ccc")), 3);
        assert!(buffer.ack(2));
        assert!(!buffer.ack(2), "nothing new to free");
        assert_eq!(buffer.replay(), (3, vec![Bytes::from_static(b"ccc")]));
        assert_eq!(buffer.unacked_bytes, 3);
        assert!(buffer.ack(10));
        assert_eq!(buffer.replay(), (4, vec![]), "all acked: the next id");
        assert_eq!(buffer.record_sent(Bytes::from_static(b"d")), 4);
    }

    #[test]
    fn replay_keeps_order() {
        let mut buffer = MessageBuffer::new(1000);
        for text in ["one", "two", "three", "four"] {
            buffer.record_sent(Bytes::from(text));
        }
        buffer.ack(1);
        let (first, messages) = buffer.replay();
        assert_eq!(first, 2);
        assert_eq!(messages, ["two", "three", "four"].map(Bytes::from).to_vec());
    }

    #[test]
    fn a_full_buffer_has_no_room_until_acked() {
        let mut buffer = MessageBuffer::new(10);
        buffer.record_sent(Bytes::from(vec![0; 6]));
        assert!(buffer.has_room());
        buffer.record_sent(Bytes::from(vec![0; 6]));
        assert!(!buffer.has_room());
        buffer.ack(1);
        assert!(buffer.has_room());
    }

    #[test]
    fn acks_only_when_something_new_arrived() {
        let mut buffer = MessageBuffer::new(10);
        assert_eq!(buffer.take_ack(), None);
        assert_eq!(
            buffer.receive(&HubMessage::<(), ()>::Ping),
            Ok(Incoming::Dispatch)
        );
        assert_eq!(buffer.take_ack(), None, "pings are not numbered");
        buffer.receive(&tracked()).unwrap();
        buffer.receive(&tracked()).unwrap();
        assert_eq!(buffer.take_ack(), Some(2));
        assert_eq!(buffer.take_ack(), None);
    }

    #[test]
    fn after_a_reconnect_everything_waits_for_sequence_and_duplicates_are_dropped() {
        let mut buffer = MessageBuffer::new(10);
        for _ in 0..3 {
            assert_eq!(buffer.receive(&tracked()), Ok(Incoming::Dispatch));
        }
        buffer.disconnected();
        assert_eq!(buffer.receive(&tracked()), Ok(Incoming::Skip));
        assert_eq!(buffer.receive(&Message::Ping), Ok(Incoming::Skip));
        // The client replays from 2: ids 2 and 3 are duplicates, 4 is new.
        assert_eq!(buffer.receive(&sequence(2)), Ok(Incoming::Skip));
        assert_eq!(buffer.receive(&tracked()), Ok(Incoming::Skip));
        assert_eq!(buffer.receive(&tracked()), Ok(Incoming::Skip));
        assert_eq!(buffer.receive(&tracked()), Ok(Incoming::Dispatch));
        assert_eq!(buffer.take_ack(), Some(4));
    }

    #[test]
    fn a_sequence_beyond_what_was_received_fails() {
        let mut buffer = MessageBuffer::new(10);
        buffer.receive(&tracked()).unwrap();
        assert_eq!(
            buffer.receive(&sequence(2)),
            Ok(Incoming::Skip),
            "next id is fine"
        );
        assert_eq!(buffer.receive(&sequence(3)), Err(SequenceTooLarge));
        assert_eq!(
            SequenceTooLarge.to_string(),
            "Sequence ID greater than amount of messages we've received."
        );
    }

    #[test]
    fn acks_from_the_client_free_the_buffer() {
        let mut buffer = MessageBuffer::new(10);
        buffer.record_sent(Bytes::from_static(b"x"));
        let ack = |id| HubMessage::<(), ()>::Ack(Ack { sequence_id: id });
        assert_eq!(buffer.receive(&ack(1)), Ok(Incoming::Acked));
        assert_eq!(buffer.receive(&ack(1)), Ok(Incoming::Skip));
        assert_eq!(buffer.replay(), (2, vec![]));
    }

    #[tokio::test]
    async fn a_session_hands_a_claimed_socket_over_and_expires() {
        let session = Session::<u8, u8>::new(10);
        assert_eq!(
            session.claim(Duration::from_secs(1)),
            Err(AttachError::Conflict)
        );
        session.enable();
        assert_eq!(
            session.claim(Duration::from_secs(1)),
            Err(AttachError::Conflict)
        );
        session.detach();
        session.claim(Duration::from_secs(1)).unwrap();
        assert_eq!(
            session.claim(Duration::from_secs(1)),
            Err(AttachError::Conflict)
        );
        session.offer(1, 2).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(session.next_socket(deadline).await, Some((1, 2)));
        session.detach();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(session.next_socket(deadline).await, None);
        assert_eq!(
            session.claim(Duration::from_secs(1)),
            Err(AttachError::NotFound)
        );
        assert_eq!(session.offer(3, 4), Err((3, 4)));
    }
}
