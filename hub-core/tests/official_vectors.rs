//! Golden vectors written by the official SignalR JavaScript classes (`tests/node/vectors/`):
//! Rust decodes each one, checks it against the description the official parser gave, re-encodes
//! it and decodes that again. The re-encoded bytes (plus server-style messages built from Rust
//! values) go to `rust-encoded.json`, which a Node test parses with the official classes.
//!
//! Format: `tests/vectors/README.md`. `UPDATE_VECTORS=1` rewrites `rust-encoded.json`; without it,
//! a stale file fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use hub_core::protocol::handshake::{HandshakeRequest, HandshakeResponse};
use hub_core::protocol::{
    Close, Completion, CompletionOutcome, EncodeMessage, FrameDecoder, HubMessage, HubProtocol,
    Invocation, Protocol, RawValue, StreamItem, TransferFormat,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vectors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generator: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    versions: Option<Value>,
    hub: Vec<HubCase>,
    #[serde(default)]
    handshake_requests: Vec<HandshakeRequestCase>,
    #[serde(default)]
    handshake_responses: Vec<HandshakeResponseCase>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HubCase {
    name: String,
    protocol: String,
    bytes: String,
    messages: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct HandshakeRequestCase {
    name: String,
    bytes: String,
    protocol: String,
    version: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct HandshakeResponseCase {
    name: String,
    bytes: String,
    error: Option<String>,
}

fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn protocol_named(name: &str) -> Protocol {
    Protocol::from_name(name).unwrap_or_else(|| panic!("unknown protocol {name}"))
}

/// A raw value as the fixture describes it.
fn raw(value: &RawValue) -> Value {
    match value.format() {
        hub_core::protocol::Format::Json => {
            Value::String(String::from_utf8(value.as_bytes().to_vec()).unwrap())
        }
        hub_core::protocol::Format::MessagePack => Value::String(BASE64.encode(value.as_bytes())),
    }
}

/// The fixture description of a decoded message (see tests/vectors/README.md).
fn describe(message: &HubMessage) -> Value {
    let headers = |h: &hub_core::protocol::Headers| -> Value {
        Value::Object(
            h.iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect(),
        )
    };
    let ids = |ids: &[bytestring::ByteString]| -> Value {
        ids.iter().map(|id| Value::String(id.to_string())).collect()
    };
    let mut out = Map::new();
    out.insert("type".into(), json!(message.message_type().number()));
    match message {
        HubMessage::Invocation(m) => {
            out.insert("headers".into(), headers(&m.headers));
            out.insert("invocationId".into(), json!(m.invocation_id.as_deref()));
            out.insert("target".into(), json!(&*m.target));
            out.insert("arguments".into(), m.arguments.iter().map(raw).collect());
            out.insert("streamIds".into(), ids(&m.stream_ids));
        }
        HubMessage::StreamInvocation(m) => {
            out.insert("headers".into(), headers(&m.headers));
            out.insert("invocationId".into(), json!(&*m.invocation_id));
            out.insert("target".into(), json!(&*m.target));
            out.insert("arguments".into(), m.arguments.iter().map(raw).collect());
            out.insert("streamIds".into(), ids(&m.stream_ids));
        }
        HubMessage::StreamItem(m) => {
            out.insert("headers".into(), headers(&m.headers));
            out.insert("invocationId".into(), json!(&*m.invocation_id));
            out.insert("item".into(), raw(&m.item));
        }
        HubMessage::Completion(m) => {
            out.insert("headers".into(), headers(&m.headers));
            out.insert("invocationId".into(), json!(&*m.invocation_id));
            match &m.outcome {
                CompletionOutcome::NoResult => {}
                CompletionOutcome::Result(value) => {
                    out.insert("result".into(), raw(value));
                }
                CompletionOutcome::Error(error) => {
                    out.insert("error".into(), json!(&**error));
                }
            }
        }
        HubMessage::CancelInvocation(m) => {
            out.insert("headers".into(), headers(&m.headers));
            out.insert("invocationId".into(), json!(&*m.invocation_id));
        }
        HubMessage::Ping => {}
        HubMessage::Close(m) => {
            if let Some(error) = &m.error {
                out.insert("error".into(), json!(&**error));
            }
            out.insert("allowReconnect".into(), json!(m.allow_reconnect));
        }
        HubMessage::Ack(m) => {
            out.insert("sequenceId".into(), json!(m.sequence_id));
        }
        HubMessage::Sequence(m) => {
            out.insert("sequenceId".into(), json!(m.sequence_id));
        }
    }
    Value::Object(out)
}

/// Splits and decodes a whole byte stream.
fn decode_all(protocol: Protocol, bytes: &[u8]) -> Vec<HubMessage> {
    let mut frames = FrameDecoder::new(protocol.framing(), usize::MAX >> 1);
    frames.push(Bytes::copy_from_slice(bytes));
    let mut messages = Vec::new();
    while let Some(frame) = frames.next_frame().unwrap() {
        messages.push(
            protocol
                .decode(frame)
                .unwrap()
                .expect("every vector has a known type"),
        );
    }
    assert!(!frames.has_partial_frame(), "trailing bytes");
    messages
}

fn encode_all(protocol: Protocol, messages: &[&dyn EncodeMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        protocol.encode(message.as_message_ref(), &mut out).unwrap();
    }
    out
}

fn load_official() -> Vectors {
    let text = std::fs::read_to_string(vectors_dir().join("official.json"))
        .expect("official.json is committed");
    serde_json::from_str(&text).expect("official.json parses")
}

/// Messages a server sends, built from Rust values rather than decoded: the Node test checks the
/// official classes read them as described.
fn server_cases() -> Vec<(String, Vec<Box<dyn EncodeMessage>>)> {
    #[derive(Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Message<'a> {
        user_name: &'a str,
        text: &'a str,
        likes: u32,
        tags: Vec<&'a str>,
        pinned: bool,
        reply_to: Option<u64>,
    }
    let message = Message {
        user_name: "Ada",
        text: "héllo \"world\" 😀",
        likes: 300,
        tags: vec!["a", "b"],
        pinned: true,
        reply_to: None,
    };
    vec![
        (
            "server-void-result".into(),
            vec![Box::new(Completion::result("0", ()))],
        ),
        (
            "server-int-result".into(),
            vec![Box::new(Completion::result("1", -70000i64))],
        ),
        (
            "server-error-completion".into(),
            vec![Box::new(Completion::<()>::error(
                "2",
                "An unexpected error occurred invoking 'Foo' on the server.",
            ))],
        ),
        (
            "server-client-call".into(),
            vec![Box::new(Invocation::new(
                "ReceiveMessage",
                ("room", message.clone(), 1.5f64),
            ))],
        ),
        (
            "server-client-result-call".into(),
            vec![Box::new(
                Invocation::new("GetAnswer", ("question",)).with_id("s1"),
            )],
        ),
        (
            "server-stream".into(),
            vec![
                Box::new(StreamItem::new("3", message.clone())),
                Box::new(StreamItem::new("3", ())),
                Box::new(Completion::<()>::no_result("3")),
            ],
        ),
        (
            "server-ping".into(),
            vec![Box::new(HubMessage::<(), ()>::Ping)],
        ),
        (
            "server-close-reconnect".into(),
            vec![Box::new(Close {
                error: None,
                allow_reconnect: true,
            })],
        ),
        (
            "server-close-error".into(),
            vec![Box::new(Close::with_error())],
        ),
        ("server-close-plain".into(), vec![Box::new(Close::new())]),
    ]
}

#[test]
fn official_vectors_decode_and_round_trip() {
    let official = load_official();
    assert!(
        official.hub.len() >= 20,
        "the official vectors cover every kind"
    );
    let mut rust = Vectors {
        generator: Some(json!("hub-core/tests/official_vectors.rs")),
        versions: None,
        hub: Vec::new(),
        handshake_requests: Vec::new(),
        handshake_responses: Vec::new(),
    };
    let mut kinds_seen = std::collections::BTreeSet::new();
    for case in &official.hub {
        let protocol = protocol_named(&case.protocol);
        let bytes = BASE64.decode(&case.bytes).unwrap();
        let decoded = decode_all(protocol, &bytes);
        let described: Vec<Value> = decoded.iter().map(describe).collect();
        assert_eq!(
            described, case.messages,
            "{} ({})",
            case.name, case.protocol
        );
        for message in &decoded {
            kinds_seen.insert((case.protocol.clone(), message.message_type().number()));
        }

        let reencoded = encode_all(
            protocol,
            &decoded
                .iter()
                .map(|m| m as &dyn EncodeMessage)
                .collect::<Vec<_>>(),
        );
        let again: Vec<Value> = decode_all(protocol, &reencoded)
            .iter()
            .map(describe)
            .collect();
        assert_eq!(
            again, case.messages,
            "re-encoded {} ({})",
            case.name, case.protocol
        );
        rust.hub.push(HubCase {
            name: format!("reencoded-{}", case.name),
            protocol: case.protocol.clone(),
            bytes: BASE64.encode(&reencoded),
            messages: case.messages.clone(),
        });
    }
    for protocol in ["json", "messagepack"] {
        for kind in 1..=9u8 {
            assert!(
                kinds_seen.contains(&(protocol.to_owned(), kind)),
                "no official {protocol} vector of type {kind}"
            );
        }
    }

    for (name, messages) in server_cases() {
        for protocol in Protocol::ALL {
            let bytes = encode_all(protocol, &messages.iter().map(|m| &**m).collect::<Vec<_>>());
            let described = decode_all(protocol, &bytes).iter().map(describe).collect();
            rust.hub.push(HubCase {
                name: name.clone(),
                protocol: protocol.name().to_owned(),
                bytes: BASE64.encode(&bytes),
                messages: described,
            });
        }
    }

    for case in &official.handshake_requests {
        let bytes = BASE64.decode(&case.bytes).unwrap();
        let frame = bytes
            .strip_suffix(b"\x1e")
            .expect("a handshake ends with 0x1E");
        let request = HandshakeRequest::parse(frame).unwrap();
        assert_eq!(
            request,
            HandshakeRequest::new(case.protocol.clone(), case.version),
            "{}",
            case.name
        );
        assert_eq!(
            request
                .select(&Protocol::ALL, TransferFormat::Binary)
                .unwrap()
                .name(),
            case.protocol
        );
        let mut encoded = Vec::new();
        request.encode(&mut encoded);
        assert_eq!(
            encoded, bytes,
            "{}: Rust writes the request as the JS client does",
            case.name
        );
    }
    for case in &official.handshake_responses {
        let bytes = BASE64.decode(&case.bytes).unwrap();
        let frame = bytes
            .strip_suffix(b"\x1e")
            .expect("a handshake ends with 0x1E");
        let expected = match &case.error {
            None => HandshakeResponse::Accepted,
            Some(error) => HandshakeResponse::Rejected(error.clone()),
        };
        assert_eq!(
            HandshakeResponse::parse(frame).unwrap(),
            expected,
            "{}",
            case.name
        );
    }
    for (name, response) in [
        ("accepted", HandshakeResponse::Accepted),
        (
            "unsupported-protocol",
            HandshakeResponse::rejected(&hub_core::ProtocolError::UnsupportedProtocol(
                "xml".into(),
            )),
        ),
        (
            "canceled",
            HandshakeResponse::rejected(&hub_core::ProtocolError::HandshakeCanceled),
        ),
        (
            "binary-over-text",
            HandshakeResponse::rejected(&hub_core::ProtocolError::TransferFormatNotSupported(
                "messagepack",
            )),
        ),
    ] {
        let mut bytes = Vec::new();
        response.encode(&mut bytes);
        rust.handshake_responses.push(HandshakeResponseCase {
            name: name.to_owned(),
            bytes: BASE64.encode(&bytes),
            error: match response {
                HandshakeResponse::Accepted => None,
                HandshakeResponse::Rejected(error) => Some(error),
            },
        });
    }

    let path = vectors_dir().join("rust-encoded.json");
    let text = serde_json::to_string_pretty(&rust).unwrap() + "\n";
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    } else {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is stale: run `UPDATE_VECTORS=1 cargo test -p hub-core --test official_vectors` and commit it",
            path.display()
        );
    }
}

#[test]
fn spec_examples_are_byte_exact() {
    let msgpack = |message: &dyn EncodeMessage| {
        Protocol::MessagePack
            .encode_to_bytes(message)
            .unwrap()
            .to_vec()
    };
    assert_eq!(
        msgpack(&Completion::result("0", ())),
        [0x07, 0x95, 0x03, 0x80, 0xA1, 0x30, 0x03, 0xC0]
    );
    assert_eq!(
        msgpack(&Completion::<()>::no_result("1")),
        [0x06, 0x94, 0x03, 0x80, 0xA1, 0x31, 0x02]
    );
    assert_eq!(
        msgpack(&Close {
            error: None,
            allow_reconnect: true
        }),
        [0x04, 0x93, 0x07, 0xC0, 0xC3]
    );
    assert_eq!(msgpack(&HubMessage::<(), ()>::Ping), [0x02, 0x91, 0x06]);
    let json = |message: &dyn EncodeMessage| {
        String::from_utf8(Protocol::Json.encode_to_bytes(message).unwrap().to_vec()).unwrap()
    };
    assert_eq!(
        json(&Completion::result("0", ())),
        "{\"type\":3,\"invocationId\":\"0\",\"result\":null}\u{1e}"
    );
    assert_eq!(json(&HubMessage::<(), ()>::Ping), "{\"type\":6}\u{1e}");
}
