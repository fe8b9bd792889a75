//! The `json` hub protocol: one UTF-8 JSON object per message, each ended by 0x1E.
//!
//! Decoding reads the object's fields in any order (clients write `type` last), ignores unknown
//! fields, and keeps every argument, item and result as a zero-copy slice of the frame. Strings
//! without escapes (targets, ids, headers) are zero-copy too. The messages of every call, as the
//! official clients write them, take a fast path ([`common`]) that answers exactly as the full
//! decoder does. Encoding writes the envelope by hand in ASP.NET Core's field order and hands
//! values to `serde_json`.

mod common;

use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::framing::RECORD_SEPARATOR;
use super::message::{
    Ack, CancelInvocation, Close, Completion, CompletionOutcome, Headers, HubMessage, Invocation,
    MessageType, Sequence, StreamInvocation, StreamItem,
};
use super::value::{Arguments, EncodeArguments, EncodeValue, Format, RawValue};
use super::{Framing, HubProtocol, MessageRef, OutcomeRef, TransferFormat};
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

    fn decode(&self, frame: Bytes) -> Result<Option<HubMessage>, ProtocolError> {
        match common::read_common(&frame) {
            Some(message) => Ok(Some(message)),
            None => decode_in_full(&frame),
        }
    }

    fn encode(&self, message: MessageRef<'_>, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let start = out.len();
        let result = write_message(message, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// The full decoder alone, without the fast path for common messages: what the fast path is
/// checked against (the fuzz targets and property tests). Not for other use.
#[doc(hidden)]
pub fn decode_in_full(frame: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
    let mut deserializer = serde_json::Deserializer::from_slice(frame);
    let fields = EnvelopeSeed { frame }
        .deserialize(&mut deserializer)
        .map_err(ProtocolError::json)?;
    deserializer.end().map_err(ProtocolError::json)?;
    fields.into_message()
}

/// The fields of any message, as read; which are required depends on `type`.
#[derive(Default)]
struct Fields {
    message_type: Option<u64>,
    target: Option<ByteString>,
    invocation_id: Option<ByteString>,
    arguments: Option<Vec<RawValue>>,
    stream_ids: Option<Vec<ByteString>>,
    headers: Option<Headers>,
    item: Option<RawValue>,
    result: Option<RawValue>,
    error: Option<ByteString>,
    allow_reconnect: Option<bool>,
    sequence_id: Option<u64>,
}

impl Fields {
    fn into_message(self) -> Result<Option<HubMessage>, ProtocolError> {
        let number = self.message_type.ok_or(ProtocolError::MissingType)?;
        let Some(message_type) = MessageType::from_number(number) else {
            return Ok(None);
        };
        let kind = message_type.name();
        let missing = |field| ProtocolError::MissingField { kind, field };
        let headers = self.headers.unwrap_or_default();
        Ok(Some(match message_type {
            MessageType::Invocation => HubMessage::Invocation(Invocation {
                headers,
                invocation_id: self.invocation_id.filter(|id| !id.is_empty()),
                target: self.target.ok_or_else(|| missing("target"))?,
                arguments: Arguments::from(self.arguments.ok_or_else(|| missing("arguments"))?),
                stream_ids: self.stream_ids.unwrap_or_default(),
            }),
            MessageType::StreamInvocation => HubMessage::StreamInvocation(StreamInvocation {
                headers,
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
                target: self.target.ok_or_else(|| missing("target"))?,
                arguments: Arguments::from(self.arguments.ok_or_else(|| missing("arguments"))?),
                stream_ids: self.stream_ids.unwrap_or_default(),
            }),
            MessageType::StreamItem => HubMessage::StreamItem(StreamItem {
                headers,
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
                item: self.item.ok_or_else(|| missing("item"))?,
            }),
            MessageType::Completion => HubMessage::Completion(Completion {
                headers,
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
                outcome: match (self.result, self.error) {
                    (Some(_), Some(_)) => return Err(ProtocolError::ResultAndError),
                    (Some(result), None) => CompletionOutcome::Result(result),
                    (None, Some(error)) => CompletionOutcome::Error(error),
                    (None, None) => CompletionOutcome::NoResult,
                },
            }),
            MessageType::CancelInvocation => HubMessage::CancelInvocation(CancelInvocation {
                headers,
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
            }),
            MessageType::Ping => HubMessage::Ping,
            MessageType::Close => HubMessage::Close(Close {
                error: self.error,
                allow_reconnect: self.allow_reconnect.unwrap_or(false),
            }),
            MessageType::Ack => HubMessage::Ack(Ack {
                sequence_id: self.sequence_id.ok_or_else(|| missing("sequenceId"))?,
            }),
            MessageType::Sequence => HubMessage::Sequence(Sequence {
                sequence_id: self.sequence_id.ok_or_else(|| missing("sequenceId"))?,
            }),
        }))
    }
}

/// Shares `text` as a slice of `frame` when it lies inside it (it was borrowed from the input),
/// otherwise copies it (it held escapes).
fn share_str(frame: &Bytes, text: &str) -> ByteString {
    ByteString::try_from(share_bytes(frame, text.as_bytes()))
        .unwrap_or_else(|_| ByteString::from(text))
}

fn share_bytes(frame: &Bytes, part: &[u8]) -> Bytes {
    let frame_start = frame.as_ptr() as usize;
    let part_start = part.as_ptr() as usize;
    match part_start.checked_sub(frame_start) {
        Some(offset) if offset + part.len() <= frame.len() => {
            frame.slice(offset..offset + part.len())
        }
        _ => Bytes::copy_from_slice(part),
    }
}

struct EnvelopeSeed<'f> {
    frame: &'f Bytes,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Fields;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Fields, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// The field names we read; anything else is skipped.
enum Key {
    Type,
    Target,
    InvocationId,
    Arguments,
    StreamIds,
    Headers,
    Item,
    Result,
    Error,
    AllowReconnect,
    SequenceId,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(match name {
                    "type" => Key::Type,
                    "target" => Key::Target,
                    "invocationId" => Key::InvocationId,
                    "arguments" => Key::Arguments,
                    "streamIds" => Key::StreamIds,
                    "headers" => Key::Headers,
                    "item" => Key::Item,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    "allowReconnect" => Key::AllowReconnect,
                    "sequenceId" => Key::SequenceId,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hub message object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields, M::Error> {
        let frame = self.frame;
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => fields.message_type = Some(map.next_value::<u64>()?),
                Key::Target => fields.target = map.next_value_seed(OptionalStr { frame })?,
                Key::InvocationId => {
                    fields.invocation_id = map.next_value_seed(OptionalStr { frame })?
                }
                Key::Arguments => fields.arguments = Some(map.next_value_seed(RawList { frame })?),
                Key::StreamIds => {
                    fields.stream_ids = map.next_value_seed(OptionalStrList { frame })?
                }
                Key::Headers => fields.headers = map.next_value_seed(OptionalHeaders { frame })?,
                Key::Item => fields.item = Some(map.next_value_seed(Raw { frame })?),
                Key::Result => fields.result = Some(map.next_value_seed(Raw { frame })?),
                Key::Error => fields.error = map.next_value_seed(OptionalStr { frame })?,
                Key::AllowReconnect => fields.allow_reconnect = map.next_value::<Option<bool>>()?,
                Key::SequenceId => fields.sequence_id = Some(map.next_value::<u64>()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// One value, kept as its exact JSON text.
struct Raw<'f> {
    frame: &'f Bytes,
}

impl<'de> DeserializeSeed<'de> for Raw<'_> {
    type Value = RawValue;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawValue, D::Error> {
        let raw: &'de serde_json::value::RawValue = de::Deserialize::deserialize(deserializer)?;
        Ok(RawValue::new_unchecked(
            share_bytes(self.frame, raw.get().as_bytes()),
            Format::Json,
        ))
    }
}

/// An array of values, each kept raw.
struct RawList<'f> {
    frame: &'f Bytes,
}

impl<'de> DeserializeSeed<'de> for RawList<'_> {
    type Value = Vec<RawValue>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<RawValue>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RawList<'_> {
    type Value = Vec<RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<RawValue>, S::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Raw { frame: self.frame })? {
            items.push(item);
        }
        Ok(items)
    }
}

/// A string or null.
struct OptionalStr<'f> {
    frame: &'f Bytes,
}

impl<'de> DeserializeSeed<'de> for OptionalStr<'_> {
    type Value = Option<ByteString>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalStr<'_> {
    type Value = Option<ByteString>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Str { frame: self.frame }
            .deserialize(deserializer)
            .map(Some)
    }
}

/// A string.
struct Str<'f> {
    frame: &'f Bytes,
}

impl<'de> DeserializeSeed<'de> for Str<'_> {
    type Value = ByteString;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ByteString, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Str<'_> {
    type Value = ByteString;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<ByteString, E> {
        Ok(share_str(self.frame, text))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteString, E> {
        Ok(ByteString::from(text))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<ByteString, E> {
        Ok(ByteString::from(text))
    }
}

/// An array of strings, or null.
struct OptionalStrList<'f> {
    frame: &'f Bytes,
}

impl<'de> DeserializeSeed<'de> for OptionalStrList<'_> {
    type Value = Option<Vec<ByteString>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalStrList<'_> {
    type Value = Option<Vec<ByteString>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut ids = Vec::new();
        while let Some(id) = seq.next_element_seed(Str { frame: self.frame })? {
            ids.push(id);
        }
        Ok(Some(ids))
    }
}

/// An object of string values, or null.
struct OptionalHeaders<'f> {
    frame: &'f Bytes,
}

impl<'de> DeserializeSeed<'de> for OptionalHeaders<'_> {
    type Value = Option<Headers>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalHeaders<'_> {
    type Value = Option<Headers>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut headers = Headers::new();
        while let Some(name) = map.next_key_seed(Str { frame: self.frame })? {
            let value = map.next_value_seed(Str { frame: self.frame })?;
            headers.insert(name, value);
        }
        Ok(Some(headers))
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

fn write_message(message: MessageRef<'_>, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    match message {
        MessageRef::Invocation {
            headers,
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            write_type(MessageType::Invocation, out);
            write_headers(headers, out)?;
            if let Some(id) = invocation_id {
                write_str_field("invocationId", id, out)?;
            }
            write_call(target, arguments, stream_ids, out)?;
        }
        MessageRef::StreamInvocation {
            headers,
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            write_type(MessageType::StreamInvocation, out);
            write_headers(headers, out)?;
            write_str_field("invocationId", invocation_id, out)?;
            write_call(target, arguments, stream_ids, out)?;
        }
        MessageRef::StreamItem {
            headers,
            invocation_id,
            item,
        } => {
            write_type(MessageType::StreamItem, out);
            write_headers(headers, out)?;
            write_str_field("invocationId", invocation_id, out)?;
            out.extend_from_slice(b",\"item\":");
            item.encode_json(out)?;
        }
        MessageRef::Completion {
            headers,
            invocation_id,
            outcome,
        } => {
            write_type(MessageType::Completion, out);
            write_headers(headers, out)?;
            write_str_field("invocationId", invocation_id, out)?;
            match outcome {
                OutcomeRef::NoResult => {}
                OutcomeRef::Result(value) => {
                    out.extend_from_slice(b",\"result\":");
                    value.encode_json(out)?;
                }
                OutcomeRef::Error(error) => write_str_field("error", error, out)?,
            }
        }
        MessageRef::CancelInvocation {
            headers,
            invocation_id,
        } => {
            write_type(MessageType::CancelInvocation, out);
            write_headers(headers, out)?;
            write_str_field("invocationId", invocation_id, out)?;
        }
        MessageRef::Ping => write_type(MessageType::Ping, out),
        MessageRef::Close {
            error,
            allow_reconnect,
        } => {
            write_type(MessageType::Close, out);
            if let Some(error) = error {
                write_str_field("error", error, out)?;
            }
            if allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":true");
            }
        }
        MessageRef::Ack { sequence_id } => {
            write_type(MessageType::Ack, out);
            write_sequence_id(sequence_id, out);
        }
        MessageRef::Sequence { sequence_id } => {
            write_type(MessageType::Sequence, out);
            write_sequence_id(sequence_id, out);
        }
    }
    out.push(b'}');
    out.push(RECORD_SEPARATOR);
    Ok(())
}

fn write_type(message_type: MessageType, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":");
    let number = message_type.number();
    if number >= 10 {
        out.push(b'0' + number / 10);
    }
    out.push(b'0' + number % 10);
}

fn write_sequence_id(sequence_id: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"sequenceId\":");
    out.extend_from_slice(sequence_id.to_string().as_bytes());
}

/// Writes `,"name":"value"` with the value escaped.
fn write_str_field(name: &str, value: &str, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    value.encode_json(out)
}

/// Writes `,"headers":{…}` when there are headers (ASP.NET omits empty ones).
fn write_headers(headers: &Headers, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    if headers.is_empty() {
        return Ok(());
    }
    out.extend_from_slice(b",\"headers\":{");
    for (index, (name, value)) in headers.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        name.encode_json(out)?;
        out.push(b':');
        value.encode_json(out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes the target, the arguments and, when there are any, the stream ids.
fn write_call(
    target: &str,
    arguments: &dyn EncodeArguments,
    stream_ids: &[ByteString],
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    write_str_field("target", target, out)?;
    out.extend_from_slice(b",\"arguments\":[");
    let mut first = true;
    arguments.try_for_each(&mut |value| {
        if !first {
            out.push(b',');
        }
        first = false;
        value.encode_json(out)
    })?;
    out.push(b']');
    if !stream_ids.is_empty() {
        out.extend_from_slice(b",\"streamIds\":[");
        for (index, id) in stream_ids.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            (**id).encode_json(out)?;
        }
        out.push(b']');
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::EncodeMessage;

    fn decode(text: &str) -> Result<Option<HubMessage>, ProtocolError> {
        JsonProtocol.decode(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn encode(message: &dyn EncodeMessage) -> String {
        let bytes = JsonProtocol.encode_to_bytes(message).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn json(text: &str) -> RawValue {
        RawValue::from_json(text.to_owned()).unwrap()
    }

    #[test]
    fn type_last_invocation_with_arguments_before_target() {
        let message = decode(
            r#"{"arguments":["hi",{"a":[1, 2]}],"invocationId":"0","target":"Echo","type":1}"#,
        )
        .unwrap()
        .unwrap();
        let HubMessage::Invocation(call) = message else {
            panic!("{message:?}")
        };
        assert_eq!(&*call.target, "Echo");
        assert_eq!(call.invocation_id.as_deref(), Some("0"));
        assert_eq!(call.arguments.len(), 2);
        assert_eq!(call.arguments.get(0).unwrap().as_bytes(), br#""hi""#);
        assert_eq!(
            call.arguments.get(1).unwrap().as_bytes(),
            br#"{"a":[1, 2]}"#
        );
        assert!(call.stream_ids.is_empty());
    }

    #[test]
    fn unknown_fields_and_whitespace_are_ignored() {
        let message = decode(" {\"x\":{\"deep\":[1]}, \"type\" : 6 , \"y\":null}\n").unwrap();
        assert_eq!(message, Some(HubMessage::Ping));
    }

    #[test]
    fn unknown_types_are_ignored_but_missing_type_is_an_error() {
        assert_eq!(decode(r#"{"type":10}"#).unwrap(), None);
        assert_eq!(decode(r#"{"target":"x"}"#), Err(ProtocolError::MissingType));
        assert!(decode(r#"{"type":"1"}"#).is_err());
        assert!(decode(r#"{"type":1.5}"#).is_err());
    }

    #[test]
    fn null_result_is_distinct_from_no_result() {
        let with_null = decode(r#"{"type":3,"invocationId":"1","result":null}"#)
            .unwrap()
            .unwrap();
        let without = decode(r#"{"type":3,"invocationId":"1"}"#).unwrap().unwrap();
        assert_eq!(
            with_null,
            HubMessage::Completion(Completion::result("1", json("null")))
        );
        assert_eq!(without, HubMessage::Completion(Completion::no_result("1")));
        assert_eq!(
            decode(r#"{"type":3,"invocationId":"1","result":1,"error":"e"}"#),
            Err(ProtocolError::ResultAndError)
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        assert_eq!(
            decode(r#"{"type":1,"arguments":[]}"#),
            Err(ProtocolError::MissingField {
                kind: "Invocation",
                field: "target"
            })
        );
        assert_eq!(
            decode(r#"{"type":1,"target":"x"}"#),
            Err(ProtocolError::MissingField {
                kind: "Invocation",
                field: "arguments"
            })
        );
        assert_eq!(
            decode(r#"{"type":2,"invocationId":"1"}"#),
            Err(ProtocolError::MissingField {
                kind: "StreamItem",
                field: "item"
            })
        );
        assert_eq!(
            decode(r#"{"type":4,"target":"x","arguments":[]}"#),
            Err(ProtocolError::MissingField {
                kind: "StreamInvocation",
                field: "invocationId"
            })
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for text in [
            "",
            "{",
            "[]",
            "1",
            r#"{"type":1,"target":1,"arguments":[]}"#,
            "{\"type\":6} x",
            "\u{0}",
        ] {
            assert!(decode(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let message =
            decode(r#"{"type":1,"target":"A\u00e9\"","arguments":[],"headers":{"k\n":"v"}}"#)
                .unwrap()
                .unwrap();
        let HubMessage::Invocation(call) = message else {
            panic!()
        };
        assert_eq!(&*call.target, "Aé\"");
        assert_eq!(call.headers.get("k\n"), Some("v"));
        assert_eq!(call.invocation_id, None);
    }

    #[test]
    fn server_output_matches_asp_net() {
        assert_eq!(
            encode(&Invocation::new("ReceiveMessage", ("a",))),
            "{\"type\":1,\"target\":\"ReceiveMessage\",\"arguments\":[\"a\"]}\u{1e}"
        );
        assert_eq!(
            encode(&Completion::result("0", 42)),
            "{\"type\":3,\"invocationId\":\"0\",\"result\":42}\u{1e}"
        );
        assert_eq!(
            encode(&Completion::result("0", ())),
            "{\"type\":3,\"invocationId\":\"0\",\"result\":null}\u{1e}"
        );
        assert_eq!(
            encode(&Completion::<()>::error("0", "boom \"x\"")),
            "{\"type\":3,\"invocationId\":\"0\",\"error\":\"boom \\\"x\\\"\"}\u{1e}"
        );
        assert_eq!(
            encode(&StreamItem::new("1", [1, 2])),
            "{\"type\":2,\"invocationId\":\"1\",\"item\":[1,2]}\u{1e}"
        );
        assert_eq!(
            encode(&Completion::<()>::no_result("1")),
            "{\"type\":3,\"invocationId\":\"1\"}\u{1e}"
        );
        assert_eq!(encode(&HubMessage::<(), ()>::Ping), "{\"type\":6}\u{1e}");
        assert_eq!(encode(&Close::new()), "{\"type\":7}\u{1e}");
        assert_eq!(
            encode(&Close {
                error: None,
                allow_reconnect: true
            }),
            "{\"type\":7,\"allowReconnect\":true}\u{1e}"
        );
        assert_eq!(
            encode(&Close::with_error()),
            "{\"type\":7,\"error\":\"Connection closed with an error.\",\"allowReconnect\":true}\u{1e}"
        );
        assert_eq!(
            encode(&Sequence {
                sequence_id: 1 << 40
            }),
            "{\"type\":9,\"sequenceId\":1099511627776}\u{1e}"
        );
    }

    #[test]
    fn decoded_messages_round_trip() {
        let texts = [
            r#"{"type":1,"headers":{"a":"b"},"invocationId":"7","target":"Up","arguments":[1,"x"],"streamIds":["8","9"]}"#,
            r#"{"type":4,"invocationId":"7","target":"Down","arguments":[]}"#,
            r#"{"type":2,"invocationId":"8","item":{"k":null}}"#,
            r#"{"type":3,"invocationId":"8","error":"bad"}"#,
            r#"{"type":5,"invocationId":"7"}"#,
            r#"{"type":7,"error":"x","allowReconnect":true}"#,
            r#"{"type":8,"sequenceId":3}"#,
        ];
        for text in texts {
            let message = decode(text).unwrap().unwrap();
            let encoded = encode(&message);
            assert_eq!(encoded.trim_end_matches('\u{1e}'), text);
        }
    }

    #[test]
    fn a_failed_encode_leaves_the_buffer_as_it_was() {
        struct Fails;
        impl serde::Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut out = b"before".to_vec();
        let message = Completion::result("1", Fails);
        assert!(JsonProtocol
            .encode(message.as_message_ref(), &mut out)
            .is_err());
        assert_eq!(out, b"before");
    }

    #[test]
    fn mismatched_raw_values_are_transcoded() {
        let msgpack = RawValue::from_msgpack(vec![0x92, 0x01, 0xa1, b'a']).unwrap();
        assert_eq!(
            encode(&Completion::result("1", msgpack)),
            "{\"type\":3,\"invocationId\":\"1\",\"result\":[1,\"a\"]}\u{1e}"
        );
    }
}
