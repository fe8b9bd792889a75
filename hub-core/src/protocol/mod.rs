//! The SignalR hub protocols: message model, framing, JSON and MessagePack codecs, handshake.
//!
//! Data flows one way: bytes → [`FrameDecoder`] (whole frames, size-limited) →
//! [`HubProtocol::decode`] (a [`HubMessage`] with raw values) → … → [`HubProtocol::encode`]
//! (framed bytes).

mod framing;
pub mod handshake;
mod json;
mod message;
pub(crate) mod msgpack;
mod native;
mod value;
mod value_serde;

use bytes::Bytes;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

pub use framing::{FrameDecoder, Framing, DEFAULT_MAX_MESSAGE_SIZE, RECORD_SEPARATOR};
#[doc(hidden)]
pub use json::decode_in_full as json_decode_in_full;
pub use json::JsonProtocol;
pub use message::{
    Ack, CancelInvocation, Close, Completion, CompletionOutcome, Headers, HubMessage, Invocation,
    MessageType, Sequence, StreamInvocation, StreamItem,
};
pub use msgpack::MessagePackProtocol;
pub use native::{Binary, Timestamp};
pub use value::{Arguments, EncodeArguments, EncodeValue, Format, RawValue};

use crate::ProtocolError;

/// How a transport carries messages: text (JSON only) or binary (either protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransferFormat {
    /// UTF-8 text frames / events.
    Text,
    /// Binary frames / bodies.
    Binary,
}

/// A borrowed, type-erased view of one outgoing message: what a codec writes.
///
/// Every message type converts to it through [`EncodeMessage`], so each protocol has exactly one
/// encoder and [`HubProtocol`] stays object safe.
#[derive(Clone, Copy)]
#[allow(missing_docs)] // the fields are those of the message structs
pub enum MessageRef<'a> {
    Invocation {
        headers: &'a Headers,
        invocation_id: Option<&'a str>,
        target: &'a str,
        arguments: &'a dyn EncodeArguments,
        stream_ids: &'a [ByteString],
    },
    StreamItem {
        headers: &'a Headers,
        invocation_id: &'a str,
        item: &'a dyn EncodeValue,
    },
    Completion {
        headers: &'a Headers,
        invocation_id: &'a str,
        outcome: OutcomeRef<'a>,
    },
    StreamInvocation {
        headers: &'a Headers,
        invocation_id: &'a str,
        target: &'a str,
        arguments: &'a dyn EncodeArguments,
        stream_ids: &'a [ByteString],
    },
    CancelInvocation {
        headers: &'a Headers,
        invocation_id: &'a str,
    },
    Ping,
    Close {
        error: Option<&'a str>,
        allow_reconnect: bool,
    },
    Ack {
        sequence_id: u64,
    },
    Sequence {
        sequence_id: u64,
    },
}

/// The borrowed form of [`CompletionOutcome`] inside a [`MessageRef`].
#[derive(Clone, Copy)]
pub enum OutcomeRef<'a> {
    /// No result: the end of a stream.
    NoResult,
    /// A result, possibly null.
    Result(&'a dyn EncodeValue),
    /// An error text.
    Error(&'a str),
}

/// A message that can be encoded: every message type, with any arguments and values that encode.
pub trait EncodeMessage {
    /// The view the codecs write.
    fn as_message_ref(&self) -> MessageRef<'_>;
}

impl EncodeMessage for MessageRef<'_> {
    fn as_message_ref(&self) -> MessageRef<'_> {
        *self
    }
}

impl<A: EncodeArguments> EncodeMessage for Invocation<A> {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::Invocation {
            headers: &self.headers,
            invocation_id: self.invocation_id.as_deref(),
            target: &self.target,
            arguments: &self.arguments,
            stream_ids: &self.stream_ids,
        }
    }
}

impl<A: EncodeArguments> EncodeMessage for StreamInvocation<A> {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::StreamInvocation {
            headers: &self.headers,
            invocation_id: &self.invocation_id,
            target: &self.target,
            arguments: &self.arguments,
            stream_ids: &self.stream_ids,
        }
    }
}

impl<V: EncodeValue> EncodeMessage for StreamItem<V> {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::StreamItem {
            headers: &self.headers,
            invocation_id: &self.invocation_id,
            item: &self.item,
        }
    }
}

impl<V: EncodeValue> EncodeMessage for Completion<V> {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::Completion {
            headers: &self.headers,
            invocation_id: &self.invocation_id,
            outcome: match &self.outcome {
                CompletionOutcome::NoResult => OutcomeRef::NoResult,
                CompletionOutcome::Result(value) => OutcomeRef::Result(value),
                CompletionOutcome::Error(error) => OutcomeRef::Error(error),
            },
        }
    }
}

impl EncodeMessage for CancelInvocation {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::CancelInvocation {
            headers: &self.headers,
            invocation_id: &self.invocation_id,
        }
    }
}

impl EncodeMessage for Close {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::Close {
            error: self.error.as_deref(),
            allow_reconnect: self.allow_reconnect,
        }
    }
}

impl EncodeMessage for Ack {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::Ack {
            sequence_id: self.sequence_id,
        }
    }
}

impl EncodeMessage for Sequence {
    fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef::Sequence {
            sequence_id: self.sequence_id,
        }
    }
}

impl<A: EncodeArguments, V: EncodeValue> EncodeMessage for HubMessage<A, V> {
    fn as_message_ref(&self) -> MessageRef<'_> {
        match self {
            HubMessage::Invocation(m) => m.as_message_ref(),
            HubMessage::StreamItem(m) => m.as_message_ref(),
            HubMessage::Completion(m) => m.as_message_ref(),
            HubMessage::StreamInvocation(m) => m.as_message_ref(),
            HubMessage::CancelInvocation(m) => m.as_message_ref(),
            HubMessage::Ping => MessageRef::Ping,
            HubMessage::Close(m) => m.as_message_ref(),
            HubMessage::Ack(m) => m.as_message_ref(),
            HubMessage::Sequence(m) => m.as_message_ref(),
        }
    }
}

/// A hub protocol: how messages become frames and frames become messages.
///
/// Object safe; [`Protocol`] picks one at run time from the handshake.
pub trait HubProtocol {
    /// The name used in the handshake: `json` or `messagepack`.
    fn name(&self) -> &'static str;
    /// The highest protocol version supported (2: stateful reconnect).
    fn version(&self) -> u32;
    /// The transfer format the protocol needs from its transport.
    fn transfer_format(&self) -> TransferFormat;
    /// How the protocol delimits messages in a byte stream.
    fn framing(&self) -> Framing;
    /// Decodes one frame (as split by a [`FrameDecoder`] with this protocol's [`Framing`]).
    ///
    /// Returns `Ok(None)` for a message of an unknown type, which the protocol says to ignore.
    fn decode(&self, frame: Bytes) -> Result<Option<HubMessage>, ProtocolError>;
    /// Appends one framed message (with its record separator or length prefix) to `out`.
    ///
    /// On error `out` is left as it was.
    fn encode(&self, message: MessageRef<'_>, out: &mut Vec<u8>) -> Result<(), ProtocolError>;

    /// Encodes one framed message into a new, exactly sized buffer (one allocation: the message
    /// is written into a reused per-thread scratch buffer, then copied out).
    fn encode_to_bytes(&self, message: &dyn EncodeMessage) -> Result<Bytes, ProtocolError> {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                let result = self.encode(message.as_message_ref(), &mut buffer);
                let bytes = result.map(|()| Bytes::copy_from_slice(&buffer));
                if buffer.capacity() > MAX_SCRATCH_CAPACITY {
                    *buffer = Vec::new();
                }
                bytes
            }
            // Re-entered from inside a value's own encoding: use a fresh buffer.
            Err(_) => {
                let mut out = Vec::new();
                self.encode(message.as_message_ref(), &mut out)?;
                Ok(Bytes::from(out))
            }
        })
    }
}

/// Scratch buffers larger than this are released after use rather than kept for the thread.
const MAX_SCRATCH_CAPACITY: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The hub protocols this crate implements, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The `json` protocol ([`JsonProtocol`]).
    Json,
    /// The `messagepack` protocol ([`MessagePackProtocol`]).
    MessagePack,
}

impl Protocol {
    /// Every protocol, in the order a server prefers them.
    pub const ALL: [Protocol; 2] = [Protocol::Json, Protocol::MessagePack];

    /// The protocol with this handshake name (names compare exactly, as in ASP.NET Core).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Protocol::Json),
            "messagepack" => Some(Protocol::MessagePack),
            _ => None,
        }
    }

    /// The encoding of values inside this protocol's messages.
    pub fn format(self) -> Format {
        match self {
            Protocol::Json => Format::Json,
            Protocol::MessagePack => Format::MessagePack,
        }
    }

    fn inner(self) -> &'static dyn HubProtocol {
        match self {
            Protocol::Json => &JsonProtocol,
            Protocol::MessagePack => &MessagePackProtocol,
        }
    }
}

impl HubProtocol for Protocol {
    fn name(&self) -> &'static str {
        self.inner().name()
    }
    fn version(&self) -> u32 {
        self.inner().version()
    }
    fn transfer_format(&self) -> TransferFormat {
        self.inner().transfer_format()
    }
    fn framing(&self) -> Framing {
        self.inner().framing()
    }
    fn decode(&self, frame: Bytes) -> Result<Option<HubMessage>, ProtocolError> {
        match self {
            Protocol::Json => JsonProtocol.decode(frame),
            Protocol::MessagePack => MessagePackProtocol.decode(frame),
        }
    }
    fn encode(&self, message: MessageRef<'_>, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match self {
            Protocol::Json => JsonProtocol.encode(message, out),
            Protocol::MessagePack => MessagePackProtocol.encode(message, out),
        }
    }
}
