//! The `messagepack` hub protocol.
//!
//! Every message is one MessagePack array behind a varint length prefix (the prefix is handled by
//! [`FrameDecoder`](super::FrameDecoder) on the way in and `write_length_prefix` on the way out).
//!
//! Decoding walks the array with a bounds-checked `Cursor` and never builds a value tree:
//! arguments, stream items and results become [`RawValue`]s that are slices of the received frame,
//! so `bin` and extension values (timestamps) pass through byte for byte, and strings become
//! zero-copy [`ByteString`]s. Skipping a value is iterative, so nesting depth costs no stack.
//!
//! Encoding writes the envelope with `rmp::encode` straight into the output buffer, in exactly the
//! shapes ASP.NET Core writes, then puts the length prefix in front of the payload.

use std::ops::Range;

use bytes::Bytes;
use bytestring::ByteString;
use rmp::Marker;

use super::framing::write_length_prefix;
use super::{
    Ack, Arguments, CancelInvocation, Close, Completion, CompletionOutcome, EncodeArguments,
    Format, Framing, Headers, HubMessage, HubProtocol, Invocation, MessageRef, MessageType,
    OutcomeRef, RawValue, Sequence, StreamInvocation, StreamItem, TransferFormat,
};
use crate::ProtocolError;

/// Completion result kind: an error text follows.
const ERROR_RESULT: u64 = 1;
/// Completion result kind: no result (the end of a stream).
const VOID_RESULT: u64 = 2;
/// Completion result kind: a result follows (possibly nil).
const NON_VOID_RESULT: u64 = 3;

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
    fn decode(&self, frame: Bytes) -> Result<Option<HubMessage>, ProtocolError> {
        decode_message(&frame)
    }
    fn encode(&self, message: MessageRef<'_>, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let start = out.len();
        let result = write_framed(message, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// Returns the offset just past the MessagePack value that starts at `offset`.
///
/// Iterative (a count of values still to skip, no recursion) and bounds-checked: any input gives an
/// error or an offset `<= bytes.len()`, never a panic.
pub(crate) fn skip_value(bytes: &[u8], offset: usize) -> Result<usize, ProtocolError> {
    let mut cursor = Cursor::at(bytes, offset)?;
    cursor.skip(1)?;
    Ok(cursor.pos)
}

// ----- decoding -----

fn truncated() -> ProtocolError {
    ProtocolError::msgpack("the message ends in the middle of a value")
}

/// A read position in one frame. Every read checks the bounds; `pos <= bytes.len()` always holds.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at(bytes: &'a [u8], pos: usize) -> Result<Self, ProtocolError> {
        if pos > bytes.len() {
            return Err(truncated());
        }
        Ok(Cursor { bytes, pos })
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Consumes `len` bytes and returns where they are.
    fn take(&mut self, len: usize) -> Result<Range<usize>, ProtocolError> {
        if len > self.remaining() {
            return Err(truncated());
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..self.pos)
    }

    /// Consumes `N` bytes and returns them.
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let range = self.take(N)?;
        self.bytes
            .get(range)
            .and_then(|slice| slice.try_into().ok())
            .ok_or_else(truncated)
    }

    fn marker(&mut self) -> Result<Marker, ProtocolError> {
        let [byte] = self.fixed::<1>()?;
        Ok(Marker::from_u8(byte))
    }

    fn len8(&mut self) -> Result<usize, ProtocolError> {
        Ok(usize::from(u8::from_be_bytes(self.fixed()?)))
    }

    fn len16(&mut self) -> Result<usize, ProtocolError> {
        Ok(usize::from(u16::from_be_bytes(self.fixed()?)))
    }

    fn len32(&mut self) -> Result<usize, ProtocolError> {
        usize::try_from(u32::from_be_bytes(self.fixed()?)).map_err(|_| truncated())
    }

    /// If `marker` starts a string, reads its length and returns where its UTF-8 bytes are.
    fn str_body(&mut self, marker: Marker) -> Result<Option<Range<usize>>, ProtocolError> {
        let len = match marker {
            Marker::FixStr(len) => usize::from(len),
            Marker::Str8 => self.len8()?,
            Marker::Str16 => self.len16()?,
            Marker::Str32 => self.len32()?,
            _ => return Ok(None),
        };
        self.take(len).map(Some)
    }

    /// If `marker` starts an array, reads its element count (checked against the bytes left).
    fn array_len(&mut self, marker: Marker) -> Result<Option<usize>, ProtocolError> {
        let len = match marker {
            Marker::FixArray(len) => usize::from(len),
            Marker::Array16 => self.len16()?,
            Marker::Array32 => self.len32()?,
            _ => return Ok(None),
        };
        // Every element takes at least one byte.
        if len > self.remaining() {
            return Err(truncated());
        }
        Ok(Some(len))
    }

    /// If `marker` starts a map, reads its entry count (checked against the bytes left).
    fn map_len(&mut self, marker: Marker) -> Result<Option<usize>, ProtocolError> {
        let len = match marker {
            Marker::FixMap(len) => usize::from(len),
            Marker::Map16 => self.len16()?,
            Marker::Map32 => self.len32()?,
            _ => return Ok(None),
        };
        // Every key and every value takes at least one byte.
        if len > self.remaining() / 2 {
            return Err(truncated());
        }
        Ok(Some(len))
    }

    /// If `marker` starts an integer (any width, signed or not), reads it.
    fn integer(&mut self, marker: Marker) -> Result<Option<i128>, ProtocolError> {
        Ok(Some(match marker {
            Marker::FixPos(n) => i128::from(n),
            Marker::FixNeg(n) => i128::from(n),
            Marker::U8 => i128::from(u8::from_be_bytes(self.fixed()?)),
            Marker::U16 => i128::from(u16::from_be_bytes(self.fixed()?)),
            Marker::U32 => i128::from(u32::from_be_bytes(self.fixed()?)),
            Marker::U64 => i128::from(u64::from_be_bytes(self.fixed()?)),
            Marker::I8 => i128::from(i8::from_be_bytes(self.fixed()?)),
            Marker::I16 => i128::from(i16::from_be_bytes(self.fixed()?)),
            Marker::I32 => i128::from(i32::from_be_bytes(self.fixed()?)),
            Marker::I64 => i128::from(i64::from_be_bytes(self.fixed()?)),
            _ => return Ok(None),
        }))
    }

    /// Skips `count` whole values, without recursion.
    fn skip(&mut self, count: usize) -> Result<(), ProtocolError> {
        // Values still to skip: the ones asked for plus the elements of open arrays and maps.
        let mut pending = count;
        while pending > 0 {
            pending -= 1;
            let marker = self.marker()?;
            // Values inside this one (array elements, map keys and values) that must be skipped too.
            let mut nested = 0;
            match marker {
                Marker::FixPos(_)
                | Marker::FixNeg(_)
                | Marker::Null
                | Marker::True
                | Marker::False => {}
                Marker::U8 | Marker::I8 => {
                    self.take(1)?;
                }
                Marker::U16 | Marker::I16 => {
                    self.take(2)?;
                }
                Marker::U32 | Marker::I32 | Marker::F32 => {
                    self.take(4)?;
                }
                Marker::U64 | Marker::I64 | Marker::F64 => {
                    self.take(8)?;
                }
                Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                    self.str_body(marker)?;
                }
                Marker::Bin8 => {
                    let len = self.len8()?;
                    self.take(len)?;
                }
                Marker::Bin16 => {
                    let len = self.len16()?;
                    self.take(len)?;
                }
                Marker::Bin32 => {
                    let len = self.len32()?;
                    self.take(len)?;
                }
                // Extensions: a type byte, then the data.
                Marker::FixExt1 => {
                    self.take(1 + 1)?;
                }
                Marker::FixExt2 => {
                    self.take(1 + 2)?;
                }
                Marker::FixExt4 => {
                    self.take(1 + 4)?;
                }
                Marker::FixExt8 => {
                    self.take(1 + 8)?;
                }
                Marker::FixExt16 => {
                    self.take(1 + 16)?;
                }
                Marker::Ext8 => {
                    let len = self.len8()?;
                    self.take_ext(len)?;
                }
                Marker::Ext16 => {
                    let len = self.len16()?;
                    self.take_ext(len)?;
                }
                Marker::Ext32 => {
                    let len = self.len32()?;
                    self.take_ext(len)?;
                }
                Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                    nested = self.array_len(marker)?.unwrap_or(0);
                }
                Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                    // `map_len` bounds the count by half the bytes left, so this cannot overflow.
                    nested = self
                        .map_len(marker)?
                        .unwrap_or(0)
                        .checked_mul(2)
                        .ok_or_else(truncated)?;
                }
                Marker::Reserved => {
                    return Err(ProtocolError::msgpack("0xc1 is not a MessagePack value"))
                }
            }
            pending = pending.checked_add(nested).ok_or_else(truncated)?;
            // Every pending value takes at least one byte: fail now rather than after a long walk.
            if pending > self.remaining() {
                return Err(truncated());
            }
        }
        Ok(())
    }

    /// Consumes an extension's type byte and `len` data bytes.
    fn take_ext(&mut self, len: usize) -> Result<Range<usize>, ProtocolError> {
        self.take(len.checked_add(1).ok_or_else(truncated)?)
    }
}

/// Decodes one frame payload (no length prefix).
fn decode_message(frame: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
    let mut cursor = Cursor::at(frame, 0)?;
    let marker = cursor.marker()?;
    let len = cursor
        .array_len(marker)?
        .ok_or_else(|| ProtocolError::msgpack("a hub message must be a MessagePack array"))?;
    if len == 0 {
        return Err(ProtocolError::MissingType);
    }
    let marker = cursor.marker()?;
    let number = cursor.integer(marker)?.ok_or(ProtocolError::MissingType)?;
    // Unknown types are ignored (later protocol versions may add some).
    let Some(message_type) = u64::try_from(number)
        .ok()
        .and_then(MessageType::from_number)
    else {
        return Ok(None);
    };
    let mut reader = MessageReader {
        frame,
        cursor,
        kind: message_type.name(),
        left: len - 1,
    };
    let message = match message_type {
        MessageType::Invocation => reader.invocation()?,
        MessageType::StreamItem => reader.stream_item()?,
        MessageType::Completion => reader.completion()?,
        MessageType::StreamInvocation => reader.stream_invocation()?,
        MessageType::CancelInvocation => reader.cancel_invocation()?,
        MessageType::Ping => HubMessage::Ping,
        MessageType::Close => reader.close()?,
        MessageType::Ack => HubMessage::Ack(Ack {
            sequence_id: reader.unsigned("sequenceId")?,
        }),
        MessageType::Sequence => HubMessage::Sequence(Sequence {
            sequence_id: reader.unsigned("sequenceId")?,
        }),
    };
    reader.finish()?;
    Ok(Some(message))
}

/// Reads the elements of one message's envelope array in order.
///
/// The methods without a `read_` prefix each consume one envelope element and fail with
/// [`ProtocolError::MissingField`] when the array has no more; the `read_` methods read a value at
/// the cursor (also inside nested maps and arrays).
struct MessageReader<'a> {
    frame: &'a Bytes,
    cursor: Cursor<'a>,
    /// The message kind, for errors.
    kind: &'static str,
    /// Envelope elements not consumed yet.
    left: usize,
}

impl MessageReader<'_> {
    fn invocation(&mut self) -> Result<HubMessage, ProtocolError> {
        let headers = self.headers()?;
        // nil and "" both mean a non-blocking invocation.
        let invocation_id = self
            .optional_string("invocationId")?
            .filter(|id| !id.is_empty());
        let target = self.string("target")?;
        let arguments = self.arguments()?;
        let stream_ids = self.optional_stream_ids()?;
        Ok(HubMessage::Invocation(Invocation {
            headers,
            invocation_id,
            target,
            arguments,
            stream_ids,
        }))
    }

    /// The stream ids of an (stream) invocation: JS clients leave the element out when there are
    /// none (5-element arrays).
    fn optional_stream_ids(&mut self) -> Result<Vec<ByteString>, ProtocolError> {
        if self.left > 0 {
            self.stream_ids()
        } else {
            Ok(Vec::new())
        }
    }

    fn stream_invocation(&mut self) -> Result<HubMessage, ProtocolError> {
        let headers = self.headers()?;
        let invocation_id = self.string("invocationId")?;
        let target = self.string("target")?;
        let arguments = self.arguments()?;
        let stream_ids = self.optional_stream_ids()?;
        Ok(HubMessage::StreamInvocation(StreamInvocation {
            headers,
            invocation_id,
            target,
            arguments,
            stream_ids,
        }))
    }

    fn stream_item(&mut self) -> Result<HubMessage, ProtocolError> {
        let headers = self.headers()?;
        let invocation_id = self.string("invocationId")?;
        let item = self.value("item")?;
        Ok(HubMessage::StreamItem(StreamItem {
            headers,
            invocation_id,
            item,
        }))
    }

    fn completion(&mut self) -> Result<HubMessage, ProtocolError> {
        let headers = self.headers()?;
        let invocation_id = self.string("invocationId")?;
        let outcome = match self.unsigned("resultKind")? {
            // An empty error text is still an error.
            ERROR_RESULT => CompletionOutcome::Error(self.string("error")?),
            VOID_RESULT => CompletionOutcome::NoResult,
            NON_VOID_RESULT => CompletionOutcome::Result(self.value("result")?),
            kind => return Err(ProtocolError::InvalidResultKind(kind)),
        };
        Ok(HubMessage::Completion(Completion {
            headers,
            invocation_id,
            outcome,
        }))
    }

    fn cancel_invocation(&mut self) -> Result<HubMessage, ProtocolError> {
        let headers = self.headers()?;
        let invocation_id = self.string("invocationId")?;
        Ok(HubMessage::CancelInvocation(CancelInvocation {
            headers,
            invocation_id,
        }))
    }

    fn close(&mut self) -> Result<HubMessage, ProtocolError> {
        // An empty error text is still an error, as in ASP.NET Core.
        let error = self.optional_string("error")?;
        // JS clients send only `[7, nil]`.
        let allow_reconnect = if self.left > 0 {
            self.boolean("allowReconnect")?
        } else {
            false
        };
        Ok(HubMessage::Close(Close {
            error,
            allow_reconnect,
        }))
    }

    /// Skips the elements this protocol version does not know and checks the frame ends there.
    fn finish(mut self) -> Result<(), ProtocolError> {
        self.cursor.skip(self.left)?;
        if self.cursor.remaining() != 0 {
            return Err(ProtocolError::msgpack(
                "trailing bytes after the message array",
            ));
        }
        Ok(())
    }

    // ----- envelope elements -----

    /// Consumes one envelope element, which the message needs for `field`.
    fn next(&mut self, field: &'static str) -> Result<(), ProtocolError> {
        if self.left == 0 {
            return Err(ProtocolError::MissingField {
                kind: self.kind,
                field,
            });
        }
        self.left -= 1;
        Ok(())
    }

    fn invalid(&self, field: &'static str, expected: &'static str) -> ProtocolError {
        ProtocolError::InvalidField {
            kind: self.kind,
            field,
            expected,
        }
    }

    /// A str→str map; `{}` gives headers that allocate nothing.
    fn headers(&mut self) -> Result<Headers, ProtocolError> {
        self.next("headers")?;
        let marker = self.cursor.marker()?;
        let len = self
            .cursor
            .map_len(marker)?
            .ok_or_else(|| self.invalid("headers", "a map of strings to strings"))?;
        let mut headers = Headers::new();
        for _ in 0..len {
            let name = self.read_string("headers")?;
            let value = self.read_string("headers")?;
            headers.insert(name, value);
        }
        Ok(headers)
    }

    /// A string.
    fn string(&mut self, field: &'static str) -> Result<ByteString, ProtocolError> {
        self.next(field)?;
        self.read_string(field)
    }

    /// A string (possibly empty) or nil.
    fn optional_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<ByteString>, ProtocolError> {
        self.next(field)?;
        let marker = self.cursor.marker()?;
        if marker == Marker::Null {
            return Ok(None);
        }
        match self.cursor.str_body(marker)? {
            Some(range) => self.byte_string(range, field).map(Some),
            None => Err(self.invalid(field, "a string or nil")),
        }
    }

    fn value(&mut self, field: &'static str) -> Result<RawValue, ProtocolError> {
        self.next(field)?;
        self.read_value()
    }

    fn arguments(&mut self) -> Result<Arguments, ProtocolError> {
        self.next("arguments")?;
        let marker = self.cursor.marker()?;
        let len = self
            .cursor
            .array_len(marker)?
            .ok_or_else(|| self.invalid("arguments", "an array"))?;
        // `len` is at most the bytes left in the frame.
        let mut arguments = Vec::with_capacity(len);
        for _ in 0..len {
            arguments.push(self.read_value()?);
        }
        Ok(Arguments::from(arguments))
    }

    fn stream_ids(&mut self) -> Result<Vec<ByteString>, ProtocolError> {
        self.next("streamIds")?;
        let marker = self.cursor.marker()?;
        let len = self
            .cursor
            .array_len(marker)?
            .ok_or_else(|| self.invalid("streamIds", "an array of strings"))?;
        // `len` is at most the bytes left in the frame.
        let mut stream_ids = Vec::with_capacity(len);
        for _ in 0..len {
            stream_ids.push(self.read_string("streamIds")?);
        }
        Ok(stream_ids)
    }

    /// A non-negative integer of any width.
    fn unsigned(&mut self, field: &'static str) -> Result<u64, ProtocolError> {
        self.next(field)?;
        let marker = self.cursor.marker()?;
        self.cursor
            .integer(marker)?
            .and_then(|number| u64::try_from(number).ok())
            .ok_or_else(|| self.invalid(field, "a non-negative integer"))
    }

    fn boolean(&mut self, field: &'static str) -> Result<bool, ProtocolError> {
        self.next(field)?;
        match self.cursor.marker()? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(self.invalid(field, "a boolean")),
        }
    }

    // ----- values at the cursor -----

    /// A string (not nil).
    ///
    /// Empty strings are accepted: ASP.NET Core rejects them for ids, targets, header names and
    /// values and stream ids, but an empty string does not break the framing, and the message
    /// model (and the JSON codec) allow them.
    fn read_string(&mut self, field: &'static str) -> Result<ByteString, ProtocolError> {
        let marker = self.cursor.marker()?;
        match self.cursor.str_body(marker)? {
            Some(range) => self.byte_string(range, field),
            None => Err(self.invalid(field, "a string")),
        }
    }

    /// One value of any kind, as a zero-copy slice of the frame.
    fn read_value(&mut self) -> Result<RawValue, ProtocolError> {
        let start = self.cursor.pos;
        self.cursor.skip(1)?;
        let value = self.frame.slice(start..self.cursor.pos);
        Ok(RawValue::new_unchecked(value, Format::MessagePack))
    }

    /// The string at `range` of the frame, zero-copy, after checking it is UTF-8.
    fn byte_string(
        &self,
        range: Range<usize>,
        field: &'static str,
    ) -> Result<ByteString, ProtocolError> {
        ByteString::try_from(self.frame.slice(range)).map_err(|err| {
            ProtocolError::msgpack(format_args!(
                "the '{field}' field of the {} message is not valid UTF-8: {err}",
                self.kind
            ))
        })
    }
}

// ----- encoding -----

/// Appends `varint(len) + payload` for `message`. On error `out` may hold a partial message.
fn write_framed(message: MessageRef<'_>, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let start = out.len();
    // Room for a one-byte prefix: enough for payloads under 128 bytes, the usual case.
    out.push(0);
    write_payload(message, out)?;
    let payload_len = out.len() - start - 1;
    let prefix_at = out.len();
    write_length_prefix(payload_len, out)?;
    let prefix_len = out.len() - prefix_at;
    if prefix_len == 1 {
        out[start] = out[prefix_at];
        out.truncate(prefix_at);
    } else {
        // Move the prefix (2–5 bytes) from the end into the placeholder: one move of the payload,
        // no second buffer.
        let mut prefix = [0u8; 5];
        for (slot, byte) in prefix.iter_mut().zip(out.drain(prefix_at..)) {
            *slot = byte;
        }
        out.splice(start..start + 1, prefix.into_iter().take(prefix_len));
    }
    Ok(())
}

/// Appends the MessagePack array of `message`, shaped as ASP.NET Core writes it.
fn write_payload(message: MessageRef<'_>, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    match message {
        MessageRef::Invocation {
            headers,
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            write_array_len(out, 6)?;
            write_message_type(out, MessageType::Invocation)?;
            write_headers(out, headers)?;
            // No id (or an empty one, which decodes as none) is written as nil: a non-blocking call.
            match invocation_id {
                Some(id) if !id.is_empty() => write_str(out, id)?,
                _ => write_nil(out)?,
            }
            write_str(out, target)?;
            write_arguments(out, arguments)?;
            write_stream_ids(out, stream_ids)
        }
        MessageRef::StreamItem {
            headers,
            invocation_id,
            item,
        } => {
            write_array_len(out, 4)?;
            write_message_type(out, MessageType::StreamItem)?;
            write_headers(out, headers)?;
            write_str(out, invocation_id)?;
            item.encode_msgpack(out)
        }
        MessageRef::Completion {
            headers,
            invocation_id,
            outcome,
        } => {
            let len = match outcome {
                OutcomeRef::NoResult => 4,
                OutcomeRef::Result(_) | OutcomeRef::Error(_) => 5,
            };
            write_array_len(out, len)?;
            write_message_type(out, MessageType::Completion)?;
            write_headers(out, headers)?;
            write_str(out, invocation_id)?;
            match outcome {
                OutcomeRef::Error(error) => {
                    write_uint(out, ERROR_RESULT)?;
                    write_str(out, error)
                }
                OutcomeRef::NoResult => write_uint(out, VOID_RESULT),
                OutcomeRef::Result(value) => {
                    write_uint(out, NON_VOID_RESULT)?;
                    value.encode_msgpack(out)
                }
            }
        }
        MessageRef::StreamInvocation {
            headers,
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            write_array_len(out, 6)?;
            write_message_type(out, MessageType::StreamInvocation)?;
            write_headers(out, headers)?;
            write_str(out, invocation_id)?;
            write_str(out, target)?;
            write_arguments(out, arguments)?;
            write_stream_ids(out, stream_ids)
        }
        MessageRef::CancelInvocation {
            headers,
            invocation_id,
        } => {
            write_array_len(out, 3)?;
            write_message_type(out, MessageType::CancelInvocation)?;
            write_headers(out, headers)?;
            write_str(out, invocation_id)
        }
        MessageRef::Ping => {
            write_array_len(out, 1)?;
            write_message_type(out, MessageType::Ping)
        }
        MessageRef::Close {
            error,
            allow_reconnect,
        } => {
            write_array_len(out, 3)?;
            write_message_type(out, MessageType::Close)?;
            // An empty error stays a string, so it decodes as it was (ASP.NET Core would write nil;
            // clients treat both as no error).
            match error {
                Some(error) => write_str(out, error)?,
                None => write_nil(out)?,
            }
            rmp::encode::write_bool(out, allow_reconnect).map_err(write_error)
        }
        MessageRef::Ack { sequence_id } => {
            write_array_len(out, 2)?;
            write_message_type(out, MessageType::Ack)?;
            write_uint(out, sequence_id)
        }
        MessageRef::Sequence { sequence_id } => {
            write_array_len(out, 2)?;
            write_message_type(out, MessageType::Sequence)?;
            write_uint(out, sequence_id)
        }
    }
}

/// Writing into a `Vec` cannot fail, but `rmp` reports I/O errors generically.
fn write_error(err: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Serialize {
        format: Format::MessagePack,
        message: err.to_string(),
    }
}

/// A MessagePack length field; anything over `u32::MAX` could not fit a message anyway.
fn wire_len(len: usize) -> Result<u32, ProtocolError> {
    u32::try_from(len).map_err(|_| ProtocolError::EncodedMessageTooLarge)
}

fn write_array_len(out: &mut Vec<u8>, len: usize) -> Result<(), ProtocolError> {
    rmp::encode::write_array_len(out, wire_len(len)?)
        .map(|_| ())
        .map_err(write_error)
}

fn write_uint(out: &mut Vec<u8>, value: u64) -> Result<(), ProtocolError> {
    rmp::encode::write_uint(out, value)
        .map(|_| ())
        .map_err(write_error)
}

fn write_message_type(out: &mut Vec<u8>, message_type: MessageType) -> Result<(), ProtocolError> {
    write_uint(out, u64::from(message_type.number()))
}

fn write_str(out: &mut Vec<u8>, text: &str) -> Result<(), ProtocolError> {
    wire_len(text.len())?;
    rmp::encode::write_str(out, text).map_err(write_error)
}

fn write_nil(out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    rmp::encode::write_nil(out).map_err(write_error)
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) -> Result<(), ProtocolError> {
    rmp::encode::write_map_len(out, wire_len(headers.len())?).map_err(write_error)?;
    for (name, value) in headers.iter() {
        write_str(out, name)?;
        write_str(out, value)?;
    }
    Ok(())
}

fn write_arguments(
    out: &mut Vec<u8>,
    arguments: &dyn EncodeArguments,
) -> Result<(), ProtocolError> {
    let count = arguments.count();
    write_array_len(out, count)?;
    let mut written = 0usize;
    arguments.try_for_each(&mut |argument| {
        written += 1;
        argument.encode_msgpack(out)
    })?;
    if written != count {
        return Err(write_error(format_args!(
            "the arguments announced {count} values but produced {written}"
        )));
    }
    Ok(())
}

fn write_stream_ids(out: &mut Vec<u8>, stream_ids: &[ByteString]) -> Result<(), ProtocolError> {
    write_array_len(out, stream_ids.len())?;
    for id in stream_ids {
        write_str(out, id)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use proptest::prelude::*;
    use serde::{Serialize, Serializer};

    use super::*;
    use crate::protocol::{EncodeMessage, FrameDecoder};

    fn decode(payload: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
        MessagePackProtocol.decode(Bytes::copy_from_slice(payload))
    }

    fn decoded(payload: &[u8]) -> HubMessage {
        decode(payload).unwrap().expect("a known message type")
    }

    /// `payload` behind its length prefix.
    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_length_prefix(payload.len(), &mut out).unwrap();
        out.extend_from_slice(payload);
        out
    }

    fn encode(message: &dyn EncodeMessage) -> Vec<u8> {
        MessagePackProtocol
            .encode_to_bytes(message)
            .unwrap()
            .to_vec()
    }

    /// Splits framed bytes with the real frame decoder.
    fn frames(bytes: &[u8]) -> Vec<Bytes> {
        let mut decoder = FrameDecoder::new(Framing::LengthPrefixed, 1 << 20);
        decoder.push(Bytes::copy_from_slice(bytes));
        let mut frames = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            frames.push(frame);
        }
        assert!(!decoder.has_partial_frame());
        frames
    }

    fn raw(bytes: &[u8]) -> RawValue {
        RawValue::from_msgpack(bytes.to_vec()).unwrap()
    }

    fn value<T: Serialize>(value: &T) -> RawValue {
        RawValue::encode(value, Format::MessagePack).unwrap()
    }

    fn round_trip(message: &HubMessage) {
        let bytes = encode(message);
        let frames = frames(&bytes);
        assert_eq!(frames.len(), 1, "{message:?}");
        let back = MessagePackProtocol.decode(frames[0].clone()).unwrap();
        assert_eq!(back.as_ref(), Some(message), "{bytes:02x?}");
    }

    fn headers() -> Headers {
        [("trace-id", "abc"), ("x", "ü")].into_iter().collect()
    }

    // ----- the spec's examples -----

    #[test]
    fn spec_examples_are_written_byte_for_byte() {
        let void = [0x07, 0x95, 0x03, 0x80, 0xa1, 0x30, 0x03, 0xc0];
        assert_eq!(encode(&Completion::result("0", ())), void);
        assert_eq!(encode(&Completion::result("0", raw(&[0xc0]))), void);
        assert_eq!(encode(&Completion::result("0", None::<i32>)), void);

        let upload_end = [0x06, 0x94, 0x03, 0x80, 0xa1, 0x31, 0x02];
        assert_eq!(encode(&Completion::<RawValue>::no_result("1")), upload_end);

        let close = [0x04, 0x93, 0x07, 0xc0, 0xc3];
        let reconnect = Close {
            error: None,
            allow_reconnect: true,
        };
        assert_eq!(encode(&reconnect), close);

        let ping = [0x02, 0x91, 0x06];
        assert_eq!(encode(&MessageRef::Ping), ping);
        assert_eq!(encode(&HubMessage::<Arguments, RawValue>::Ping), ping);
    }

    #[test]
    fn spec_examples_decode() {
        let HubMessage::Completion(void) = decoded(&[0x95, 0x03, 0x80, 0xa1, 0x30, 0x03, 0xc0])
        else {
            panic!()
        };
        assert_eq!(void.invocation_id, "0");
        assert!(void.headers.is_empty());
        assert!(matches!(&void.outcome, CompletionOutcome::Result(v) if v.is_null()));
        assert_eq!(
            decoded(&[0x94, 0x03, 0x80, 0xa1, 0x31, 0x02]),
            HubMessage::Completion(Completion::no_result("1"))
        );
        assert_eq!(
            decoded(&[0x93, 0x07, 0xc0, 0xc3]),
            HubMessage::Close(Close {
                error: None,
                allow_reconnect: true
            })
        );
        assert_eq!(decoded(&[0x91, 0x06]), HubMessage::Ping);
    }

    // ----- invocations -----

    #[test]
    fn js_invocation_with_five_six_or_seven_elements() {
        // [1, {}, "0", "Echo", ["hi"]]: JS without upload streams.
        let five = [
            0x95, 0x01, 0x80, 0xa1, 0x30, 0xa4, b'E', b'c', b'h', b'o', 0x91, 0xa2, b'h', b'i',
        ];
        let HubMessage::Invocation(call) = decoded(&five) else {
            panic!()
        };
        assert_eq!(call.invocation_id.as_deref(), Some("0"));
        assert_eq!(call.target, "Echo");
        assert_eq!(call.arguments.len(), 1);
        assert_eq!(
            call.arguments
                .get(0)
                .unwrap()
                .deserialize::<String>()
                .unwrap(),
            "hi"
        );
        assert!(call.stream_ids.is_empty());

        // [1, {}, "0", "Sum", [], ["1"]]
        let six = [
            0x96, 0x01, 0x80, 0xa1, 0x30, 0xa3, b'S', b'u', b'm', 0x90, 0x91, 0xa1, 0x31,
        ];
        let HubMessage::Invocation(call) = decoded(&six) else {
            panic!()
        };
        assert_eq!(call.target, "Sum");
        assert!(call.arguments.is_empty());
        assert_eq!(call.stream_ids, vec![ByteString::from("1")]);

        // Seven elements: the extra one (here a map) is ignored.
        let mut seven = six.to_vec();
        seven[0] = 0x97;
        seven.extend_from_slice(&[0x81, 0xa1, b'k', 0x92, 0x01, 0xc3]);
        assert_eq!(decoded(&seven), HubMessage::Invocation(call.clone()));

        // StreamInvocation follows the same 5/6 rule.
        let mut stream = five.to_vec();
        stream[1] = 0x04;
        let HubMessage::StreamInvocation(call) = decoded(&stream) else {
            panic!()
        };
        assert_eq!((&*call.invocation_id, &*call.target), ("0", "Echo"));
        assert!(call.stream_ids.is_empty());
    }

    #[test]
    fn invocation_id_nil_empty_or_missing() {
        // [1, {}, nil, "T", []]
        let HubMessage::Invocation(call) = decoded(&[0x95, 0x01, 0x80, 0xc0, 0xa1, b'T', 0x90])
        else {
            panic!()
        };
        assert_eq!(call.invocation_id, None);
        // [1, {}, "", "T", []]
        let HubMessage::Invocation(call) = decoded(&[0x95, 0x01, 0x80, 0xa0, 0xa1, b'T', 0x90])
        else {
            panic!()
        };
        assert_eq!(call.invocation_id, None);
        // [1, {}]: too short.
        assert_eq!(
            decode(&[0x92, 0x01, 0x80]),
            Err(ProtocolError::MissingField {
                kind: "Invocation",
                field: "invocationId"
            })
        );
        // [1, {}, nil, "T"]: no arguments.
        assert_eq!(
            decode(&[0x94, 0x01, 0x80, 0xc0, 0xa1, b'T']),
            Err(ProtocolError::MissingField {
                kind: "Invocation",
                field: "arguments"
            })
        );
        // The id must be a string or nil.
        assert!(matches!(
            decode(&[0x95, 0x01, 0x80, 0x05, 0xa1, b'T', 0x90]),
            Err(ProtocolError::InvalidField {
                field: "invocationId",
                ..
            })
        ));
        // A StreamInvocation needs an id.
        assert!(matches!(
            decode(&[0x95, 0x04, 0x80, 0xc0, 0xa1, b'T', 0x90]),
            Err(ProtocolError::InvalidField {
                field: "invocationId",
                ..
            })
        ));
    }

    #[test]
    fn ids_targets_and_stream_ids_must_be_strings() {
        // nil or an integer as the target.
        for target in [0xc0, 0x01] {
            assert!(matches!(
                decode(&[0x95, 0x01, 0x80, 0xc0, target, 0x90]),
                Err(ProtocolError::InvalidField {
                    field: "target",
                    ..
                })
            ));
        }
        // nil or bin as a stream id, streamIds not an array.
        for tail in [&[0x91, 0xc0][..], &[0x91, 0xc4, 0x01, b'1'], &[0xc0]] {
            let mut bytes = vec![0x96, 0x01, 0x80, 0xc0, 0xa1, b'T', 0x90];
            bytes.extend_from_slice(tail);
            assert!(
                matches!(
                    decode(&bytes),
                    Err(ProtocolError::InvalidField {
                        field: "streamIds",
                        ..
                    })
                ),
                "{bytes:02x?}"
            );
        }
        // Arguments not an array.
        assert!(matches!(
            decode(&[0x95, 0x01, 0x80, 0xc0, 0xa1, b'T', 0xc0]),
            Err(ProtocolError::InvalidField {
                field: "arguments",
                ..
            })
        ));
        // StreamItem, Completion and CancelInvocation ids.
        for bytes in [
            &[0x94, 0x02, 0x80, 0xc0, 0x01][..],
            &[0x94, 0x03, 0x80, 0xc0, 0x02],
            &[0x93, 0x05, 0x80, 0x01],
        ] {
            assert!(
                matches!(
                    decode(bytes),
                    Err(ProtocolError::InvalidField {
                        field: "invocationId",
                        ..
                    })
                ),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn empty_strings_are_kept() {
        // ASP.NET Core rejects these; we accept them so every message the model can hold
        // round-trips (see `read_string`).
        // [4, {"": ""}, "", "", [], [""]]
        let HubMessage::StreamInvocation(call) =
            decoded(&[0x96, 0x04, 0x81, 0xa0, 0xa0, 0xa0, 0xa0, 0x90, 0x91, 0xa0])
        else {
            panic!()
        };
        assert_eq!(call.headers.get(""), Some(""));
        assert_eq!((&*call.invocation_id, &*call.target), ("", ""));
        assert_eq!(call.stream_ids, vec![ByteString::new()]);
        round_trip(&HubMessage::StreamInvocation(call));
    }

    #[test]
    fn strings_must_be_utf8() {
        // Target "\xff".
        assert!(matches!(
            decode(&[0x95, 0x01, 0x80, 0xc0, 0xa1, 0xff, 0x90]),
            Err(ProtocolError::InvalidMessagePack(_))
        ));
        // Header value "\xc3" (a truncated two-byte sequence).
        assert!(matches!(
            decode(&[0x93, 0x05, 0x81, 0xa1, b'k', 0xa1, 0xc3, 0xa1, b'1']),
            Err(ProtocolError::InvalidMessagePack(_))
        ));
        // Strings in str8/str16/str32 form are fine.
        let HubMessage::CancelInvocation(cancel) = decoded(&[0x93, 0x05, 0x80, 0xd9, 0x01, b'7'])
        else {
            panic!()
        };
        assert_eq!(cancel.invocation_id, "7");
        assert_eq!(
            decoded(&[0x93, 0x05, 0x80, 0xda, 0x00, 0x01, b'7']),
            HubMessage::CancelInvocation(cancel.clone())
        );
        assert_eq!(
            decoded(&[0x93, 0x05, 0x80, 0xdb, 0x00, 0x00, 0x00, 0x01, b'7']),
            HubMessage::CancelInvocation(cancel)
        );
    }

    // ----- headers -----

    #[test]
    fn headers_decode_in_order() {
        // [5, {"a": "1", "b": "2"}, "x"]
        let HubMessage::CancelInvocation(cancel) = decoded(&[
            0x93, 0x05, 0x82, 0xa1, b'a', 0xa1, b'1', 0xa1, b'b', 0xa1, b'2', 0xa1, b'x',
        ]) else {
            panic!()
        };
        assert_eq!(
            cancel.headers.iter().collect::<Vec<_>>(),
            vec![("a", "1"), ("b", "2")]
        );
        // map16 form.
        let HubMessage::CancelInvocation(again) = decoded(&[
            0x93, 0x05, 0xde, 0x00, 0x02, 0xa1, b'a', 0xa1, b'1', 0xa1, b'b', 0xa1, b'2', 0xa1,
            b'x',
        ]) else {
            panic!()
        };
        assert_eq!(again, cancel);
    }

    #[test]
    fn headers_must_map_strings_to_strings() {
        for map in [
            &[0x81, 0x01, 0xa1, b'v'][..],         // integer key
            &[0x81, 0xc0, 0xa1, b'v'],             // nil key
            &[0x81, 0xa1, b'k', 0x01],             // integer value
            &[0x81, 0xa1, b'k', 0xc0],             // nil value
            &[0x81, 0xc4, 0x01, b'k', 0xa1, b'v'], // bin key
            &[0xc0],                               // nil instead of a map
            &[0x90],                               // an array instead of a map
        ] {
            let mut bytes = vec![0x93, 0x05];
            bytes.extend_from_slice(map);
            bytes.extend_from_slice(&[0xa1, b'x']);
            assert!(
                matches!(
                    decode(&bytes),
                    Err(ProtocolError::InvalidField {
                        kind: "CancelInvocation",
                        field: "headers",
                        ..
                    })
                ),
                "{bytes:02x?}: {:?}",
                decode(&bytes)
            );
        }
    }

    // ----- completions -----

    #[test]
    fn completion_kinds() {
        // [3, {}, "1", 1, "boom"]
        assert_eq!(
            decoded(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x01, 0xa4, b'b', b'o', b'o', b'm']),
            HubMessage::Completion(Completion::error("1", "boom"))
        );
        // An empty error text is still an error.
        assert_eq!(
            decoded(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x01, 0xa0]),
            HubMessage::Completion(Completion::error("1", ""))
        );
        // Kind 1 without its error, or with nil.
        assert_eq!(
            decode(&[0x94, 0x03, 0x80, 0xa1, b'1', 0x01]),
            Err(ProtocolError::MissingField {
                kind: "Completion",
                field: "error"
            })
        );
        assert!(matches!(
            decode(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x01, 0xc0]),
            Err(ProtocolError::InvalidField { field: "error", .. })
        ));
        // Kind 2 with an extra element (ignored).
        assert_eq!(
            decoded(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x02, 0xc0]),
            HubMessage::Completion(Completion::no_result("1"))
        );
        // Kind 3 with a value, and without one.
        assert_eq!(
            decoded(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0x2a]),
            HubMessage::Completion(Completion::result("1", raw(&[0x2a])))
        );
        assert_eq!(
            decode(&[0x94, 0x03, 0x80, 0xa1, b'1', 0x03]),
            Err(ProtocolError::MissingField {
                kind: "Completion",
                field: "result"
            })
        );
        // Kind as a wider integer.
        assert_eq!(
            decoded(&[0x94, 0x03, 0x80, 0xa1, b'1', 0xd0, 0x02]),
            HubMessage::Completion(Completion::no_result("1"))
        );
        // Unknown kinds.
        assert_eq!(
            decode(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x04, 0xc0]),
            Err(ProtocolError::InvalidResultKind(4))
        );
        assert_eq!(
            decode(&[0x94, 0x03, 0x80, 0xa1, b'1', 0x00]),
            Err(ProtocolError::InvalidResultKind(0))
        );
        assert!(matches!(
            decode(&[0x94, 0x03, 0x80, 0xa1, b'1', 0xff]),
            Err(ProtocolError::InvalidField {
                field: "resultKind",
                ..
            })
        ));
        assert!(matches!(
            decode(&[0x94, 0x03, 0x80, 0xa1, b'1', 0xc0]),
            Err(ProtocolError::InvalidField {
                field: "resultKind",
                ..
            })
        ));
    }

    #[test]
    fn completion_outcomes_are_written_as_asp_net_does() {
        // [3, {}, "2", 1, "bad"]
        assert_eq!(
            encode(&Completion::<RawValue>::error("2", "bad")),
            framed(&[0x95, 0x03, 0x80, 0xa1, b'2', 0x01, 0xa3, b'b', b'a', b'd'])
        );
        // [3, {}, "2", 3, 42]
        assert_eq!(
            encode(&Completion::result("2", 42)),
            framed(&[0x95, 0x03, 0x80, 0xa1, b'2', 0x03, 0x2a])
        );
    }

    // ----- close, ping, ack, sequence, unknown types -----

    #[test]
    fn close_variants() {
        // JS: [7, nil]
        assert_eq!(
            decoded(&[0x92, 0x07, 0xc0]),
            HubMessage::Close(Close::new())
        );
        assert_eq!(
            decoded(&[0x93, 0x07, 0xa1, b'e', 0xc2]),
            HubMessage::Close(Close {
                error: Some("e".into()),
                allow_reconnect: false
            })
        );
        // An empty error is kept (ASP.NET Core treats it as an error too).
        assert_eq!(
            decoded(&[0x92, 0x07, 0xa0]),
            HubMessage::Close(Close {
                error: Some("".into()),
                allow_reconnect: false
            })
        );
        assert_eq!(
            decode(&[0x91, 0x07]),
            Err(ProtocolError::MissingField {
                kind: "Close",
                field: "error"
            })
        );
        assert!(matches!(
            decode(&[0x93, 0x07, 0xc0, 0xc0]),
            Err(ProtocolError::InvalidField {
                field: "allowReconnect",
                ..
            })
        ));
        assert!(matches!(
            decode(&[0x93, 0x07, 0x01, 0xc2]),
            Err(ProtocolError::InvalidField { field: "error", .. })
        ));

        // Written as [7, nil|str, bool].
        assert_eq!(encode(&Close::new()), [0x04, 0x93, 0x07, 0xc0, 0xc2]);
        let mut expected = vec![0x93, 0x07, 0xd9, 0x20];
        expected.extend_from_slice(Close::ERROR_TEXT.as_bytes());
        expected.push(0xc3);
        assert_eq!(encode(&Close::with_error()), framed(&expected));
        let empty = Close {
            error: Some("".into()),
            allow_reconnect: false,
        };
        assert_eq!(encode(&empty), [0x04, 0x93, 0x07, 0xa0, 0xc2]);
        round_trip(&HubMessage::Close(empty));
    }

    #[test]
    fn ack_and_sequence_accept_any_unsigned_width() {
        let cases: [(&[u8], u64); 6] = [
            (&[0x05], 5),
            (&[0xcc, 0xff], 255),
            (&[0xcd, 0x01, 0x00], 256),
            (&[0xce, 0x00, 0x01, 0x00, 0x00], 65_536),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                u64::MAX,
            ),
            (&[0xd3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07], 7),
        ];
        for (number, sequence_id) in cases {
            let mut ack = vec![0x92, 0x08];
            ack.extend_from_slice(number);
            assert_eq!(decoded(&ack), HubMessage::Ack(Ack { sequence_id }));
            let mut sequence = vec![0x92, 0x09];
            sequence.extend_from_slice(number);
            assert_eq!(
                decoded(&sequence),
                HubMessage::Sequence(Sequence { sequence_id })
            );
        }
        for bad in [
            &[0x92, 0x08, 0xff][..],
            &[0x92, 0x09, 0xc0],
            &[0x92, 0x08, 0xca, 0, 0, 0, 0],
        ] {
            assert!(matches!(
                decode(bad),
                Err(ProtocolError::InvalidField {
                    field: "sequenceId",
                    ..
                })
            ));
        }
        assert_eq!(
            decode(&[0x91, 0x08]),
            Err(ProtocolError::MissingField {
                kind: "Ack",
                field: "sequenceId"
            })
        );
        // Written in the smallest form.
        assert_eq!(encode(&Ack { sequence_id: 1 }), [0x03, 0x92, 0x08, 0x01]);
        assert_eq!(
            encode(&Sequence { sequence_id: 300 }),
            framed(&[0x92, 0x09, 0xcd, 0x01, 0x2c])
        );
        assert_eq!(
            encode(&Ack {
                sequence_id: 1 << 40
            }),
            framed(&[0x92, 0x08, 0xcf, 0, 0, 0x01, 0, 0, 0, 0, 0])
        );
    }

    #[test]
    fn type_numbers() {
        // Any integer encoding of a known type.
        assert_eq!(decoded(&[0x91, 0xcc, 0x06]), HubMessage::Ping);
        assert_eq!(decoded(&[0x91, 0xd1, 0x00, 0x06]), HubMessage::Ping);
        assert_eq!(
            decoded(&[0x91, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x06]),
            HubMessage::Ping
        );
        // Unknown types are ignored, whatever follows.
        assert_eq!(decode(&[0x91, 0x0a]), Ok(None));
        assert_eq!(decode(&[0x93, 0x63, 0xc1, 0xc1]), Ok(None));
        assert_eq!(decode(&[0x91, 0x00]), Ok(None));
        assert_eq!(decode(&[0x91, 0xff]), Ok(None));
        assert_eq!(
            decode(&[0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(None)
        );
        // No integer type.
        assert_eq!(decode(&[0x90]), Err(ProtocolError::MissingType));
        assert_eq!(decode(&[0x91, 0xa1, b'1']), Err(ProtocolError::MissingType));
        assert_eq!(decode(&[0x91, 0xc0]), Err(ProtocolError::MissingType));
        assert_eq!(
            decode(&[0x91, 0xca, 0x40, 0xc0, 0, 0]),
            Err(ProtocolError::MissingType)
        );
        // Not an array at all.
        assert!(matches!(
            decode(&[0x06]),
            Err(ProtocolError::InvalidMessagePack(_))
        ));
        assert!(matches!(
            decode(&[0x81, 0x06, 0x06]),
            Err(ProtocolError::InvalidMessagePack(_))
        ));
        assert!(matches!(
            decode(&[]),
            Err(ProtocolError::InvalidMessagePack(_))
        ));
    }

    #[test]
    fn extra_elements_are_skipped_but_trailing_bytes_are_rejected() {
        // [6, nil, [1, {"a": bin}]]
        assert_eq!(
            decoded(&[0x93, 0x06, 0xc0, 0x92, 0x01, 0x81, 0xa1, b'a', 0xc4, 0x01, 0x00]),
            HubMessage::Ping
        );
        // Extra elements must still be well-formed and complete.
        assert!(decode(&[0x92, 0x06, 0xc1]).is_err());
        assert!(decode(&[0x93, 0x06, 0xc0]).is_err());
        // Bytes after the array.
        assert_eq!(
            decode(&[0x91, 0x06, 0xc0]),
            Err(ProtocolError::msgpack(
                "trailing bytes after the message array"
            ))
        );
        assert!(decode(&[0x94, 0x03, 0x80, 0xa1, b'1', 0x02, 0x00]).is_err());
    }

    // ----- round trips -----

    #[test]
    fn every_message_kind_round_trips() {
        let mut invocation = Invocation::new(
            "Send",
            Arguments::from(vec![value(&"a"), value(&42), raw(&[0xc0])]),
        );
        round_trip(&HubMessage::Invocation(invocation.clone()));
        invocation.invocation_id = Some("7".into());
        invocation.headers = headers();
        invocation.stream_ids = vec!["8".into(), "9".into()];
        round_trip(&HubMessage::Invocation(invocation));
        round_trip(&HubMessage::Invocation(Invocation::new(
            "NoArgs",
            Arguments::new(),
        )));

        let mut stream = StreamInvocation::new(
            "3",
            "Counter",
            Arguments::from(vec![value(&10), value(&1.5)]),
        );
        round_trip(&HubMessage::StreamInvocation(stream.clone()));
        stream.headers = headers();
        stream.stream_ids = vec!["4".into()];
        round_trip(&HubMessage::StreamInvocation(stream));

        let mut item = StreamItem::new("3", value(&vec!["x", "y"]));
        round_trip(&HubMessage::StreamItem(item.clone()));
        item.headers = headers();
        round_trip(&HubMessage::StreamItem(item));

        for mut completion in [
            Completion::result("0", value(&())),
            Completion::result(
                "0",
                value(&serde_json::json!({"Name": "x", "Values": [1, 2]})),
            ),
            Completion::no_result("1"),
            Completion::error(
                "2",
                "An unexpected error occurred invoking 'Foo' on the server.",
            ),
        ] {
            round_trip(&HubMessage::Completion(completion.clone()));
            completion.headers = headers();
            round_trip(&HubMessage::Completion(completion));
        }

        let mut cancel = CancelInvocation::new("3");
        round_trip(&HubMessage::CancelInvocation(cancel.clone()));
        cancel.headers = headers();
        round_trip(&HubMessage::CancelInvocation(cancel));

        round_trip(&HubMessage::Ping);
        round_trip(&HubMessage::Close(Close::new()));
        round_trip(&HubMessage::Close(Close::with_error()));
        round_trip(&HubMessage::Close(Close {
            error: Some("bye".into()),
            allow_reconnect: false,
        }));
        for sequence_id in [
            0,
            1,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            round_trip(&HubMessage::Ack(Ack { sequence_id }));
            round_trip(&HubMessage::Sequence(Sequence { sequence_id }));
        }
    }

    #[test]
    fn non_blocking_ids_are_written_as_nil() {
        let call = Invocation::new("M", ());
        assert_eq!(
            encode(&call),
            [0x08, 0x96, 0x01, 0x80, 0xc0, 0xa1, b'M', 0x90, 0x90]
        );
        assert_eq!(encode(&call.clone().with_id("")), encode(&call));
        assert_eq!(
            encode(&call.with_id("5")),
            framed(&[0x96, 0x01, 0x80, 0xa1, b'5', 0xa1, b'M', 0x90, 0x90])
        );
    }

    #[test]
    fn length_prefixes_of_every_size_are_put_in_front() {
        // Payload lengths around the one/two/three-byte prefix boundaries.
        for payload_len in [126usize, 127, 128, 129, 16_383, 16_384, 16_385, 70_000] {
            // [2, {}, "1", str]: 1 + 1 + 1 + 2 bytes of envelope, then the string's header and body.
            let envelope = 5;
            let (header, text_len) = match payload_len - envelope {
                n if n <= 32 => (1, n - 1),
                n if n <= 257 => (2, n - 2),
                n if n <= 65_538 => (3, n - 3),
                n => (5, n - 5),
            };
            let text = "x".repeat(text_len);
            let item = StreamItem::new("1", text.as_str());
            // Something already in the buffer must stay untouched.
            let mut out = vec![0xaa, 0xbb];
            MessagePackProtocol
                .encode(item.as_message_ref(), &mut out)
                .unwrap();
            assert_eq!(&out[..2], [0xaa, 0xbb]);
            let mut prefix = Vec::new();
            write_length_prefix(payload_len, &mut prefix).unwrap();
            assert_eq!(out.len(), 2 + prefix.len() + payload_len, "header {header}");
            assert_eq!(&out[2..2 + prefix.len()], prefix);
            let frames = frames(&out[2..]);
            let HubMessage::StreamItem(back) = MessagePackProtocol
                .decode(frames[0].clone())
                .unwrap()
                .unwrap()
            else {
                panic!()
            };
            assert_eq!(back.item.deserialize::<String>().unwrap(), text);
        }
    }

    #[test]
    fn several_messages_append_to_one_buffer() {
        let mut out = Vec::new();
        MessagePackProtocol
            .encode(MessageRef::Ping, &mut out)
            .unwrap();
        MessagePackProtocol
            .encode(
                Completion::result("0", "x".repeat(300)).as_message_ref(),
                &mut out,
            )
            .unwrap();
        MessagePackProtocol
            .encode(Close::new().as_message_ref(), &mut out)
            .unwrap();
        let frames = frames(&out);
        assert_eq!(frames.len(), 3);
        assert_eq!(
            MessagePackProtocol.decode(frames[0].clone()).unwrap(),
            Some(HubMessage::Ping)
        );
        assert_eq!(
            MessagePackProtocol.decode(frames[2].clone()).unwrap(),
            Some(HubMessage::Close(Close::new()))
        );
    }

    // ----- raw values -----

    #[test]
    fn bin_and_timestamps_pass_through_byte_for_byte() {
        let bin: &[u8] = &[0xc4, 0x03, 0x01, 0x02, 0x03];
        let timestamp32: &[u8] = &[0xd6, 0xff, 0x00, 0x00, 0x00, 0x01];
        let timestamp64: &[u8] = &[0xd7, 0xff, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01];
        let timestamp96: &[u8] = &[
            0xc7, 0x0c, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02,
        ];
        let values = [bin, timestamp32, timestamp64, timestamp96];

        // [1, {}, "0", "Upload", [bin, ts32, ts64, ts96], []]
        let mut invocation = vec![0x96, 0x01, 0x80, 0xa1, b'0', 0xa6];
        invocation.extend_from_slice(b"Upload");
        invocation.push(0x94);
        for value in values {
            invocation.extend_from_slice(value);
        }
        invocation.push(0x90);

        let frame = Bytes::from(invocation.clone());
        let message = MessagePackProtocol.decode(frame.clone()).unwrap().unwrap();
        let HubMessage::Invocation(call) = &message else {
            panic!()
        };
        let mut offset = 6 + 6 + 1;
        for (argument, value) in call.arguments.iter().zip(values) {
            assert_eq!(argument.as_bytes(), value);
            // A slice of the frame, not a copy.
            assert_eq!(argument.as_bytes().as_ptr(), frame[offset..].as_ptr());
            offset += value.len();
        }
        assert_eq!(call.target.as_bytes().as_ptr(), frame[6..].as_ptr());
        assert_eq!(
            call.arguments
                .get(0)
                .unwrap()
                .deserialize::<serde_bytes_like::Bytes>()
                .unwrap()
                .0,
            [1, 2, 3]
        );

        // Encoding the decoded message gives back the same payload.
        assert_eq!(encode(&message), framed(&invocation));

        for value in values {
            // [2, {}, "1", value] and [3, {}, "1", 3, value]
            let mut item = vec![0x94, 0x02, 0x80, 0xa1, b'1'];
            item.extend_from_slice(value);
            let message = decoded(&item);
            let HubMessage::StreamItem(stream_item) = &message else {
                panic!()
            };
            assert_eq!(stream_item.item.as_bytes(), value);
            assert_eq!(&encode(&message)[1..], item);

            let mut completion = vec![0x95, 0x03, 0x80, 0xa1, b'1', 0x03];
            completion.extend_from_slice(value);
            let message = decoded(&completion);
            assert_eq!(&encode(&message)[1..], completion);
        }
    }

    /// Reads a msgpack `bin` through serde without another dependency.
    mod serde_bytes_like {
        pub(super) struct Bytes(pub(super) Vec<u8>);

        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                }
                deserializer.deserialize_bytes(Visitor)
            }
        }
    }

    // ----- skip_value -----

    #[test]
    fn skip_value_handles_every_format() {
        let cases: &[&[u8]] = &[
            &[0x00],
            &[0x7f],
            &[0xe0],
            &[0xc0],
            &[0xc2],
            &[0xc3],
            &[0xcc, 0x01],
            &[0xcd, 0x01, 0x02],
            &[0xce, 0, 0, 0, 1],
            &[0xcf, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0xd0, 0xff],
            &[0xd1, 0xff, 0xff],
            &[0xd2, 0, 0, 0, 1],
            &[0xd3, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0xca, 0x3f, 0x80, 0, 0],
            &[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0],
            &[0xa0],
            &[0xa3, b'a', b'b', b'c'],
            &[0xd9, 0x02, b'a', b'b'],
            &[0xda, 0x00, 0x01, b'a'],
            &[0xdb, 0x00, 0x00, 0x00, 0x01, b'a'],
            &[0xc4, 0x00],
            &[0xc5, 0x00, 0x02, 1, 2],
            &[0xc6, 0x00, 0x00, 0x00, 0x01, 1],
            &[0xd4, 0x01, 0xaa],
            &[0xd5, 0x01, 0xaa, 0xbb],
            &[0xd6, 0xff, 0, 0, 0, 1],
            &[0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0xc7, 0x00, 0x05],
            &[0xc7, 0x01, 0x05, 0xaa],
            &[0xc8, 0x00, 0x01, 0x05, 0xaa],
            &[0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0xaa],
            &[0x90],
            &[0x92, 0x01, 0x92, 0x02, 0x03],
            &[0xdc, 0x00, 0x02, 0xc0, 0xc0],
            &[0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0],
            &[0x80],
            &[0x81, 0xa1, b'k', 0x81, 0x01, 0x02],
            &[0xde, 0x00, 0x01, 0x01, 0x02],
            &[0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x92, 0xc3, 0xc2],
        ];
        for &case in cases {
            assert_eq!(skip_value(case, 0), Ok(case.len()), "{case:02x?}");
            // At an offset, followed by more bytes.
            let mut padded = vec![0xc0, 0xc0];
            padded.extend_from_slice(case);
            padded.push(0x01);
            assert_eq!(skip_value(&padded, 2), Ok(2 + case.len()), "{case:02x?}");
            // Every strict prefix is incomplete.
            for end in 0..case.len() {
                assert!(
                    skip_value(&case[..end], 0).is_err(),
                    "{:02x?}",
                    &case[..end]
                );
            }
        }
        assert!(skip_value(&[0xc1], 0).is_err());
        assert!(skip_value(&[0xc0], 2).is_err());
        assert_eq!(skip_value(&[0xc0], 1).map_err(|_| ()), Err(()));
    }

    #[test]
    fn skip_value_agrees_with_rmp_serde() {
        let value = serde_json::json!({
            "Name": "x".repeat(40),
            "Numbers": [0, -1, -33, 200, -200, 70_000, -70_000, 5_000_000_000u64, -5_000_000_000i64, 1.5],
            "Nested": {"a": [[], {}, [null, true, false]], "long": "y".repeat(70_000)},
            "Many": (0..20).collect::<Vec<_>>(),
        });
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        assert_eq!(skip_value(&bytes, 0), Ok(bytes.len()));
        assert_eq!(
            RawValue::from_msgpack(bytes.clone()).unwrap().as_bytes(),
            bytes
        );
    }

    #[test]
    fn skip_value_survives_deep_nesting() {
        let mut nested = vec![0x91u8; 100_000];
        assert!(skip_value(&nested, 0).is_err());
        nested.push(0xc0);
        assert_eq!(skip_value(&nested, 0), Ok(100_001));
        let maps = [0x81u8, 0xc0].repeat(100_000);
        assert!(skip_value(&maps, 0).is_err());

        // A stream item holding the deep value decodes without recursion.
        let mut item = vec![0x94, 0x02, 0x80, 0xa1, b'1'];
        item.extend_from_slice(&nested);
        let HubMessage::StreamItem(stream_item) = decoded(&item) else {
            panic!()
        };
        assert_eq!(stream_item.item.as_bytes().len(), 100_001);
    }

    #[test]
    fn huge_length_fields_fail_without_allocating() {
        let cases: &[&[u8]] = &[
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
            &[0xdb, 0xff, 0xff, 0xff, 0xff],
            &[0xc6, 0xff, 0xff, 0xff, 0xff],
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xdc, 0xff, 0xff],
            &[0xde, 0xff, 0xff],
            &[0x9f, 0xdd, 0xff, 0xff, 0xff, 0xff],
        ];
        for &case in cases {
            assert!(skip_value(case, 0).is_err(), "{case:02x?}");
            // As an argument list, a header map and a stream id list.
            let mut arguments = vec![0x95, 0x01, 0x80, 0xc0, 0xa1, b'T'];
            arguments.extend_from_slice(case);
            assert!(decode(&arguments).is_err(), "{arguments:02x?}");
            let mut headers = vec![0x93, 0x05];
            headers.extend_from_slice(case);
            assert!(decode(&headers).is_err(), "{headers:02x?}");
            let mut stream_ids = vec![0x96, 0x01, 0x80, 0xc0, 0xa1, b'T', 0x90];
            stream_ids.extend_from_slice(case);
            assert!(decode(&stream_ids).is_err(), "{stream_ids:02x?}");
            // As the envelope itself.
            assert!(decode(case).is_err(), "{case:02x?}");
        }
    }

    // ----- malformed input never panics -----

    fn sample_messages() -> Vec<Vec<u8>> {
        let mut invocation = Invocation::new(
            "Send",
            Arguments::from(vec![value(&"a"), raw(&[0xd6, 0xff, 0, 0, 0, 1])]),
        )
        .with_id("12");
        invocation.headers = headers();
        invocation.stream_ids = vec!["13".into()];
        let mut stream = StreamInvocation::new(
            "3",
            "Counter",
            Arguments::from(vec![raw(&[0xc4, 0x01, 0x07])]),
        );
        stream.headers = headers();
        let messages: Vec<HubMessage> = vec![
            HubMessage::Invocation(invocation),
            HubMessage::StreamInvocation(stream),
            HubMessage::StreamItem(StreamItem::new(
                "3",
                value(&serde_json::json!({"A": [1, 2, {"B": null}]})),
            )),
            HubMessage::Completion(Completion::result("0", value(&1.25))),
            HubMessage::Completion(Completion::error("0", "boom")),
            HubMessage::Completion(Completion::no_result("0")),
            HubMessage::CancelInvocation(CancelInvocation::new("3")),
            HubMessage::Ping,
            HubMessage::Close(Close::with_error()),
            HubMessage::Ack(Ack {
                sequence_id: 70_000,
            }),
            HubMessage::Sequence(Sequence { sequence_id: 300 }),
        ];
        messages
            .iter()
            .map(|message| {
                let bytes = encode(message);
                frames(&bytes)[0].to_vec()
            })
            .collect()
    }

    #[test]
    fn every_truncation_is_an_error() {
        for payload in sample_messages() {
            assert!(decode(&payload).unwrap().is_some());
            for end in 0..payload.len() {
                assert!(decode(&payload[..end]).is_err(), "{:02x?}", &payload[..end]);
            }
        }
    }

    #[test]
    fn every_single_byte_change_is_handled() {
        for payload in sample_messages() {
            for index in 0..payload.len() {
                let mut changed = payload.clone();
                for byte in 0..=u8::MAX {
                    changed[index] = byte;
                    // Any outcome but a panic; a decoded value must lie inside the frame.
                    if let Ok(Some(HubMessage::StreamItem(item))) = decode(&changed) {
                        assert!(item.item.as_bytes().len() < changed.len());
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            if let Ok(end) = skip_value(&bytes, 0) {
                prop_assert!(end <= bytes.len());
            }
        }

        #[test]
        fn arbitrary_bytes_after_an_envelope_start_never_panic(
            head in 1u8..=9,
            len in 0x91u8..=0x9f,
            tail in proptest::collection::vec(any::<u8>(), 0..48),
        ) {
            let mut bytes = vec![len, head];
            bytes.extend_from_slice(&tail);
            let _ = decode(&bytes);
        }
    }

    // ----- encode errors -----

    struct Failing;

    impl Serialize for Failing {
        fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("cannot serialize this"))
        }
    }

    /// Announces two arguments but yields one.
    struct Miscounted;

    impl EncodeArguments for Miscounted {
        fn count(&self) -> usize {
            2
        }
        fn try_for_each(
            &self,
            f: &mut dyn FnMut(&dyn super::super::EncodeValue) -> Result<(), ProtocolError>,
        ) -> Result<(), ProtocolError> {
            f(&1)
        }
    }

    #[test]
    fn a_failed_encode_leaves_the_buffer_as_it_was() {
        let mut out = vec![0x02, 0x91, 0x06];
        let before = out.clone();
        let results = [
            MessagePackProtocol.encode(Completion::result("0", Failing).as_message_ref(), &mut out),
            MessagePackProtocol.encode(StreamItem::new("0", Failing).as_message_ref(), &mut out),
            MessagePackProtocol.encode(
                Invocation::new("M", (1, Failing)).as_message_ref(),
                &mut out,
            ),
            MessagePackProtocol.encode(Invocation::new("M", Miscounted).as_message_ref(), &mut out),
        ];
        for result in results {
            assert!(matches!(
                result,
                Err(ProtocolError::Serialize {
                    format: Format::MessagePack,
                    ..
                })
            ));
            assert_eq!(out, before);
        }
    }

    #[test]
    fn protocol_identity() {
        assert_eq!(MessagePackProtocol.name(), "messagepack");
        assert_eq!(MessagePackProtocol.version(), 2);
        assert_eq!(
            MessagePackProtocol.transfer_format(),
            TransferFormat::Binary
        );
        assert_eq!(MessagePackProtocol.framing(), Framing::LengthPrefixed);
    }
}
