//! The `messagepack` hub protocol.
use bytes::Bytes;

use super::{Framing, HubMessage, HubProtocol, MessageRef, TransferFormat};
use crate::ProtocolError;

/// The `messagepack` hub protocol: MessagePack arrays, each behind a varint length.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackProtocol;

impl HubProtocol for MessagePackProtocol {
    fn name(&self) -> &'static str {
        "messagepack"
    }
    fn version(&self) -> u32 {
        2
    }
    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Binary
    }
    fn framing(&self) -> Framing {
        Framing::LengthPrefixed
    }
    fn decode(&self, _frame: Bytes) -> Result<Option<HubMessage>, ProtocolError> {
        Err(ProtocolError::Incomplete)
    }
    fn encode(&self, _message: MessageRef<'_>, _out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        Err(ProtocolError::Incomplete)
    }
}

/// Returns the offset just past the MessagePack value that starts at `offset`.
pub(crate) fn skip_value(_bytes: &[u8], _offset: usize) -> Result<usize, ProtocolError> {
    Err(ProtocolError::Incomplete)
}
