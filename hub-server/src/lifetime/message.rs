//! A message on its way to many connections: encoded at most once per protocol
//! ([`PreparedMessage`]), or already encoded in every protocol by another server ([`Envelope`]).

use std::cell::OnceCell;

use bytes::Bytes;
use hub_core::protocol::{EncodeMessage, HubProtocol, MessageRef, Protocol};
use hub_core::ProtocolError;
use serde::{Deserialize, Serialize};

/// A message about to be sent to many connections: encoded at most once per protocol, on first
/// use (or ahead of time with [`encode`](Self::encode)).
pub struct PreparedMessage<'a> {
    message: Option<MessageRef<'a>>,
    encoded: [OnceCell<Result<Bytes, ProtocolError>>; 2],
}

fn slot(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Json => 0,
        Protocol::MessagePack => 1,
    }
}

impl<'a> PreparedMessage<'a> {
    /// Prepares `message`; nothing is encoded yet.
    pub fn new(message: &'a dyn EncodeMessage) -> Self {
        PreparedMessage {
            message: Some(message.as_message_ref()),
            encoded: [OnceCell::new(), OnceCell::new()],
        }
    }

    /// A message another server encoded: its bytes are sent as they are.
    pub fn from_envelope(envelope: &Envelope) -> PreparedMessage<'static> {
        PreparedMessage {
            message: None,
            encoded: [
                OnceCell::from(Ok(envelope.json.clone())),
                OnceCell::from(Ok(envelope.messagepack.clone())),
            ],
        }
    }

    /// The message framed in `protocol`, encoded on the first call for that protocol.
    pub fn encoded(&self, protocol: Protocol) -> Result<Bytes, ProtocolError> {
        self.encoded[slot(protocol)]
            .get_or_init(|| match &self.message {
                Some(message) => protocol.encode_to_bytes(message),
                // An envelope fills both slots: this cannot be reached.
                None => Err(ProtocolError::Incomplete),
            })
            .clone()
    }

    /// Encodes the message for `protocol` now (so that sending later only copies bytes).
    pub fn encode(&self, protocol: Protocol) {
        let _ = self.encoded(protocol);
    }

    /// The message encoded in every protocol, for another server to deliver.
    pub fn envelope(&self) -> Result<Envelope, ProtocolError> {
        Ok(Envelope {
            json: self.encoded(Protocol::Json)?,
            messagepack: self.encoded(Protocol::MessagePack)?,
        })
    }
}

/// A hub message encoded once in each protocol, ready for any connection: what a backplane
/// publishes, so that receiving servers write the bytes and never re-encode. Serialisable
/// (`bytes` as byte strings in formats that have them, such as MessagePack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The message framed for the JSON protocol (ending with the record separator).
    pub json: Bytes,
    /// The message framed for the MessagePack protocol (length-prefixed).
    pub messagepack: Bytes,
}

impl Envelope {
    /// The bytes for `protocol`.
    pub fn encoded(&self, protocol: Protocol) -> &Bytes {
        match protocol {
            Protocol::Json => &self.json,
            Protocol::MessagePack => &self.messagepack,
        }
    }
}
