//! The nine SignalR hub message kinds.
//!
//! Decoded messages use the default type parameters: arguments are [`Arguments`] and values are
//! [`RawValue`]s, still undecoded. Outgoing messages may carry any [`EncodeArguments`] /
//! [`EncodeValue`](super::EncodeValue) instead, e.g. a tuple of `Serialize` values, so encoding
//! needs no intermediate value tree either.
//!
//! [`EncodeArguments`]: super::EncodeArguments

use bytestring::ByteString;

use super::value::{Arguments, RawValue};

/// The message type numbers of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// 1: call a method on the other side.
    Invocation = 1,
    /// 2: one item of a stream.
    StreamItem = 2,
    /// 3: the end of an invocation or stream.
    Completion = 3,
    /// 4: call a streaming method on the server.
    StreamInvocation = 4,
    /// 5: stop a stream or invocation.
    CancelInvocation = 5,
    /// 6: keep-alive.
    Ping = 6,
    /// 7: the connection is closing.
    Close = 7,
    /// 8: stateful reconnect acknowledgement.
    Ack = 8,
    /// 9: stateful reconnect sequence start.
    Sequence = 9,
}

impl MessageType {
    /// The type with this number, if the protocol defines one.
    pub fn from_number(number: u64) -> Option<Self> {
        Some(match number {
            1 => MessageType::Invocation,
            2 => MessageType::StreamItem,
            3 => MessageType::Completion,
            4 => MessageType::StreamInvocation,
            5 => MessageType::CancelInvocation,
            6 => MessageType::Ping,
            7 => MessageType::Close,
            8 => MessageType::Ack,
            9 => MessageType::Sequence,
            _ => return None,
        })
    }

    /// The type's number on the wire.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The type's name, as used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Invocation => "Invocation",
            MessageType::StreamItem => "StreamItem",
            MessageType::Completion => "Completion",
            MessageType::StreamInvocation => "StreamInvocation",
            MessageType::CancelInvocation => "CancelInvocation",
            MessageType::Ping => "Ping",
            MessageType::Close => "Close",
            MessageType::Ack => "Ack",
            MessageType::Sequence => "Sequence",
        }
    }
}

/// Message headers: string pairs that may ride on types 1–5, in the order they arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(ByteString, ByteString)>,
}

impl Headers {
    /// No headers (allocates nothing).
    pub fn new() -> Self {
        Headers::default()
    }

    /// The value of the first header named `name` (names compare exactly).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }

    /// Adds a header.
    pub fn insert(&mut self, name: impl Into<ByteString>, value: impl Into<ByteString>) {
        self.pairs.push((name.into(), value.into()));
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The headers in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().map(|(k, v)| (&**k, &**v))
    }
}

impl<K: Into<ByteString>, V: Into<ByteString>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Headers {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Type 1: call `target` on the other side.
///
/// Without an invocation id the call is non-blocking: the receiver sends nothing back, not even
/// errors. An empty id on the wire is read as no id, as ASP.NET Core does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation<A = Arguments> {
    /// Headers (usually none).
    pub headers: Headers,
    /// The id the sender will match the Completion with; `None` for a non-blocking call.
    pub invocation_id: Option<ByteString>,
    /// The method name.
    pub target: ByteString,
    /// The arguments, without upload streams.
    pub arguments: A,
    /// The ids of the upload streams the caller will send, in parameter order.
    pub stream_ids: Vec<ByteString>,
}

impl<A> Invocation<A> {
    /// A non-blocking invocation of `target` (what a server sends to call a client method).
    pub fn new(target: impl Into<ByteString>, arguments: A) -> Self {
        Invocation {
            headers: Headers::new(),
            invocation_id: None,
            target: target.into(),
            arguments,
            stream_ids: Vec::new(),
        }
    }

    /// Sets the invocation id, making the call blocking (a client result, from a server).
    pub fn with_id(mut self, invocation_id: impl Into<ByteString>) -> Self {
        self.invocation_id = Some(invocation_id.into());
        self
    }
}

/// Type 4: call a streaming method on the server; it answers with StreamItems and a Completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInvocation<A = Arguments> {
    /// Headers (usually none).
    pub headers: Headers,
    /// The id of the stream.
    pub invocation_id: ByteString,
    /// The method name.
    pub target: ByteString,
    /// The arguments, without upload streams.
    pub arguments: A,
    /// The ids of the upload streams the caller will send.
    pub stream_ids: Vec<ByteString>,
}

impl<A> StreamInvocation<A> {
    /// A stream invocation of `target` with id `invocation_id`.
    pub fn new(
        invocation_id: impl Into<ByteString>,
        target: impl Into<ByteString>,
        arguments: A,
    ) -> Self {
        StreamInvocation {
            headers: Headers::new(),
            invocation_id: invocation_id.into(),
            target: target.into(),
            arguments,
            stream_ids: Vec::new(),
        }
    }
}

/// Type 2: one item of a server stream or an upload stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamItem<V = RawValue> {
    /// Headers (usually none).
    pub headers: Headers,
    /// The stream the item belongs to.
    pub invocation_id: ByteString,
    /// The item (may be null).
    pub item: V,
}

impl<V> StreamItem<V> {
    /// An item of stream `invocation_id`.
    pub fn new(invocation_id: impl Into<ByteString>, item: V) -> Self {
        StreamItem {
            headers: Headers::new(),
            invocation_id: invocation_id.into(),
            item,
        }
    }
}

/// What a Completion says about its invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionOutcome<V = RawValue> {
    /// Finished with no result: the end of a stream (JSON: no `result` field; MessagePack: kind 2).
    NoResult,
    /// Finished with a result, which may be null (a void hub method's reply is a null result).
    Result(V),
    /// Failed with an error text.
    Error(ByteString),
}

/// Type 3: the end of an invocation or a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion<V = RawValue> {
    /// Headers (usually none).
    pub headers: Headers,
    /// The invocation or stream this completes.
    pub invocation_id: ByteString,
    /// Result, error or neither.
    pub outcome: CompletionOutcome<V>,
}

impl<V> Completion<V> {
    /// A completion with a result.
    pub fn result(invocation_id: impl Into<ByteString>, result: V) -> Self {
        Completion {
            headers: Headers::new(),
            invocation_id: invocation_id.into(),
            outcome: CompletionOutcome::Result(result),
        }
    }

    /// A completion without a result: how a stream ends.
    pub fn no_result(invocation_id: impl Into<ByteString>) -> Self {
        Completion {
            headers: Headers::new(),
            invocation_id: invocation_id.into(),
            outcome: CompletionOutcome::NoResult,
        }
    }

    /// A failed completion.
    pub fn error(invocation_id: impl Into<ByteString>, error: impl Into<ByteString>) -> Self {
        Completion {
            headers: Headers::new(),
            invocation_id: invocation_id.into(),
            outcome: CompletionOutcome::Error(error.into()),
        }
    }
}

/// Type 5: stop the stream or invocation with this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelInvocation {
    /// Headers (usually none).
    pub headers: Headers,
    /// The invocation to cancel.
    pub invocation_id: ByteString,
}

impl CancelInvocation {
    /// Cancels `invocation_id`.
    pub fn new(invocation_id: impl Into<ByteString>) -> Self {
        CancelInvocation {
            headers: Headers::new(),
            invocation_id: invocation_id.into(),
        }
    }
}

/// Type 7: the sender is closing the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Close {
    /// Why, when the close is abnormal.
    pub error: Option<ByteString>,
    /// Whether a client with automatic reconnect should reconnect.
    pub allow_reconnect: bool,
}

impl Close {
    /// The text ASP.NET Core puts in a Close sent because of an error.
    pub const ERROR_TEXT: &'static str = "Connection closed with an error.";

    /// A normal close: `{"type":7}`.
    pub fn new() -> Self {
        Close::default()
    }

    /// A close after a server error or protocol violation, inviting a reconnect.
    pub fn with_error() -> Self {
        Close {
            error: Some(ByteString::from_static(Close::ERROR_TEXT)),
            allow_reconnect: true,
        }
    }
}

/// Type 8 (stateful reconnect): everything up to and including `sequence_id` was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The highest sequence id processed.
    pub sequence_id: u64,
}

/// Type 9 (stateful reconnect): the messages that follow start at `sequence_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// The sequence id of the next message.
    pub sequence_id: u64,
}

/// Any hub message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubMessage<A = Arguments, V = RawValue> {
    /// Type 1.
    Invocation(Invocation<A>),
    /// Type 2.
    StreamItem(StreamItem<V>),
    /// Type 3.
    Completion(Completion<V>),
    /// Type 4.
    StreamInvocation(StreamInvocation<A>),
    /// Type 5.
    CancelInvocation(CancelInvocation),
    /// Type 6.
    Ping,
    /// Type 7.
    Close(Close),
    /// Type 8.
    Ack(Ack),
    /// Type 9.
    Sequence(Sequence),
}

impl<A, V> HubMessage<A, V> {
    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            HubMessage::Invocation(_) => MessageType::Invocation,
            HubMessage::StreamItem(_) => MessageType::StreamItem,
            HubMessage::Completion(_) => MessageType::Completion,
            HubMessage::StreamInvocation(_) => MessageType::StreamInvocation,
            HubMessage::CancelInvocation(_) => MessageType::CancelInvocation,
            HubMessage::Ping => MessageType::Ping,
            HubMessage::Close(_) => MessageType::Close,
            HubMessage::Ack(_) => MessageType::Ack,
            HubMessage::Sequence(_) => MessageType::Sequence,
        }
    }
}
