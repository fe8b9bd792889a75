//! SignalR-style hubs for Rust: the crate applications depend on.
//!
//! Today it re-exports the protocol core; the server (negotiate, transports, connection lifetime,
//! groups) is built on top of it next.

pub use hub_core::{negotiate, protocol, ProtocolError};
