//! The invariants the fuzz targets check, in one place: compiled into each cargo-fuzz target
//! (`fuzz_targets/*.rs`) and into the stable test `tests/fuzz_seeds.rs`, which replays the
//! committed seeds through the same functions.
//!
//! Each function panics when an invariant breaks and returns how many inputs it accepted
//! (messages decoded, handshakes or negotiate bodies parsed), so the seed test can tell that a
//! seed meant to be valid still is.

// Each fuzz target uses one of these functions; asserting is the point of this code.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hub_core::negotiate::{NegotiateRequest, NegotiateResponse, NEGOTIATE_VERSION};
use hub_core::protocol::handshake::{HandshakeRequest, HandshakeResponse, MAX_PROTOCOL_VERSION};
use hub_core::protocol::{
    FrameDecoder, HubMessage, HubProtocol, Protocol, TransferFormat, RECORD_SEPARATOR,
};
use hub_core::token::TokenKey;
use hub_core::ProtocolError;

/// The maximum message size the decode targets use: small, so the limit is reached often.
const MAX_MESSAGE_SIZE: usize = 4096;

/// Splits `data` into JSON records and decodes each with the `json` protocol.
pub(crate) fn json_decode(data: &[u8]) -> usize {
    decode_stream(Protocol::Json, data)
}

/// Splits `data` into length-prefixed frames and decodes each with the `messagepack` protocol.
pub(crate) fn msgpack_decode(data: &[u8]) -> usize {
    decode_stream(Protocol::MessagePack, data)
}

/// Feeds `data` to a [`FrameDecoder`] in two chunks, split at a position taken from the first
/// byte, and checks every frame; the whole input in one chunk must give the same frames.
fn decode_stream(protocol: Protocol, data: &[u8]) -> usize {
    let split = data
        .first()
        .map_or(0, |&byte| usize::from(byte) % (data.len() + 1));
    let (chunked, chunked_failed) = split_frames(protocol, &[&data[..split], &data[split..]]);
    let (whole, whole_failed) = split_frames(protocol, &[data]);
    assert_eq!(
        chunked, whole,
        "framing depends on where the input is split"
    );
    assert_eq!(chunked_failed, whole_failed);
    chunked
        .into_iter()
        .map(|frame| usize::from(check_frame(protocol, frame)))
        .sum()
}

/// The frames of `chunks`, up to the first framing error, and whether there was one.
fn split_frames(protocol: Protocol, chunks: &[&[u8]]) -> (Vec<bytes::Bytes>, bool) {
    let mut decoder = FrameDecoder::new(protocol.framing(), MAX_MESSAGE_SIZE);
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(bytes::Bytes::copy_from_slice(chunk));
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_MESSAGE_SIZE, "a frame over the limit");
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(error) => {
                    assert!(
                        matches!(
                            error,
                            ProtocolError::MessageTooLarge {
                                limit: MAX_MESSAGE_SIZE
                            } | ProtocolError::InvalidLengthPrefix(_)
                        ),
                        "unexpected framing error {error:?}"
                    );
                    return (frames, true);
                }
            }
        }
        // Waiting for more input, the decoder holds at most one unfinished message.
        assert!(
            decoder.buffered_len() <= MAX_MESSAGE_SIZE,
            "{} bytes buffered",
            decoder.buffered_len()
        );
    }
    (frames, false)
}

/// Decodes one frame; a message that decodes must re-encode to exactly one frame that decodes to
/// an equal message and re-encodes to the same bytes. Returns whether a message was decoded.
fn check_frame(protocol: Protocol, frame: bytes::Bytes) -> bool {
    let decoded = protocol.decode(frame.clone());
    if protocol == Protocol::Json {
        same_as_in_full(&frame, &decoded);
    }
    let Ok(Some(message)) = decoded else {
        return false;
    };
    let encoded = protocol
        .encode_to_bytes(&message)
        .unwrap_or_else(|error| panic!("{message:?} decoded but does not encode: {error}"));
    let mut decoder = FrameDecoder::new(protocol.framing(), usize::MAX);
    decoder.push(encoded.clone());
    let frame = decoder
        .next_frame()
        .expect("the encoding frames")
        .expect("the encoding is one whole frame");
    assert!(
        !decoder.has_partial_frame(),
        "bytes after the encoded frame"
    );
    let again = protocol
        .decode(frame)
        .unwrap_or_else(|error| panic!("the encoding of {message:?} does not decode: {error}"))
        .expect("the encoding has a known type");
    assert_eq!(
        again, message,
        "the message changed through encode and decode"
    );
    assert_eq!(
        protocol.encode_to_bytes(&again).expect("encodes again"),
        encoded,
        "encoding is not stable"
    );
    if let HubMessage::Invocation(call) = &message {
        assert!(
            call.invocation_id.as_deref() != Some(""),
            "an empty id is no id"
        );
    }
    true
}

/// The `json` decoder's fast path for common messages answers as the full decoder does: the same
/// message, or the same error.
fn same_as_in_full(frame: &bytes::Bytes, decoded: &Result<Option<HubMessage>, ProtocolError>) {
    let in_full = hub_core::protocol::json_decode_in_full(frame);
    match (decoded, &in_full) {
        (Ok(decoded), Ok(in_full)) => assert_eq!(
            decoded, in_full,
            "the fast path and the full decoder disagree on {frame:?}"
        ),
        (Err(decoded), Err(in_full)) => assert_eq!(
            decoded.to_string(),
            in_full.to_string(),
            "the fast path and the full decoder fail differently on {frame:?}"
        ),
        _ => panic!("the fast path gave {decoded:?}, the full decoder {in_full:?}, for {frame:?}"),
    }
}

/// Parses `data` as a handshake request and as a handshake response; whatever parses must survive
/// encode and parse unchanged. Returns how many of the two parsed.
pub(crate) fn handshake(data: &[u8]) -> usize {
    let mut accepted = 0;
    if let Ok(request) = HandshakeRequest::parse(data) {
        accepted += 1;
        for transport in [TransferFormat::Binary, TransferFormat::Text] {
            match request.select(&Protocol::ALL, transport) {
                Ok(protocol) => {
                    assert_eq!(protocol.name(), request.protocol);
                    assert!(request.version <= MAX_PROTOCOL_VERSION);
                    assert!(transport == TransferFormat::Binary || protocol == Protocol::Json);
                }
                Err(error) => assert!(
                    matches!(
                        error,
                        ProtocolError::UnsupportedProtocol(_)
                            | ProtocolError::UnsupportedProtocolVersion { .. }
                            | ProtocolError::TransferFormatNotSupported(_)
                    ),
                    "unexpected handshake error {error:?}"
                ),
            }
        }
        let mut out = Vec::new();
        request.encode(&mut out);
        assert_eq!(out.pop(), Some(RECORD_SEPARATOR));
        assert!(
            !out.contains(&RECORD_SEPARATOR),
            "a separator inside the record"
        );
        assert_eq!(HandshakeRequest::parse(&out).expect("reparses"), request);
    }
    if let Ok(response) = HandshakeResponse::parse(data) {
        accepted += 1;
        let mut out = Vec::new();
        response.encode(&mut out);
        assert_eq!(out.pop(), Some(RECORD_SEPARATOR));
        assert!(
            !out.contains(&RECORD_SEPARATOR),
            "a separator inside the record"
        );
        assert_eq!(HandshakeResponse::parse(&out).expect("reparses"), response);
    }
    accepted
}

/// Reads `data` as a negotiate query string (lossy UTF-8) and as a negotiate response body;
/// whatever parses must survive a round trip unchanged. Returns how many of the two parsed.
pub(crate) fn negotiate(data: &[u8]) -> usize {
    let mut accepted = 0;
    let query = String::from_utf8_lossy(data);
    for min_version in [0, 1] {
        if let Ok(request) = NegotiateRequest::from_query(&query, min_version) {
            accepted += usize::from(min_version == 0);
            assert!(request.version <= NEGOTIATE_VERSION);
            assert_eq!(
                NegotiateRequest::from_query(&request.to_query(), 0),
                Ok(request)
            );
        }
    }
    if let Ok(response) = NegotiateResponse::parse(data) {
        accepted += 1;
        let json = response.to_json();
        assert_eq!(
            NegotiateResponse::parse(&json).expect("reparses"),
            response,
            "changed through {}",
            String::from_utf8_lossy(&json)
        );
        assert_eq!(
            NegotiateResponse::parse(&json).map(|r| r.to_json()),
            Ok(json)
        );
    }
    accepted
}

/// Checks `data` (as text) as a connection token under a fixed key (`[7; 32]`): never a panic,
/// and a token that verifies is exactly what signing its contents again gives.
pub(crate) fn connection_token(data: &[u8]) -> usize {
    let key = TokenKey::new(&[7; 32]).unwrap();
    let text = String::from_utf8_lossy(data);
    let text = text.trim_end();
    match key.verify(text) {
        Ok(token) => {
            assert_eq!(key.sign(&token), text);
            1
        }
        Err(_) => 0,
    }
}

/// `traceparent` (`hub_core::trace`): never panics; what parses formats back to its first four
/// fields, lowercase (version 00).
pub(crate) fn traceparent(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let text = text.trim_end();
    match text.parse::<hub_core::trace::TraceParent>() {
        Ok(parent) => {
            let again = parent.to_string();
            assert_eq!(again[3..55], text[3..55]);
            assert_eq!(again.parse::<hub_core::trace::TraceParent>(), Ok(parent));
            1
        }
        Err(_) => 0,
    }
}
