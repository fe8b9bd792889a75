//! Property tests of the codecs and framing, in both protocols:
//! - encode → decode is the identity for every message kind;
//! - splitting a concatenation of frames anywhere yields the same messages;
//! - arbitrary bytes never panic, and the framer never holds more than the size limit;
//! - the `json` decoder's fast path for common messages answers as the full decoder does.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bytes::Bytes;
use bytestring::ByteString;
use hub_core::protocol::handshake::{HandshakeRequest, HandshakeResponse};
use hub_core::protocol::{
    Ack, Arguments, CancelInvocation, Close, Completion, CompletionOutcome, EncodeMessage,
    FrameDecoder, Framing, Headers, HubMessage, HubProtocol, Invocation, Protocol, RawValue,
    Sequence, StreamInvocation, StreamItem,
};
use proptest::prelude::*;
use serde_json::Value;

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(24).collect()),
        Just("\"\\\u{0}\u{1f}\u{2028}😀".to_owned()),
    ]
}

fn arb_id() -> BoxedStrategy<ByteString> {
    prop_oneof!["[0-9]{1,6}", "[a-f0-9-]{1,36}", arb_text()]
        .prop_map(ByteString::from)
        .boxed()
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        arb_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value encoded in `protocol`; MessagePack also gets `bin` and timestamp extension values.
fn arb_raw(protocol: Protocol) -> BoxedStrategy<RawValue> {
    let from_json =
        arb_json().prop_map(move |value| RawValue::encode(&value, protocol.format()).unwrap());
    match protocol {
        Protocol::Json => from_json.boxed(),
        Protocol::MessagePack => prop_oneof![
            4 => from_json,
            1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| {
                let mut raw = vec![0xc4, bytes.len() as u8];
                raw.extend_from_slice(&bytes);
                RawValue::from_msgpack(raw).unwrap()
            }),
            1 => any::<u32>().prop_map(|seconds| {
                let mut raw = vec![0xd6, 0xff];
                raw.extend_from_slice(&seconds.to_be_bytes());
                RawValue::from_msgpack(raw).unwrap()
            }),
            1 => (any::<u32>(), any::<i64>()).prop_map(|(nanos, seconds)| {
                let mut raw = vec![0xc7, 12, 0xff];
                raw.extend_from_slice(&nanos.to_be_bytes());
                raw.extend_from_slice(&seconds.to_be_bytes());
                RawValue::from_msgpack(raw).unwrap()
            }),
        ]
        .boxed(),
    }
}

fn arb_headers() -> impl Strategy<Value = Headers> {
    prop::collection::vec((arb_text(), arb_text()), 0..3)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn arb_message(protocol: Protocol) -> BoxedStrategy<HubMessage> {
    let args = prop::collection::vec(arb_raw(protocol), 0..5).prop_map(Arguments::from);
    let stream_ids = prop::collection::vec(arb_id(), 0..3);
    prop_oneof![
        (
            arb_headers(),
            prop::option::of(arb_id()),
            arb_id(),
            args.clone(),
            stream_ids.clone()
        )
            .prop_map(|(headers, invocation_id, target, arguments, stream_ids)| {
                HubMessage::Invocation(Invocation {
                    headers,
                    invocation_id: invocation_id.filter(|id| !id.is_empty()),
                    target,
                    arguments,
                    stream_ids,
                })
            }),
        (arb_headers(), arb_id(), arb_id(), args, stream_ids).prop_map(
            |(headers, invocation_id, target, arguments, stream_ids)| {
                HubMessage::StreamInvocation(StreamInvocation {
                    headers,
                    invocation_id,
                    target,
                    arguments,
                    stream_ids,
                })
            }
        ),
        (arb_headers(), arb_id(), arb_raw(protocol)).prop_map(|(headers, invocation_id, item)| {
            HubMessage::StreamItem(StreamItem {
                headers,
                invocation_id,
                item,
            })
        }),
        (
            arb_headers(),
            arb_id(),
            prop_oneof![
                Just(CompletionOutcome::NoResult),
                arb_raw(protocol).prop_map(CompletionOutcome::Result),
                arb_text().prop_map(|e| CompletionOutcome::Error(e.into())),
            ]
        )
            .prop_map(|(headers, invocation_id, outcome)| HubMessage::Completion(
                Completion {
                    headers,
                    invocation_id,
                    outcome,
                }
            )),
        (arb_headers(), arb_id()).prop_map(|(headers, invocation_id)| {
            HubMessage::CancelInvocation(CancelInvocation {
                headers,
                invocation_id,
            })
        }),
        Just(HubMessage::Ping),
        (prop::option::of(arb_text()), any::<bool>()).prop_map(|(error, allow_reconnect)| {
            HubMessage::Close(Close {
                error: error.map(ByteString::from),
                allow_reconnect,
            })
        }),
        any::<u64>().prop_map(|sequence_id| HubMessage::Ack(Ack { sequence_id })),
        any::<u64>().prop_map(|sequence_id| HubMessage::Sequence(Sequence { sequence_id })),
    ]
    .boxed()
}

fn arb_protocol_and_messages() -> impl Strategy<Value = (Protocol, Vec<HubMessage>)> {
    prop_oneof![Just(Protocol::Json), Just(Protocol::MessagePack)].prop_flat_map(|protocol| {
        (
            Just(protocol),
            prop::collection::vec(arb_message(protocol), 1..5),
        )
    })
}

fn encode_all(protocol: Protocol, messages: &[HubMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        protocol.encode(message.as_message_ref(), &mut out).unwrap();
    }
    out
}

/// Feeds `chunks` to a decoder and decodes every frame.
fn decode_chunks<'a>(
    protocol: Protocol,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<HubMessage>, hub_core::ProtocolError> {
    let mut frames = FrameDecoder::new(protocol.framing(), 1 << 20);
    let mut messages = Vec::new();
    for chunk in chunks {
        frames.push(Bytes::copy_from_slice(chunk));
        while let Some(frame) = frames.next_frame()? {
            messages.extend(protocol.decode(frame)?);
        }
    }
    assert!(!frames.has_partial_frame());
    Ok(messages)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity((protocol, messages) in arb_protocol_and_messages()) {
        for message in &messages {
            let bytes = protocol.encode_to_bytes(message).unwrap();
            let decoded = decode_chunks(protocol, [&bytes[..]]).unwrap();
            prop_assert_eq!(&decoded, std::slice::from_ref(message));
        }
    }

    #[test]
    fn any_split_yields_the_same_messages((protocol, messages) in arb_protocol_and_messages()) {
        let stream = encode_all(protocol, &messages);
        for split in 0..=stream.len() {
            let decoded = decode_chunks(protocol, [&stream[..split], &stream[split..]]).unwrap();
            prop_assert_eq!(&decoded, &messages, "split at {}", split);
        }
    }

    #[test]
    fn any_chunking_yields_the_same_messages(
        (protocol, messages) in arb_protocol_and_messages(),
        sizes in prop::collection::vec(1usize..17, 1..64),
    ) {
        let stream = encode_all(protocol, &messages);
        let mut chunks = Vec::new();
        let mut rest = &stream[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        prop_assert_eq!(decode_chunks(protocol, chunks).unwrap(), messages);
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_exceed_the_limit(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8),
        limit in 0usize..200,
    ) {
        for protocol in Protocol::ALL {
            let mut frames = FrameDecoder::new(protocol.framing(), limit);
            'stream: for chunk in &chunks {
                frames.push(Bytes::copy_from_slice(chunk));
                loop {
                    match frames.next_frame() {
                        Ok(Some(frame)) => {
                            prop_assert!(frame.len() <= limit);
                            let _ = protocol.decode(frame);
                        }
                        Ok(None) => {
                            prop_assert!(frames.buffered_len() <= limit.max(4), "holds {} > {}", frames.buffered_len(), limit);
                            break;
                        }
                        Err(_) => break 'stream,
                    }
                }
            }
            let joined = Bytes::from(chunks.concat());
            let _ = protocol.decode(joined.clone());
            let _ = HandshakeRequest::parse(&joined);
            let _ = HandshakeResponse::parse(&joined);
        }
    }

    #[test]
    fn corrupted_messages_never_panic(
        (protocol, messages) in arb_protocol_and_messages(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut stream = encode_all(protocol, &messages);
        for (index, byte) in flips {
            let at = index.index(stream.len());
            stream[at] = byte;
        }
        let _ = decode_chunks_lenient(protocol, &stream);
    }
}

/// A message as clients write it on every call — `type`, `invocationId`, `target`, `arguments`,
/// in any order, no whitespace — and sometimes not quite: whitespace, another field, a repeated
/// field, a `null`, or bytes overwritten.
fn arb_client_json() -> impl Strategy<Value = Vec<u8>> {
    (
        0u64..9,
        proptest::option::of(arb_text()),
        arb_text(),
        prop::collection::vec(arb_json(), 0..4),
        any::<prop::sample::Index>(),
        0u8..6,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..3),
    )
        .prop_map(|(kind, id, target, arguments, rotate, variant, flips)| {
            let text = |value: &str| serde_json::to_string(value).unwrap();
            let mut fields = vec![
                format!("\"type\":{kind}"),
                format!("\"target\":{}", text(&target)),
                format!(
                    "\"arguments\":{}",
                    serde_json::to_string(&arguments).unwrap()
                ),
            ];
            if let Some(id) = id {
                fields.push(format!("\"invocationId\":{}", text(&id)));
            }
            match variant {
                1 => fields.push("\"headers\":{\"a\":\"b\"}".to_owned()),
                2 => fields.push(format!("\"type\":{kind}")),
                3 => fields.push("\"invocationId\":null".to_owned()),
                _ => {}
            }
            let at = rotate.index(fields.len());
            fields.rotate_left(at);
            let separator = if variant == 4 { ", " } else { "," };
            let mut frame = format!("{{{}}}", fields.join(separator)).into_bytes();
            if variant == 5 {
                for (index, byte) in flips {
                    let at = index.index(frame.len());
                    frame[at] = byte;
                }
            }
            frame
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_json_fast_path_answers_as_the_full_decoder(frame in arb_client_json()) {
        let frame = Bytes::from(frame);
        let decoded = Protocol::Json.decode(frame.clone());
        let in_full = hub_core::protocol::json_decode_in_full(&frame);
        match (decoded, in_full) {
            (Ok(decoded), Ok(in_full)) => prop_assert_eq!(decoded, in_full),
            (Err(decoded), Err(in_full)) => prop_assert_eq!(decoded.to_string(), in_full.to_string()),
            (decoded, in_full) => prop_assert!(false, "fast path {:?}, full decoder {:?}", decoded, in_full),
        }
    }
}

/// Like `decode_chunks`, but stops at the first error instead of asserting a clean end.
fn decode_chunks_lenient(
    protocol: Protocol,
    stream: &[u8],
) -> Result<Vec<HubMessage>, hub_core::ProtocolError> {
    let mut frames = FrameDecoder::new(protocol.framing(), 1 << 16);
    frames.push(Bytes::copy_from_slice(stream));
    let mut messages = Vec::new();
    while let Some(frame) = frames.next_frame()? {
        messages.extend(protocol.decode(frame)?);
    }
    Ok(messages)
}

#[test]
fn framing_names_match_the_protocols() {
    assert_eq!(Protocol::Json.framing(), Framing::TextRecords);
    assert_eq!(Protocol::MessagePack.framing(), Framing::LengthPrefixed);
}
