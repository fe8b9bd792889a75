//! The `json` hub protocol.
use bytes::Bytes;

use super::{Framing, HubMessage, HubProtocol, MessageRef, TransferFormat};
use crate::ProtocolError;

/// The `json` hub protocol: UTF-8 JSON objects, each ended by 0x1E.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonProtocol;

impl HubProtocol for JsonProtocol {
    fn name(&self) -> &'static str {
        "json"
    }
    fn version(&self) -> u32 {
        2
    }
    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Text
    }
    fn framing(&self) -> Framing {
        Framing::TextRecords
    }
    fn decode(&self, _frame: Bytes) -> Result<Option<HubMessage>, ProtocolError> {
        Err(ProtocolError::Incomplete)
    }
    fn encode(&self, _message: MessageRef<'_>, _out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        Err(ProtocolError::Incomplete)
    }
}
