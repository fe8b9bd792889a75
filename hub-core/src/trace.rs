//! W3C Trace Context (`traceparent`), as a client puts it in an invocation's headers and a
//! backplane carries it between servers.
//!
//! ```
//! use hub_core::trace::TraceParent;
//!
//! let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
//! assert!(parent.sampled());
//! assert_eq!(parent.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! # Ok::<(), hub_core::trace::TraceParentError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// The header (and invocation header) that carries a [`TraceParent`].
pub const TRACEPARENT: &str = "traceparent";
/// The header that carries vendor trace state beside it.
pub const TRACESTATE: &str = "tracestate";

/// A W3C `traceparent`: the trace an operation belongs to and the span that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id (never all zeros).
    pub trace_id: [u8; 16],
    /// The id of the calling span (never all zeros).
    pub parent_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
}

/// Why a `traceparent` was not understood (it is then ignored, as W3C asks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceParentError {
    /// Not `version-traceid-parentid-flags` in lowercase hex of the right lengths.
    #[error("a traceparent must be `00-<32 hex>-<16 hex>-<2 hex>` in lowercase: {0:?}")]
    Malformed(String),
    /// Version `ff`, which W3C forbids.
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
    /// An all-zero trace id or parent id.
    #[error("a traceparent's trace id and parent id must not be all zeros")]
    ZeroId,
}

impl TraceParent {
    /// Whether the caller sampled (recorded) its span.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    /// Parses version 00 exactly, and later versions by their first four fields (as W3C says a
    /// version-00 parser must).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || TraceParentError::Malformed(text.chars().take(64).collect());
        let bytes = text.as_bytes();
        if bytes.len() < 55 || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(malformed());
        }
        let version = hex::<1>(&bytes[0..2]).ok_or_else(malformed)?[0];
        if version == 0xff {
            return Err(TraceParentError::InvalidVersion);
        }
        // Version 00 is exactly 55 characters; a later one may add fields after a dash.
        if (version == 0 && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
            return Err(malformed());
        }
        let trace_id = hex::<16>(&bytes[3..35]).ok_or_else(malformed)?;
        let parent_id = hex::<8>(&bytes[36..52]).ok_or_else(malformed)?;
        let flags = hex::<1>(&bytes[53..55]).ok_or_else(malformed)?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return Err(TraceParentError::ZeroId);
        }
        Ok(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    /// Version 00: `00-<trace id>-<parent id>-<flags>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("00-")?;
        for byte in self.trace_id {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("-")?;
        for byte in self.parent_id {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "-{:02x}", self.flags)
    }
}

/// Lowercase hex of exactly `N` bytes.
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != N * 2 {
        return None;
    }
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_w3c_example() {
        let parent: TraceParent = EXAMPLE.parse().unwrap();
        assert_eq!(parent.trace_id[0], 0x4b);
        assert_eq!(parent.parent_id[7], 0xb7);
        assert!(parent.sampled());
        assert_eq!(parent.to_string(), EXAMPLE);
    }

    #[test]
    fn refuses_what_w3c_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(
                matches!(
                    bad.parse::<TraceParent>(),
                    Err(TraceParentError::Malformed(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse::<TraceParent>(),
            Err(TraceParentError::InvalidVersion)
        );
        assert_eq!(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>(),
            Err(TraceParentError::ZeroId)
        );
        assert_eq!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".parse::<TraceParent>(),
            Err(TraceParentError::ZeroId)
        );
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-comes";
        let parent: TraceParent = later.parse().unwrap();
        assert!(!parent.sampled());
        assert_eq!(
            parent.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
    }
}
