//! Splitting a byte stream into whole frames, with a size limit enforced while splitting.
//!
//! Transports deliver bytes in arbitrary chunks: a message may span several WebSocket frames or
//! POST bodies, and one chunk may hold many messages. A [`FrameDecoder`] turns that stream into
//! whole frames. A frame that lies inside one chunk is handed out as a slice of that chunk (no
//! copy); only the unfinished tail of a chunk is buffered, and never more than the maximum message
//! size: a message that would exceed it is rejected as soon as that is known (for MessagePack, as
//! soon as the length prefix is read).

use bytes::{Buf, Bytes, BytesMut};

use crate::ProtocolError;

/// The byte that ends every JSON record (and the handshake): ASCII Record Separator.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The default maximum size of one message, handshake included: 32 KiB, as in ASP.NET Core. The
/// size counts the message's framing (its record separator or length prefix), as ASP.NET Core's
/// does.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 32 * 1024;

/// The largest length a MessagePack varint prefix may carry (2^31−1).
const MAX_LENGTH_PREFIX: u64 = (1 << 31) - 1;

/// How frames are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Records ended by [`RECORD_SEPARATOR`]: the handshake and the JSON protocol.
    TextRecords,
    /// A 1–5 byte little-endian base-128 length, then that many bytes: the MessagePack protocol.
    LengthPrefixed,
}

/// Splits a chunked byte stream into whole frames.
///
/// Push a chunk, then call [`next_frame`](Self::next_frame) until it returns `Ok(None)`. Frames come
/// out without their separator or length prefix. After an error the stream cannot be resynchronised:
/// close the connection.
#[derive(Debug)]
pub struct FrameDecoder {
    framing: Framing,
    max_message_size: usize,
    /// Received bytes not yet examined.
    input: Bytes,
    /// The start of a frame that spans chunks: payload bytes, or for `LengthPrefixed` before the
    /// prefix is complete, prefix bytes.
    partial: BytesMut,
    /// `LengthPrefixed` only: the payload length, once its prefix has been read.
    expected: Option<usize>,
}

impl FrameDecoder {
    /// A decoder for `framing` that rejects messages longer than `max_message_size` bytes.
    pub fn new(framing: Framing, max_message_size: usize) -> Self {
        FrameDecoder {
            framing,
            max_message_size,
            input: Bytes::new(),
            partial: BytesMut::new(),
            expected: None,
        }
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The maximum message size in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Switches framing for the bytes that follow the last frame returned, e.g. from the handshake's
    /// text records to MessagePack's length prefixes. Bytes already received are kept.
    pub fn set_framing(&mut self, framing: Framing) {
        if framing == self.framing {
            return;
        }
        if !self.partial.is_empty() {
            let mut joined = BytesMut::with_capacity(self.partial.len() + self.input.len());
            joined.extend_from_slice(&self.partial);
            joined.extend_from_slice(&self.input);
            self.partial.clear();
            self.input = joined.freeze();
        }
        self.expected = None;
        self.framing = framing;
    }

    /// Adds received bytes.
    ///
    /// Drain the previous chunk with [`next_frame`](Self::next_frame) first; otherwise the two
    /// chunks are joined by copying.
    pub fn push(&mut self, chunk: Bytes) {
        if self.input.is_empty() {
            self.input = chunk;
        } else if !chunk.is_empty() {
            let mut joined = BytesMut::with_capacity(self.input.len() + chunk.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&chunk);
            self.input = joined.freeze();
        }
    }

    /// Whether bytes of an unfinished frame are waiting for more input.
    pub fn has_partial_frame(&self) -> bool {
        !self.partial.is_empty() || !self.input.is_empty() || self.expected.is_some()
    }

    /// How many received bytes are held (buffered partial frame plus unexamined input).
    pub fn buffered_len(&self) -> usize {
        self.partial.len() + self.input.len()
    }

    /// The next whole frame, `Ok(None)` when more input is needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        match self.framing {
            Framing::TextRecords => self.next_record(),
            Framing::LengthPrefixed => self.next_length_prefixed(),
        }
    }

    fn too_large(&self) -> ProtocolError {
        ProtocolError::MessageTooLarge {
            limit: self.max_message_size,
        }
    }

    fn next_record(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        let separator = memchr::memchr(RECORD_SEPARATOR, &self.input);
        let buffered = self.partial.len();
        match separator {
            Some(position) => {
                // The limit covers the record with its separator, as in ASP.NET Core.
                if buffered + position + 1 > self.max_message_size {
                    return Err(self.too_large());
                }
                let frame = if buffered == 0 {
                    self.input.split_to(position)
                } else {
                    self.partial.extend_from_slice(&self.input[..position]);
                    self.input.advance(position);
                    self.partial.split().freeze()
                };
                self.input.advance(1);
                Ok(Some(frame))
            }
            None => {
                if buffered + self.input.len() + 1 > self.max_message_size {
                    return Err(self.too_large());
                }
                self.partial.extend_from_slice(&self.input);
                self.input.clear();
                Ok(None)
            }
        }
    }

    fn next_length_prefixed(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        if self.expected.is_none() {
            if self.partial.is_empty() {
                // Fast path: the prefix and, ideally, the whole payload are in this chunk.
                match parse_length_prefix(&self.input)? {
                    Some((length, prefix_len)) => {
                        self.check_length(length, prefix_len)?;
                        if self.input.len() - prefix_len >= length {
                            self.input.advance(prefix_len);
                            return Ok(Some(self.input.split_to(length)));
                        }
                        self.input.advance(prefix_len);
                        self.expected = Some(length);
                        self.partial.reserve(length);
                    }
                    None => {
                        // An unfinished prefix (at most four bytes).
                        self.partial.extend_from_slice(&self.input);
                        self.input.clear();
                        return Ok(None);
                    }
                }
            } else {
                // Finish a prefix that spans chunks, one byte at a time (at most five).
                loop {
                    if self.input.is_empty() {
                        return Ok(None);
                    }
                    self.partial.extend_from_slice(&self.input[..1]);
                    self.input.advance(1);
                    if let Some((length, prefix_len)) = parse_length_prefix(&self.partial)? {
                        self.check_length(length, prefix_len)?;
                        self.partial.clear();
                        self.partial.reserve(length);
                        self.expected = Some(length);
                        break;
                    }
                }
            }
        }
        let Some(length) = self.expected else {
            return Ok(None);
        };
        let wanted = length - self.partial.len();
        let take = wanted.min(self.input.len());
        self.partial.extend_from_slice(&self.input[..take]);
        self.input.advance(take);
        if self.partial.len() == length {
            self.expected = None;
            Ok(Some(self.partial.split().freeze()))
        } else {
            Ok(None)
        }
    }

    /// The limit covers the frame with its length prefix, as in ASP.NET Core.
    fn check_length(&self, length: usize, prefix_len: usize) -> Result<(), ProtocolError> {
        if length.saturating_add(prefix_len) > self.max_message_size {
            Err(self.too_large())
        } else {
            Ok(())
        }
    }
}

/// Reads a MessagePack length prefix at the start of `bytes`.
///
/// `Ok(Some((length, prefix_len)))` when complete, `Ok(None)` when `bytes` ends inside it.
pub(crate) fn parse_length_prefix(bytes: &[u8]) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut length: u64 = 0;
    for (index, &byte) in bytes.iter().take(5).enumerate() {
        if index == 4 && byte > 0x07 {
            return Err(ProtocolError::InvalidLengthPrefix(
                "the length is larger than 2^31-1 bytes or the prefix is longer than 5 bytes",
            ));
        }
        length |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            debug_assert!(length <= MAX_LENGTH_PREFIX);
            let length = usize::try_from(length).map_err(|_| {
                ProtocolError::InvalidLengthPrefix("the length does not fit this platform")
            })?;
            return Ok(Some((length, index + 1)));
        }
    }
    Ok(None)
}

/// Appends the MessagePack length prefix for `length` to `out`.
pub(crate) fn write_length_prefix(length: usize, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let mut length = u64::try_from(length).map_err(|_| ProtocolError::EncodedMessageTooLarge)?;
    if length > MAX_LENGTH_PREFIX {
        return Err(ProtocolError::EncodedMessageTooLarge);
    }
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            return Ok(());
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frames(decoder: &mut FrameDecoder, chunk: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        decoder.push(Bytes::copy_from_slice(chunk));
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame()? {
            out.push(frame.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn records_split_across_and_within_chunks() {
        let mut decoder = FrameDecoder::new(Framing::TextRecords, 100);
        assert_eq!(
            frames(&mut decoder, b"ab\x1ec").unwrap(),
            vec![b"ab".to_vec()]
        );
        assert_eq!(frames(&mut decoder, b"d").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(
            frames(&mut decoder, b"e\x1e\x1ef\x1e").unwrap(),
            vec![b"cde".to_vec(), b"".to_vec(), b"f".to_vec()]
        );
        assert!(!decoder.has_partial_frame());
    }

    #[test]
    fn record_at_the_limit_passes_and_one_over_fails_before_its_separator() {
        // The limit of 5 covers four bytes of payload and the separator.
        let mut decoder = FrameDecoder::new(Framing::TextRecords, 5);
        assert_eq!(
            frames(&mut decoder, b"abcd\x1e").unwrap(),
            vec![b"abcd".to_vec()]
        );
        assert_eq!(frames(&mut decoder, b"abc").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(
            frames(&mut decoder, b"de"),
            Err(ProtocolError::MessageTooLarge { limit: 5 })
        );
        let mut decoder = FrameDecoder::new(Framing::TextRecords, 5);
        assert_eq!(
            frames(&mut decoder, b"abcde"),
            Err(ProtocolError::MessageTooLarge { limit: 5 })
        );
    }

    #[test]
    fn varint_prefixes_match_the_spec_examples() {
        for (length, encoded) in [
            (0usize, vec![0x00]),
            (6, vec![0x06]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            ((1 << 31) - 1, vec![0xff, 0xff, 0xff, 0xff, 0x07]),
        ] {
            let mut out = Vec::new();
            write_length_prefix(length, &mut out).unwrap();
            assert_eq!(out, encoded, "{length}");
            assert_eq!(
                parse_length_prefix(&encoded).unwrap(),
                Some((length, encoded.len()))
            );
            assert_eq!(
                parse_length_prefix(&encoded[..encoded.len() - 1]).unwrap(),
                None
            );
        }
        assert!(parse_length_prefix(&[0xff, 0xff, 0xff, 0xff, 0x08]).is_err());
        assert!(parse_length_prefix(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).is_err());
        assert_eq!(
            write_length_prefix(1 << 31, &mut Vec::new()),
            Err(ProtocolError::EncodedMessageTooLarge)
        );
    }

    #[test]
    fn length_prefixed_frames_split_anywhere() {
        let stream = [&[0x02u8, 0x91, 0x06][..], &[0x03, 1, 2, 3], &[0x00]].concat();
        for split in 0..=stream.len() {
            let mut decoder = FrameDecoder::new(Framing::LengthPrefixed, 16);
            let mut got = frames(&mut decoder, &stream[..split]).unwrap();
            got.extend(frames(&mut decoder, &stream[split..]).unwrap());
            assert_eq!(
                got,
                vec![vec![0x91, 0x06], vec![1, 2, 3], vec![]],
                "split at {split}"
            );
        }
    }

    #[test]
    fn length_prefix_over_the_limit_fails_before_the_payload_arrives() {
        let mut decoder = FrameDecoder::new(Framing::LengthPrefixed, 299);
        assert_eq!(
            frames(&mut decoder, &[0xac]).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        assert_eq!(
            frames(&mut decoder, &[0x02]),
            Err(ProtocolError::MessageTooLarge { limit: 299 })
        );
        assert!(decoder.buffered_len() <= 5);
    }

    #[test]
    fn the_limit_counts_the_length_prefix() {
        let frame = [&[0xac, 0x02][..], &[7u8; 300]].concat();
        let mut decoder = FrameDecoder::new(Framing::LengthPrefixed, 302);
        assert_eq!(frames(&mut decoder, &frame).unwrap().len(), 1);
        let mut decoder = FrameDecoder::new(Framing::LengthPrefixed, 301);
        assert_eq!(
            frames(&mut decoder, &frame),
            Err(ProtocolError::MessageTooLarge { limit: 301 })
        );
    }

    #[test]
    fn switching_framing_keeps_the_bytes_after_the_handshake() {
        let mut decoder = FrameDecoder::new(Framing::TextRecords, 64);
        decoder.push(Bytes::from_static(b"{}\x1e\x02\x91"));
        assert_eq!(decoder.next_frame().unwrap().as_deref(), Some(&b"{}"[..]));
        decoder.set_framing(Framing::LengthPrefixed);
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert_eq!(
            frames(&mut decoder, &[0x06]).unwrap(),
            vec![vec![0x91, 0x06]]
        );
    }
}
