//! The sans-IO core of SignalR-style hubs for Rust.
//!
//! Everything here works on bytes and values, never on sockets: the nine hub message kinds, the
//! JSON and MessagePack hub protocols with their framing, the handshake, and the negotiate types.
//! The server (`hub-server`) and the benchmark client build on it; both see exactly the bytes the
//! ASP.NET Core SignalR protocol puts on the wire.
//!
//! ```
//! use hub_core::protocol::{Completion, FrameDecoder, HubMessage, HubProtocol, Protocol, EncodeMessage};
//!
//! // Decode what a client sent: a record-separated JSON invocation, `type` written last.
//! let protocol = Protocol::Json;
//! let mut frames = FrameDecoder::new(protocol.framing(), 32 * 1024);
//! frames.push(br#"{"target":"Add","arguments":[2,3],"invocationId":"0","type":1}"#.as_slice().into());
//! frames.push(b"\x1e".as_slice().into());
//! let frame = frames.next_frame()?.expect("one whole frame");
//! let Some(HubMessage::Invocation(call)) = protocol.decode(frame)? else { panic!() };
//! let (a, b): (i32, i32) = (call.arguments.get(0).unwrap().deserialize()?, call.arguments.get(1).unwrap().deserialize()?);
//!
//! // Encode the reply straight from a Rust value.
//! let reply = Completion::result(call.invocation_id.unwrap(), a + b);
//! let bytes = protocol.encode_to_bytes(&reply)?;
//! assert_eq!(&bytes[..], b"{\"type\":3,\"invocationId\":\"0\",\"result\":5}\x1e");
//! # Ok::<(), hub_core::ProtocolError>(())
//! ```

mod error;
pub mod hub;
pub mod negotiate;
pub mod protocol;
pub mod refresh;
pub mod token;
pub mod trace;

pub use error::ProtocolError;
