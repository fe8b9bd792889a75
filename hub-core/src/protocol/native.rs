//! Values each hub protocol renders in its own native form, as the official clients read them:
//!
//! | type | JSON | MessagePack | official JavaScript client gets |
//! |---|---|---|---|
//! | [`Timestamp`] | RFC 3339 text in UTC (`"2026-12-06T12:34:56.789Z"`) | a timestamp extension (type −1) | a string (JSON), a `Date` (MessagePack) |
//! | [`Binary`] | base64 text (as .NET writes `byte[]`) | `bin` | a string (JSON), a `Uint8Array` (MessagePack) |
//!
//! Both read either form back whatever the protocol (a MessagePack client may send a Date or an
//! ISO string), so a hub method can take them as parameters too.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The newtype name rmp-serde writes MessagePack extension values under.
const MSGPACK_EXT: &str = "_ExtStruct";
/// MessagePack's timestamp extension type.
const TIMESTAMP_EXT: i8 = -1;

/// A point in time: RFC 3339 text in JSON, a timestamp extension in MessagePack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (negative before it).
    pub seconds: i64,
    /// Nanoseconds into that second (below 1 000 000 000).
    pub nanos: u32,
}

impl Timestamp {
    /// Now, by the system clock.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// The RFC 3339 text in UTC, with milliseconds (`2026-12-06T12:34:56.789Z`) or more digits
    /// when the time has them.
    pub fn to_rfc3339(&self) -> String {
        let days = self.seconds.div_euclid(86_400);
        let secs = self.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
        let fraction = if self.nanos.is_multiple_of(1_000_000) {
            format!("{:03}", self.nanos / 1_000_000)
        } else {
            format!("{:09}", self.nanos)
        };
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{fraction}Z")
    }

    /// Reads RFC 3339 text (`2026-12-06T12:34:56Z`, with an optional fraction and a `Z` or
    /// `±hh:mm` offset).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = text.get(range)?;
            digits
                .bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| digits.parse().ok())?
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
            return None;
        }
        let mut at = 19;
        let mut nanos: u32 = 0;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while at < b.len() && b[at].is_ascii_digit() {
                at += 1;
            }
            let digits = text.get(start..at)?;
            if digits.is_empty() {
                return None;
            }
            let kept = &digits[..digits.len().min(9)];
            nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        }
        let offset = match text.get(at..)? {
            "Z" | "z" => 0,
            zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (oh, om) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
                if zone.as_bytes()[3] != b':' {
                    return None;
                }
                sign * (oh * 3600 + om * 60)
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        Some(Timestamp {
            seconds: days * 86_400 + h * 3600 + m * 60 + s - offset,
            nanos,
        })
    }

    /// The MessagePack timestamp extension's data (the 32-, 64- or 96-bit form, the shortest
    /// that holds the value).
    fn to_ext(self) -> Vec<u8> {
        if self.seconds >> 34 == 0 {
            let packed = (u64::from(self.nanos) << 34) | self.seconds as u64;
            if packed >> 32 == 0 {
                return (packed as u32).to_be_bytes().to_vec();
            }
            return packed.to_be_bytes().to_vec();
        }
        let mut data = self.nanos.to_be_bytes().to_vec();
        data.extend_from_slice(&self.seconds.to_be_bytes());
        data
    }

    /// A timestamp from a MessagePack timestamp extension's data.
    fn from_ext(data: &[u8]) -> Option<Self> {
        let timestamp = match data.len() {
            4 => Timestamp {
                seconds: i64::from(u32::from_be_bytes(data.try_into().ok()?)),
                nanos: 0,
            },
            8 => {
                let packed = u64::from_be_bytes(data.try_into().ok()?);
                Timestamp {
                    seconds: (packed & 0x3_ffff_ffff) as i64,
                    nanos: (packed >> 34) as u32,
                }
            }
            12 => Timestamp {
                nanos: u32::from_be_bytes(data[..4].try_into().ok()?),
                seconds: i64::from_be_bytes(data[4..].try_into().ok()?),
            },
            _ => return None,
        };
        (timestamp.nanos < 1_000_000_000).then_some(timestamp)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp {
                seconds: after.as_secs() as i64,
                nanos: after.subsec_nanos(),
            },
            Err(before) => {
                let before = before.duration();
                let (mut seconds, mut nanos) = (-(before.as_secs() as i64), before.subsec_nanos());
                if nanos > 0 {
                    seconds -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Timestamp { seconds, nanos }
            }
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(timestamp: Timestamp) -> Self {
        let nanos = Duration::from_nanos(u64::from(timestamp.nanos));
        if timestamp.seconds >= 0 {
            UNIX_EPOCH + Duration::from_secs(timestamp.seconds as u64) + nanos
        } else {
            UNIX_EPOCH - Duration::from_secs(timestamp.seconds.unsigned_abs()) + nanos
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            serializer
                .serialize_newtype_struct(MSGPACK_EXT, &(TIMESTAMP_EXT, AsBytes(&self.to_ext())))
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl<'de> Visitor<'de> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 date-time or a MessagePack timestamp")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v)
                    .ok_or_else(|| E::custom(format!("`{v}` is not an RFC 3339 date-time")))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Timestamp, D::Error> {
                let (kind, data): (i8, Binary) = Deserialize::deserialize(d)?;
                if kind != TIMESTAMP_EXT {
                    return Err(de::Error::custom(format!(
                        "MessagePack extension type {kind} is not a timestamp (−1)"
                    )));
                }
                Timestamp::from_ext(&data.0)
                    .ok_or_else(|| de::Error::custom("a malformed MessagePack timestamp"))
            }
        }
        deserializer.deserialize_any(TimestampVisitor)
    }
}

/// Bytes: base64 text in JSON (as .NET writes `byte[]`), `bin` in MessagePack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Binary(pub Bytes);

impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Self {
        Binary(Bytes::from(bytes))
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&STANDARD.encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BinaryVisitor;
        impl<'de> Visitor<'de> for BinaryVisitor {
            type Value = Binary;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("base64 text or bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Binary, E> {
                STANDARD
                    .decode(v)
                    .map(Binary::from)
                    .map_err(|error| E::custom(format!("not base64: {error}")))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
                Ok(Binary(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
                Ok(Binary::from(v))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
                let mut out = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    out.push(byte);
                }
                Ok(Binary::from(out))
            }
        }
        deserializer.deserialize_any(BinaryVisitor)
    }
}

/// Bytes written as bytes (`bin`), not as a sequence of numbers.
struct AsBytes<'a>(&'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// A timestamp is `Date | string` in generated TypeScript (a `Date` over MessagePack, ISO text
/// over JSON).
#[cfg(feature = "ts")]
impl ts_rs::TS for Timestamp {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(_: &ts_rs::Config) -> String {
        "Date | string".to_owned()
    }
    fn inline(config: &ts_rs::Config) -> String {
        <Self as ts_rs::TS>::name(config)
    }
}

/// Bytes are `Uint8Array | string` in generated TypeScript (a `Uint8Array` over MessagePack,
/// base64 text over JSON).
#[cfg(feature = "ts")]
impl ts_rs::TS for Binary {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(_: &ts_rs::Config) -> String {
        "Uint8Array | string".to_owned()
    }
    fn inline(config: &ts_rs::Config) -> String {
        <Self as ts_rs::TS>::name(config)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::{EncodeValue, RawValue};
    use proptest::prelude::*;

    #[test]
    fn rfc3339_both_ways() {
        let t = Timestamp::parse_rfc3339("2026-12-06T12:34:56.789Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-06T12:34:56.789Z");
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap(),
            Timestamp {
                seconds: 0,
                nanos: 0
            }
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-12-06T14:34:56.789+02:00").unwrap(),
            t
        );
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31T23:59:59.5Z").unwrap(),
            Timestamp {
                seconds: -1,
                nanos: 500_000_000
            }
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-12-06 12:34Z",
            "2026-12-06T12:34:56",
            "2026-12-06T12:34:56.Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_protocol_renders_them_natively() {
        let t = Timestamp::parse_rfc3339("2026-12-06T12:34:56.789Z").unwrap();
        let json = RawValue::encode(
            &(t, Binary::from(vec![0, 1, 255])),
            crate::protocol::Format::Json,
        )
        .unwrap();
        assert_eq!(json.as_bytes(), br#"["2026-12-06T12:34:56.789Z","AAH/"]"#);
        let mut packed = Vec::new();
        (t, Binary::from(vec![0, 1, 255]))
            .encode_msgpack(&mut packed)
            .unwrap();
        // array(2), ext8? no: fixext8 (0xd7) type -1 with the 64-bit form; then bin8 of 3 bytes.
        assert_eq!(packed[0], 0x92);
        assert_eq!(&packed[1..3], &[0xd7, 0xff]);
        assert_eq!(&packed[11..], &[0xc4, 3, 0, 1, 255]);
        let (back, bytes): (Timestamp, Binary) = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(back, t);
        assert_eq!(&bytes.0[..], &[0, 1, 255]);
        let (back, bytes): (Timestamp, Binary) = serde_json::from_slice(json.as_bytes()).unwrap();
        assert_eq!(back, t);
        assert_eq!(&bytes.0[..], &[0, 1, 255]);
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(seconds in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let t = Timestamp { seconds, nanos };
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
            prop_assert_eq!(Timestamp::from_ext(&t.to_ext()), Some(t));
            prop_assert_eq!(Timestamp::from(SystemTime::from(t)), t);
        }
    }
}
