//! Values inside messages: raw on the way in, any `Serialize` on the way out.
//!
//! Decoding never builds a value tree. Each argument, stream item and result stays as the exact
//! bytes it arrived as (a [`RawValue`]: a cheap slice of the received frame) until the dispatcher
//! deserializes it straight into the hub method's parameter type with [`RawValue::deserialize`].
//!
//! Encoding goes through [`EncodeValue`] (implemented for every `Serialize` type and for
//! [`RawValue`]) and [`EncodeArguments`] (tuples of values, slices, and decoded [`Arguments`]).

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// The encoding a value travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// UTF-8 JSON text (the `json` hub protocol).
    Json,
    /// MessagePack bytes (the `messagepack` hub protocol).
    MessagePack,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::MessagePack => "MessagePack",
        })
    }
}

/// One value exactly as it arrived: the JSON text or the MessagePack bytes of an argument, a
/// stream item or a result.
///
/// Cloning is cheap (a reference count). MessagePack `bin` and extension values (timestamps) are
/// carried through untouched.
#[derive(Clone, PartialEq, Eq)]
pub struct RawValue {
    bytes: Bytes,
    format: Format,
}

impl RawValue {
    /// Wraps bytes the caller guarantees to be exactly one well-formed value in `format`.
    ///
    /// Decoders call this with slices they have already validated.
    pub(crate) fn new_unchecked(bytes: Bytes, format: Format) -> Self {
        RawValue { bytes, format }
    }

    /// Checks that `text` is exactly one JSON value and wraps it.
    pub fn from_json(text: impl Into<Bytes>) -> Result<Self, ProtocolError> {
        let bytes = text.into();
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(ProtocolError::json)?;
        Ok(RawValue::new_unchecked(bytes, Format::Json))
    }

    /// Checks that `bytes` are exactly one MessagePack value and wraps them.
    pub fn from_msgpack(bytes: impl Into<Bytes>) -> Result<Self, ProtocolError> {
        let bytes = bytes.into();
        let end = crate::protocol::msgpack::skip_value(&bytes, 0)?;
        if end != bytes.len() {
            return Err(ProtocolError::msgpack("trailing bytes after the value"));
        }
        Ok(RawValue::new_unchecked(bytes, Format::MessagePack))
    }

    /// Serializes `value` in `format`.
    pub fn encode<T: EncodeValue + ?Sized>(
        value: &T,
        format: Format,
    ) -> Result<Self, ProtocolError> {
        let mut out = Vec::new();
        match format {
            Format::Json => value.encode_json(&mut out)?,
            Format::MessagePack => value.encode_msgpack(&mut out)?,
        }
        Ok(RawValue::new_unchecked(Bytes::from(out), format))
    }

    /// The encoding of the bytes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The bytes of the value (UTF-8 JSON text, or MessagePack).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes of the value as a shared buffer.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Whether the value is `null` (JSON) or `nil` (MessagePack).
    pub fn is_null(&self) -> bool {
        match self.format {
            Format::Json => &*self.bytes == b"null",
            Format::MessagePack => self.bytes[..] == [0xc0],
        }
    }

    /// Deserializes the value into `T`, straight from the raw bytes.
    ///
    /// MessagePack objects are read from maps keyed by member name (as .NET writes them) or from
    /// arrays. An error here is a binding error: the peer sent a value of the wrong shape.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        self.deserialize_borrowed()
    }

    /// Deserializes the value into `T`, which may borrow from the raw bytes (`&str`, `&[u8]`).
    pub fn deserialize_borrowed<'a, T: Deserialize<'a>>(&'a self) -> Result<T, ProtocolError> {
        match self.format {
            Format::Json => {
                serde_json::from_slice(&self.bytes).map_err(|e| ProtocolError::Deserialize {
                    format: Format::Json,
                    message: e.to_string(),
                })
            }
            Format::MessagePack => {
                rmp_serde::from_slice(&self.bytes).map_err(|e| ProtocolError::Deserialize {
                    format: Format::MessagePack,
                    message: e.to_string(),
                })
            }
        }
    }
}

impl fmt::Debug for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format {
            Format::Json => match std::str::from_utf8(&self.bytes) {
                Ok(text) => write!(f, "Json({text})"),
                Err(_) => write!(f, "Json({:?})", self.bytes),
            },
            Format::MessagePack => write!(f, "MessagePack({:02x?})", &self.bytes[..]),
        }
    }
}

/// The arguments of a decoded Invocation or StreamInvocation, each still raw.
///
/// Upload streams are not among them: a client lists those in the message's stream ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arguments {
    items: Vec<RawValue>,
}

impl Arguments {
    /// No arguments.
    pub fn new() -> Self {
        Arguments::default()
    }

    /// How many arguments the client sent.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the client sent no arguments.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The argument at `index`.
    pub fn get(&self, index: usize) -> Option<&RawValue> {
        self.items.get(index)
    }

    /// The arguments in order.
    pub fn iter(&self) -> std::slice::Iter<'_, RawValue> {
        self.items.iter()
    }

    /// The arguments as a slice.
    pub fn as_slice(&self) -> &[RawValue] {
        &self.items
    }
}

impl From<Vec<RawValue>> for Arguments {
    fn from(items: Vec<RawValue>) -> Self {
        Arguments { items }
    }
}

impl<'a> IntoIterator for &'a Arguments {
    type Item = &'a RawValue;
    type IntoIter = std::slice::Iter<'a, RawValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// A value that can be written into a message in either protocol.
///
/// Implemented for every [`Serialize`] type (structs become MessagePack maps keyed by field name,
/// as SignalR clients expect), [`RawValue`] included (written verbatim in its own format). Object safe, so a dispatcher
/// can hold results as `Box<dyn EncodeValue + Send>`.
pub trait EncodeValue {
    /// Appends the JSON text of the value to `out`.
    fn encode_json(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError>;
    /// Appends the MessagePack bytes of the value to `out`.
    fn encode_msgpack(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError>;
}

impl<T: Serialize + ?Sized> EncodeValue for T {
    fn encode_json(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        serde_json::to_writer(out, self).map_err(|e| ProtocolError::Serialize {
            format: Format::Json,
            message: e.to_string(),
        })
    }

    fn encode_msgpack(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let mut serializer = rmp_serde::Serializer::new(out).with_struct_map();
        self.serialize(&mut serializer)
            .map_err(|e| ProtocolError::Serialize {
                format: Format::MessagePack,
                message: e.to_string(),
            })
    }
}

/// The argument list of an outgoing Invocation: written as one JSON array or MessagePack array.
///
/// Implemented for tuples of up to twelve [`EncodeValue`]s (`()` is no arguments), for slices and
/// vectors of one value type, and for decoded [`Arguments`].
pub trait EncodeArguments {
    /// The number of arguments.
    fn count(&self) -> usize;
    /// Calls `f` with each argument in order, stopping at the first error.
    fn try_for_each(
        &self,
        f: &mut dyn FnMut(&dyn EncodeValue) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError>;
}

impl EncodeArguments for Arguments {
    fn count(&self) -> usize {
        self.items.len()
    }
    fn try_for_each(
        &self,
        f: &mut dyn FnMut(&dyn EncodeValue) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.items.iter().try_for_each(|v| f(v))
    }
}

impl<T: EncodeValue> EncodeArguments for [T] {
    fn count(&self) -> usize {
        self.len()
    }
    fn try_for_each(
        &self,
        f: &mut dyn FnMut(&dyn EncodeValue) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.iter().try_for_each(|v| f(v))
    }
}

impl<T: EncodeValue> EncodeArguments for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }
    fn try_for_each(
        &self,
        f: &mut dyn FnMut(&dyn EncodeValue) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.iter().try_for_each(|v| f(v))
    }
}

impl<A: EncodeArguments + ?Sized> EncodeArguments for &A {
    fn count(&self) -> usize {
        (**self).count()
    }
    fn try_for_each(
        &self,
        f: &mut dyn FnMut(&dyn EncodeValue) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        (**self).try_for_each(f)
    }
}

macro_rules! tuple_arguments {
    ($count:expr; $($name:ident $index:tt),*) => {
        impl<$($name: EncodeValue),*> EncodeArguments for ($($name,)*) {
            fn count(&self) -> usize {
                $count
            }
            #[allow(unused_variables)]
            fn try_for_each(
                &self,
                f: &mut dyn FnMut(&dyn EncodeValue) -> Result<(), ProtocolError>,
            ) -> Result<(), ProtocolError> {
                $( f(&self.$index)?; )*
                Ok(())
            }
        }
    };
}

tuple_arguments!(0;);
tuple_arguments!(1; A 0);
tuple_arguments!(2; A 0, B 1);
tuple_arguments!(3; A 0, B 1, C 2);
tuple_arguments!(4; A 0, B 1, C 2, D 3);
tuple_arguments!(5; A 0, B 1, C 2, D 3, E 4);
tuple_arguments!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_arguments!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_arguments!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_arguments!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_arguments!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_arguments!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_arguments!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
