//! [`RawValue`] as a `Serialize` and `Deserialize` type, so it can be a hub method's parameter or
//! result, a stream item, or a field of a DTO.
//!
//! - **Serialize**: a JSON value into a JSON serializer is written verbatim; anything else is
//!   re-read and written value by value ([`Transcoder`]), MessagePack extension values
//!   (timestamps) staying extensions and `bin` staying bytes.
//! - **Deserialize**: from JSON, the value's exact text (serde_json's `RawValue`); from a binary
//!   format (MessagePack), the value re-written as MessagePack ([`MsgpackWriter`]), extensions and
//!   `bin` included.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::value::{Format, RawValue};

/// The newtype name rmp-serde reads and writes MessagePack extension values under.
const MSGPACK_EXT: &str = "_ExtStruct";

impl Serialize for RawValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.format() {
            Format::Json if serializer.is_human_readable() => {
                let raw: &serde_json::value::RawValue =
                    serde_json::from_slice(self.as_bytes()).map_err(ser::Error::custom)?;
                raw.serialize(serializer)
            }
            Format::Json => {
                Transcoder::new(&mut serde_json::Deserializer::from_slice(self.as_bytes()))
                    .serialize(serializer)
            }
            Format::MessagePack => {
                Transcoder::new(&mut rmp_serde::Deserializer::from_read_ref(self.as_bytes()))
                    .serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
            let text: Box<str> = raw.into();
            return RawValue::from_json(Bytes::from(text.into_boxed_bytes()))
                .map_err(de::Error::custom);
        }
        let mut out = Vec::new();
        deserializer.deserialize_any(MsgpackWriter { out: &mut out })?;
        RawValue::from_msgpack(out).map_err(de::Error::custom)
    }
}

/// A raw value is any value: `unknown` in generated TypeScript.
#[cfg(feature = "ts")]
impl ts_rs::TS for RawValue {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(_: &ts_rs::Config) -> String {
        "unknown".to_owned()
    }
    fn inline(config: &ts_rs::Config) -> String {
        <Self as ts_rs::TS>::name(config)
    }
}

// ----- re-reading a value into any serializer -------------------------------------------------

/// Serializes what a deserializer reads, value by value (newtype structs — MessagePack
/// extensions, the only ones a self-describing read yields — as `(type, data)` under rmp-serde's
/// extension name).
struct Transcoder<D>(RefCell<Option<D>>);

impl<D> Transcoder<D> {
    fn new(deserializer: D) -> Self {
        Transcoder(RefCell::new(Some(deserializer)))
    }
}

impl<'de, D: Deserializer<'de>> Serialize for Transcoder<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let deserializer = self
            .0
            .borrow_mut()
            .take()
            .ok_or_else(|| ser::Error::custom("a value was re-read twice"))?;
        deserializer
            .deserialize_any(Transcribe(serializer))
            .map_err(ser::Error::custom)
    }
}

/// The visitor that writes each value it visits to the serializer.
struct Transcribe<S>(S);

fn to_de<E: de::Error>(error: impl fmt::Display) -> E {
    E::custom(error)
}

impl<'de, S: Serializer> Visitor<'de> for Transcribe<S> {
    type Value = S::Ok;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<S::Ok, E> {
        self.0.serialize_bool(v).map_err(to_de)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<S::Ok, E> {
        self.0.serialize_i64(v).map_err(to_de)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<S::Ok, E> {
        self.0.serialize_u64(v).map_err(to_de)
    }
    fn visit_f32<E: de::Error>(self, v: f32) -> Result<S::Ok, E> {
        self.0.serialize_f32(v).map_err(to_de)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<S::Ok, E> {
        self.0.serialize_f64(v).map_err(to_de)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<S::Ok, E> {
        self.0.serialize_str(v).map_err(to_de)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<S::Ok, E> {
        self.0.serialize_bytes(v).map_err(to_de)
    }
    fn visit_none<E: de::Error>(self) -> Result<S::Ok, E> {
        self.0.serialize_none().map_err(to_de)
    }
    fn visit_unit<E: de::Error>(self) -> Result<S::Ok, E> {
        self.0.serialize_unit().map_err(to_de)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<S::Ok, D::Error> {
        self.0.serialize_some(&Transcoder::new(d)).map_err(to_de)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<S::Ok, D::Error> {
        let Extension(kind, data) = Extension::deserialize(d)?;
        self.0
            .serialize_newtype_struct(MSGPACK_EXT, &(kind, AsBytes(&data)))
            .map_err(to_de)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<S::Ok, A::Error> {
        let mut out = self.0.serialize_seq(seq.size_hint()).map_err(to_de)?;
        while seq.next_element_seed(Element(&mut out))?.is_some() {}
        out.end().map_err(to_de)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<S::Ok, A::Error> {
        let mut out = self.0.serialize_map(map.size_hint()).map_err(to_de)?;
        while map.next_key_seed(Key(&mut out))?.is_some() {
            map.next_value_seed(Value(&mut out))?;
        }
        out.end().map_err(to_de)
    }
}

struct Element<'a, S>(&'a mut S);

impl<'de, S: SerializeSeq> DeserializeSeed<'de> for Element<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.serialize_element(&Transcoder::new(d)).map_err(to_de)
    }
}

struct Key<'a, S>(&'a mut S);

impl<'de, S: SerializeMap> DeserializeSeed<'de> for Key<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.serialize_key(&Transcoder::new(d)).map_err(to_de)
    }
}

struct Value<'a, S>(&'a mut S);

impl<'de, S: SerializeMap> DeserializeSeed<'de> for Value<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.serialize_value(&Transcoder::new(d)).map_err(to_de)
    }
}

// ----- writing what a binary deserializer reads as MessagePack -------------------------------

/// Writes each value it visits as MessagePack (newtype structs as extensions: rmp-serde reads
/// an extension as a newtype of `(type, data)`).
struct MsgpackWriter<'a> {
    out: &'a mut Vec<u8>,
}

fn write<E: de::Error, T, W>(result: Result<T, W>) -> Result<(), E>
where
    W: fmt::Debug,
{
    result
        .map(drop)
        .map_err(|error| E::custom(format!("{error:?}")))
}

impl<'de> Visitor<'de> for MsgpackWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        write(rmp::encode::write_bool(self.out, v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        write(rmp::encode::write_sint(self.out, v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        write(rmp::encode::write_uint(self.out, v))
    }
    fn visit_f32<E: de::Error>(self, v: f32) -> Result<(), E> {
        write(rmp::encode::write_f32(self.out, v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        write(rmp::encode::write_f64(self.out, v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write(rmp::encode::write_str(self.out, v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        write(rmp::encode::write_bin(self.out, v))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        write(rmp::encode::write_nil(self.out))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        write(rmp::encode::write_nil(self.out))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let Extension(kind, data) = Extension::deserialize(d)?;
        let len = u32::try_from(data.len()).map_err(de::Error::custom)?;
        write(rmp::encode::write_ext_meta(self.out, len, kind))?;
        self.out.extend_from_slice(&data);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // The length comes first: the items are written aside, then after the header.
        let mut items = Vec::new();
        let mut count: u32 = 0;
        while seq
            .next_element_seed(Seed(MsgpackWriter { out: &mut items }))?
            .is_some()
        {
            count += 1;
        }
        write(rmp::encode::write_array_len(self.out, count))?;
        self.out.extend_from_slice(&items);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut entries = Vec::new();
        let mut count: u32 = 0;
        while map
            .next_key_seed(Seed(MsgpackWriter { out: &mut entries }))?
            .is_some()
        {
            map.next_value_seed(Seed(MsgpackWriter { out: &mut entries }))?;
            count += 1;
        }
        write(rmp::encode::write_map_len(self.out, count))?;
        self.out.extend_from_slice(&entries);
        Ok(())
    }
}

struct Seed<'a>(MsgpackWriter<'a>);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self.0)
    }
}

/// A MessagePack extension as rmp-serde reads it: its type and its data.
struct Extension(i8, Vec<u8>);

impl<'de> Deserialize<'de> for Extension {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ExtensionVisitor;
        impl<'de> Visitor<'de> for ExtensionVisitor {
            type Value = Extension;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a MessagePack extension (type, data)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Extension, A::Error> {
                let kind: i8 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let data: ByteBuf = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(Extension(kind, data.0))
            }
        }
        d.deserialize_tuple(2, ExtensionVisitor)
    }
}

/// Bytes written as bytes (`bin` in MessagePack), not as a sequence of numbers.
struct AsBytes<'a>(&'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Bytes read from `bin` (or a sequence of bytes).
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                let mut out = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    out.push(byte);
                }
                Ok(ByteBuf(out))
            }
        }
        d.deserialize_byte_buf(BytesVisitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::EncodeValue;

    /// A DTO with a raw field, as a hub method would take or return it.
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Envelope {
        kind: String,
        payload: RawValue,
    }

    /// MessagePack: {"when": timestamp ext(-1) 12 bytes, "blob": bin [0, 1, 255], "n": [1, -2, 3.5]}
    fn msgpack_sample() -> Vec<u8> {
        let mut out = Vec::new();
        rmp::encode::write_map_len(&mut out, 3).unwrap();
        rmp::encode::write_str(&mut out, "when").unwrap();
        rmp::encode::write_ext_meta(&mut out, 12, -1).unwrap();
        out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x65, 0x43, 0x21, 0x00]);
        rmp::encode::write_str(&mut out, "blob").unwrap();
        rmp::encode::write_bin(&mut out, &[0, 1, 255]).unwrap();
        rmp::encode::write_str(&mut out, "n").unwrap();
        rmp::encode::write_array_len(&mut out, 3).unwrap();
        rmp::encode::write_uint(&mut out, 1).unwrap();
        rmp::encode::write_sint(&mut out, -2).unwrap();
        rmp::encode::write_f64(&mut out, 3.5).unwrap();
        out
    }

    #[test]
    fn json_round_trips_verbatim_as_a_field() {
        let text = r#"{"kind":"k","payload":{"b":[1, 2.50,"x"] ,"a":null}}"#;
        let decoded: Envelope = serde_json::from_str(text).unwrap();
        assert_eq!(decoded.payload.format(), Format::Json);
        assert_eq!(
            decoded.payload.as_bytes(),
            br#"{"b":[1, 2.50,"x"] ,"a":null}"#
        );
        assert_eq!(
            serde_json::to_string(&decoded).unwrap(),
            r#"{"kind":"k","payload":{"b":[1, 2.50,"x"] ,"a":null}}"#
        );
    }

    #[test]
    fn msgpack_round_trips_extensions_and_bin_as_a_field() {
        let sample = msgpack_sample();
        let envelope = Envelope {
            kind: "k".to_owned(),
            payload: RawValue::from_msgpack(sample.clone()).unwrap(),
        };
        let mut bytes = Vec::new();
        envelope.encode_msgpack(&mut bytes).unwrap();
        let decoded: Envelope = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(decoded.payload.format(), Format::MessagePack);
        assert_eq!(decoded.payload.as_bytes(), &sample[..]);
    }

    #[test]
    fn a_value_crosses_formats() {
        let from_json = RawValue::from_json(r#"{"a":[1,-2,"x",true,null]}"#).unwrap();
        let mut packed = Vec::new();
        from_json.encode_msgpack(&mut packed).unwrap();
        let back: serde_json::Value = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(back, serde_json::json!({"a": [1, -2, "x", true, null]}));

        let from_msgpack = RawValue::from_msgpack(msgpack_sample()).unwrap();
        let mut text = Vec::new();
        from_msgpack.encode_json(&mut text).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(json["blob"], serde_json::json!([0, 1, 255]));
        assert_eq!(json["n"], serde_json::json!([1, -2, 3.5]));
        assert_eq!(json["when"][0], serde_json::json!(-1));
    }

    #[test]
    fn a_raw_value_deserializes_from_a_raw_value() {
        // What the dispatcher does for a `RawValue` parameter.
        let json = RawValue::from_json("[1,{\"x\":2}]").unwrap();
        let again: RawValue = json.deserialize().unwrap();
        assert_eq!(again, json);
        let packed = RawValue::from_msgpack(msgpack_sample()).unwrap();
        let again: RawValue = packed.deserialize().unwrap();
        assert_eq!(again, packed);
    }
}
