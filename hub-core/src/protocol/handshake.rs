//! The handshake that opens every connection: always JSON, always ended by 0x1E.
//!
//! The client sends `{"protocol":"json","version":1}␞`; the server answers `{}␞` or
//! `{"error":"…"}␞` and closes. Split the stream with a [`FrameDecoder`](super::FrameDecoder) in
//! [`Framing::TextRecords`](super::Framing::TextRecords) mode, parse the first frame here, then
//! switch the decoder to the chosen protocol's framing: bytes after the handshake are kept.

use serde::{Deserialize, Serialize};

use super::framing::RECORD_SEPARATOR;
use super::{HubProtocol, Protocol, TransferFormat};
use crate::ProtocolError;

/// The highest hub protocol version this crate speaks (2 adds stateful reconnect).
pub const MAX_PROTOCOL_VERSION: i64 = 2;

/// The client's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    /// The hub protocol name: `json` or `messagepack`.
    pub protocol: String,
    /// The protocol version: 1, or 2 for stateful reconnect (some clients send 0).
    pub version: i64,
    /// The contract hash of the hub the client was generated from (sent by generated clients;
    /// other servers ignore the field, other clients do not send it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
}

impl HandshakeRequest {
    /// A request for `protocol` at `version`.
    pub fn new(protocol: impl Into<String>, version: i64) -> Self {
        HandshakeRequest {
            protocol: protocol.into(),
            version,
            contract: None,
        }
    }

    /// The same request presenting a client's contract hash.
    pub fn with_contract(mut self, contract: impl Into<String>) -> Self {
        self.contract = Some(contract.into());
        self
    }

    /// Parses one handshake frame (without its record separator).
    ///
    /// Anything that is not a JSON object with a string `protocol` and an integer `version` is
    /// [`ProtocolError::InvalidHandshake`], whose text is the one ASP.NET Core answers with.
    pub fn parse(frame: &[u8]) -> Result<Self, ProtocolError> {
        serde_json::from_slice(frame).map_err(|_| ProtocolError::InvalidHandshake)
    }

    /// Appends the framed request, e.g. `{"protocol":"json","version":1}␞`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // A struct of a string and an integer always serializes.
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(RECORD_SEPARATOR);
        }
    }

    /// Picks the protocol this request asks for, checking it the way ASP.NET Core does and in the
    /// same order: known and enabled name, supported version, transport able to carry it.
    pub fn select(
        &self,
        enabled: &[Protocol],
        transport: TransferFormat,
    ) -> Result<Protocol, ProtocolError> {
        let protocol = Protocol::from_name(&self.protocol)
            .filter(|protocol| enabled.contains(protocol))
            .ok_or_else(|| ProtocolError::UnsupportedProtocol(self.protocol.clone()))?;
        if self.version > MAX_PROTOCOL_VERSION {
            return Err(ProtocolError::UnsupportedProtocolVersion {
                protocol: self.protocol.clone(),
                version: self.version,
            });
        }
        if transport == TransferFormat::Text && protocol.transfer_format() == TransferFormat::Binary
        {
            return Err(ProtocolError::TransferFormatNotSupported(protocol.name()));
        }
        Ok(protocol)
    }
}

/// The server's answer to the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeResponse {
    /// `{}␞`: the connection is open.
    Accepted,
    /// `{"error":"…"}␞`: the server closes the connection.
    Rejected(String),
}

#[derive(Serialize, Deserialize)]
struct ResponseFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, rename = "type", skip_serializing)]
    message_type: Option<serde::de::IgnoredAny>,
}

impl HandshakeResponse {
    /// The response that carries `error`'s text (handshake errors display ASP.NET Core's texts).
    pub fn rejected(error: &ProtocolError) -> Self {
        HandshakeResponse::Rejected(error.to_string())
    }

    /// Appends the framed response: exactly `{}␞`, or `{"error":"…"}␞`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            HandshakeResponse::Accepted => out.extend_from_slice(b"{}"),
            HandshakeResponse::Rejected(error) => {
                out.extend_from_slice(b"{\"error\":");
                // A string always serializes.
                let _ = serde_json::to_writer(&mut *out, error);
                out.push(b'}');
            }
        }
        out.push(RECORD_SEPARATOR);
    }

    /// Appends an accepted response that tells a client which contract the server's hub has:
    /// `{"contract":"…"}␞` (only to clients that presented one: the others get exactly `{}␞`).
    pub fn encode_accepted_with_contract(contract: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"contract\":");
        // A string always serializes.
        let _ = serde_json::to_writer(&mut *out, contract);
        out.push(b'}');
        out.push(RECORD_SEPARATOR);
    }

    /// Parses one handshake response frame (without its record separator), as a client does.
    ///
    /// A frame with a `type` field is a hub message, not a handshake response: that is an error, as
    /// in the official clients.
    pub fn parse(frame: &[u8]) -> Result<Self, ProtocolError> {
        let fields: ResponseFields = serde_json::from_slice(frame)
            .map_err(|e| ProtocolError::InvalidJson(format!("invalid handshake response: {e}")))?;
        if fields.message_type.is_some() {
            return Err(ProtocolError::InvalidJson(
                "Expected a handshake response from the server.".to_owned(),
            ));
        }
        Ok(match fields.error {
            Some(error) => HandshakeResponse::Rejected(error),
            None => HandshakeResponse::Accepted,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_rides_in_the_handshake_and_is_optional() {
        let request =
            HandshakeRequest::parse(br#"{"protocol":"json","version":1,"contract":"abc"}"#)
                .unwrap();
        assert_eq!(request.contract.as_deref(), Some("abc"));
        let plain = HandshakeRequest::parse(br#"{"protocol":"json","version":1}"#).unwrap();
        assert_eq!(plain.contract, None);
        let mut out = Vec::new();
        HandshakeRequest::new("json", 1).encode(&mut out);
        assert_eq!(out, b"{\"protocol\":\"json\",\"version\":1}\x1e");
        let mut out = Vec::new();
        HandshakeResponse::encode_accepted_with_contract("abc", &mut out);
        assert_eq!(out, b"{\"contract\":\"abc\"}\x1e");
        assert_eq!(
            HandshakeResponse::parse(&out[..out.len() - 1]).unwrap(),
            HandshakeResponse::Accepted
        );
    }

    const BOTH: &[Protocol] = &[Protocol::Json, Protocol::MessagePack];

    fn select(text: &str, transport: TransferFormat) -> Result<Protocol, String> {
        HandshakeRequest::parse(text.as_bytes())
            .and_then(|request| request.select(BOTH, transport))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn versions_zero_to_two_are_accepted() {
        for version in 0..=2 {
            let text = format!(r#"{{"protocol":"json","version":{version}}}"#);
            assert_eq!(select(&text, TransferFormat::Binary), Ok(Protocol::Json));
        }
        assert_eq!(
            select(
                r#"{"version":1,"protocol":"messagepack","extra":[1]}"#,
                TransferFormat::Binary
            ),
            Ok(Protocol::MessagePack)
        );
    }

    #[test]
    fn errors_carry_the_asp_net_texts() {
        assert_eq!(
            select(r#"{"protocol":"xml","version":1}"#, TransferFormat::Binary),
            Err("The protocol 'xml' is not supported.".to_owned())
        );
        assert_eq!(
            select(r#"{"protocol":"json","version":3}"#, TransferFormat::Binary),
            Err("The server does not support version 3 of the 'json' protocol.".to_owned())
        );
        assert_eq!(
            select(r#"{"protocol":"messagepack","version":1}"#, TransferFormat::Text),
            Err("Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format.".to_owned())
        );
        for malformed in [
            "",
            "{",
            r#"{"protocol":"json"}"#,
            r#"{"version":1}"#,
            r#"{"protocol":1,"version":1}"#,
            "[]",
        ] {
            assert_eq!(
                select(malformed, TransferFormat::Binary),
                Err("An unexpected error occurred during connection handshake.".to_owned()),
                "{malformed}"
            );
        }
    }

    #[test]
    fn a_disabled_protocol_is_not_supported() {
        let request = HandshakeRequest::new("messagepack", 1);
        assert_eq!(
            request.select(&[Protocol::Json], TransferFormat::Binary),
            Err(ProtocolError::UnsupportedProtocol("messagepack".to_owned()))
        );
    }

    #[test]
    fn responses_are_exact() {
        let mut out = Vec::new();
        HandshakeResponse::Accepted.encode(&mut out);
        assert_eq!(out, b"{}\x1e");
        out.clear();
        HandshakeResponse::rejected(&ProtocolError::HandshakeCanceled).encode(&mut out);
        assert_eq!(out, b"{\"error\":\"Handshake was canceled.\"}\x1e");
        assert_eq!(
            HandshakeResponse::parse(b"{}").unwrap(),
            HandshakeResponse::Accepted
        );
        assert_eq!(
            HandshakeResponse::parse(br#"{"error":"no"}"#).unwrap(),
            HandshakeResponse::Rejected("no".to_owned())
        );
        assert!(HandshakeResponse::parse(br#"{"type":6}"#).is_err());
    }

    #[test]
    fn requests_encode_like_the_js_client() {
        let mut out = Vec::new();
        HandshakeRequest::new("json", 1).encode(&mut out);
        assert_eq!(out, b"{\"protocol\":\"json\",\"version\":1}\x1e");
    }
}
