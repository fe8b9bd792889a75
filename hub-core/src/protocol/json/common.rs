//! The fast path of the `json` decoder: the messages every call brings, in the shape the official
//! clients write them (`JSON.stringify`, `System.Text.Json`: no whitespace, plain field names).
//!
//! [`read_common`] reads an object whose fields are `type`, `invocationId`, `target` and
//! `arguments` only, in any order, each at most once, without whitespace, with `invocationId` and
//! `target` strings without escapes — an invocation, a stream invocation, a ping. Argument values
//! may be any JSON without whitespace; they are checked (strings, escapes, numbers, literals,
//! nesting) and kept as slices of the frame. Anything else — whitespace, another field, `null`,
//! an escape in a name, a lone surrogate escape, deep nesting, a malformed value — returns `None`,
//! and the full decoder reads the frame (and gives the error, if there is one). So the fast path
//! only ever answers what the full decoder answers: the differential fuzz target and property test
//! check it on arbitrary input.

use std::ops::Range;

use bytes::Bytes;
use bytestring::ByteString;

use crate::protocol::message::{Headers, HubMessage, Invocation, MessageType, StreamInvocation};
use crate::protocol::value::{Arguments, Format, RawValue};

/// How deeply argument values may nest before the full decoder is left to judge them (it stops
/// at 128).
const MAX_DEPTH: usize = 64;

/// The message in `frame` if it is a common one (see the module docs), else `None`.
pub(super) fn read_common(frame: &Bytes) -> Option<HubMessage> {
    // One UTF-8 check for the whole frame; the strings below are slices of it.
    let text = ByteString::try_from(frame.clone()).ok()?;
    let mut scan = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut message_type = None;
    let mut invocation_id = None;
    let mut target = None;
    let mut arguments = None;
    scan.eat(b'{')?;
    scan.items(b'}', |scan| {
        let name = scan.plain_string()?;
        scan.eat(b':')?;
        match scan.bytes.get(name)? {
            b"type" if message_type.is_none() => message_type = Some(scan.unsigned()?),
            b"invocationId" if invocation_id.is_none() => {
                invocation_id = Some(scan.plain_string()?);
            }
            b"target" if target.is_none() => target = Some(scan.plain_string()?),
            b"arguments" if arguments.is_none() => arguments = Some(scan.arguments(frame)?),
            _ => return None,
        }
        Some(())
    })?;
    if scan.at != scan.bytes.len() {
        return None;
    }
    let share = |range: Range<usize>| text.get(range).map(|part| text.slice_ref(part));
    // What the full decoder makes of the same fields (`Fields::into_message`); a message it
    // would refuse, or ignore, is left to it.
    match MessageType::from_number(message_type?)? {
        MessageType::Invocation => Some(HubMessage::Invocation(Invocation {
            headers: Headers::default(),
            invocation_id: match invocation_id {
                Some(range) if !range.is_empty() => Some(share(range)?),
                _ => None,
            },
            target: share(target?)?,
            arguments: Arguments::from(arguments?),
            stream_ids: Vec::new(),
        })),
        MessageType::StreamInvocation => Some(HubMessage::StreamInvocation(StreamInvocation {
            headers: Headers::default(),
            invocation_id: share(invocation_id?)?,
            target: share(target?)?,
            arguments: Arguments::from(arguments?),
            stream_ids: Vec::new(),
        })),
        MessageType::Ping => Some(HubMessage::Ping),
        _ => None,
    }
}

/// Whether `byte` ends the plain run of a string: its closing quote, an escape, or a control
/// character (which JSON forbids in strings).
fn special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at.checked_add(word.len())?;
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A string without escapes or control characters: where its contents are.
    fn plain_string(&mut self) -> Option<Range<usize>> {
        self.eat(b'"')?;
        let start = self.at;
        let length = self
            .bytes
            .get(start..)?
            .iter()
            .position(|&byte| special(byte))?;
        self.at = start + length;
        self.eat(b'"')?;
        Some(start..start + length)
    }

    /// A non-negative integer without sign, fraction, exponent or leading zero.
    fn unsigned(&mut self) -> Option<u64> {
        let first = self.next()?;
        let mut value = u64::from(first.checked_sub(b'0').filter(|digit| *digit <= 9)?);
        if value == 0 {
            return (!self.peek()?.is_ascii_digit()).then_some(0);
        }
        while let Some(digit) = self.peek().filter(u8::is_ascii_digit) {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        Some(value)
    }

    /// `[value, …]`: each value as a slice of `frame`.
    fn arguments(&mut self, frame: &Bytes) -> Option<Vec<RawValue>> {
        self.eat(b'[')?;
        let mut values = Vec::new();
        self.items(b']', |scan| {
            let start = scan.at;
            scan.value(0)?;
            values.push(RawValue::new_unchecked(
                frame.slice(start..scan.at),
                Format::Json,
            ));
            Some(())
        })?;
        Some(values)
    }

    /// The items of an array or object whose opening bracket was read, each read by `item`,
    /// separated by commas, up to `close`.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.next()? {
                b',' => {}
                byte if byte == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// Skips one JSON value (without whitespace), checking it.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string(),
            b'[' => {
                self.enter(depth)?;
                self.items(b']', |scan| scan.value(depth + 1))
            }
            b'{' => {
                self.enter(depth)?;
                self.items(b'}', |scan| {
                    scan.string()?;
                    scan.eat(b':')?;
                    scan.value(depth + 1)
                })
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Steps into an array or object, unless it nests too deeply.
    fn enter(&mut self, depth: usize) -> Option<()> {
        (depth < MAX_DEPTH).then(|| self.at += 1)
    }

    /// A string, escapes checked (a `\u` escape of a surrogate is left to the full decoder).
    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.at += self
                .bytes
                .get(self.at..)?
                .iter()
                .position(|&byte| special(byte))?;
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let mut unit = 0u32;
                        for _ in 0..4 {
                            unit = unit * 16 + char::from(self.next()?).to_digit(16)?;
                        }
                        if (0xd800..=0xdfff).contains(&unit) {
                            return None;
                        }
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// A number: `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn common(text: &str) -> Option<HubMessage> {
        read_common(&Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn what_clients_send_on_every_call_is_read_here() {
        let Some(HubMessage::Invocation(call)) = common(
            r#"{"arguments":["hi",{"a":[1,-2.5e3,true,null]},"\u00e9\n"],"invocationId":"7","target":"Echo","type":1}"#,
        ) else {
            panic!("not read as an invocation");
        };
        assert_eq!(call.invocation_id.as_deref(), Some("7"));
        assert_eq!(call.target, "Echo");
        let texts: Vec<&[u8]> = call.arguments.iter().map(RawValue::as_bytes).collect();
        assert_eq!(
            texts,
            [
                &br#""hi""#[..],
                br#"{"a":[1,-2.5e3,true,null]}"#,
                br#""\u00e9\n""#
            ]
        );
        assert_eq!(common(r#"{"type":6}"#), Some(HubMessage::Ping));
        assert!(common(r#"{"type":1,"target":"Echo","arguments":[]}"#).is_some());
        assert!(
            common(r#"{"type":4,"invocationId":"1","target":"Count","arguments":[3]}"#).is_some()
        );
    }

    #[test]
    fn anything_else_is_left_to_the_full_decoder() {
        for text in [
            r#"{"type":1, "target":"Echo","arguments":[]}"#,
            r#"{"type":1,"target":"Ech\u006f","arguments":[]}"#,
            r#"{"type":1,"target":null,"arguments":[]}"#,
            r#"{"type":1,"type":1}"#,
            r#"{"type":01}"#,
            r#"{"type":1.0}"#,
            r#"{"type":-1}"#,
            r#"{"type":99999999999999999999}"#,
            r#"{"type":3,"invocationId":"1","result":2}"#,
            r#"{"type":1,"arguments":[]}"#,
            r#"{"type":4,"target":"Count","arguments":[]}"#,
            r#"{"type":5,"invocationId":"1"}"#,
            r#"{"type":11}"#,
            r#"{"type":1,"headers":{},"target":"a","arguments":[]}"#,
            r#"{"type":1,"target":"a","arguments":["\ud800"]}"#,
            r#"{"type":1,"target":"a","arguments":[01]}"#,
            r#"{"type":1,"target":"a","arguments":[1.]}"#,
            r#"{"type":1,"target":"a","arguments":[tru]}"#,
            r#"{"type":1,"target":"a","arguments":["a	b"]}"#,
            r#"{"type":1,"target":"a","arguments":[1,]}"#,
            r#"{"type":1,"target":"a","arguments":[]} "#,
            r#"{"type":1,"target":"a","arguments":[]}x"#,
            r#"{"type":1,"target":"a","arguments":[{"a"}]}"#,
            r#"{}"#,
            r#"{"#,
            "",
        ] {
            assert!(common(text).is_none(), "{text}");
        }
        let deep = format!(
            r#"{{"type":1,"target":"a","arguments":[{}{}]}}"#,
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(common(&deep).is_none());
        assert!(read_common(&Bytes::from_static(b"{\"type\":1,\"target\":\"\xff\"}")).is_none());
    }
}
