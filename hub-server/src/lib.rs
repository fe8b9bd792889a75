//! SignalR-style hubs for Rust: the crate applications depend on.
//!
//! A hub is a set of methods clients invoke and a set of callbacks the server pushes to them. This
//! crate serves hubs over the ASP.NET Core SignalR protocol, so the official SignalR clients work
//! unchanged, over WebSockets, Server-Sent Events or long polling (see [`HubConfig::transports`]).
//!
//! ```no_run
//! use hub_server::{Context, HubError, HubMethods, HubServer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let chat = HubMethods::<Context>::new()
//!     .method("SendMessage", |cx: Context, (user, text): (String, String)| async move {
//!         cx.clients().all().send("ReceiveMessage", (&user, &text)).await;
//!         Ok::<_, HubError>(())
//!     })
//!     .method("JoinRoom", |cx: Context, (room,): (String,)| async move {
//!         cx.groups().add(cx.connection_id(), &room).await;
//!         Ok::<_, HubError>(())
//!     });
//! let server = HubServer::builder().hub("/chat", chat).bind("127.0.0.1:5000").await?;
//! server.serve().await
//! # }
//! ```

mod clients;
mod config;
mod connection;
mod context;
mod cors;
mod dispatch;
mod endpoint;
mod lifecycle;
mod lifetime;
mod negotiation;
mod reconnect;
mod request;
mod response;
mod server;
mod service;
mod transport;

pub use clients::{CallerClients, ClientProxy, Clients, Groups, SingleClientProxy};
pub use config::{CorsConfig, HubConfig};
pub use connection::SendError;
pub use context::{Context, HubContext};
pub use hub_core::hub::{HubDispatch, HubError, HubMethods, UploadStream};
pub use hub_core::negotiate::TransportType;
pub use hub_core::{negotiate, protocol, ProtocolError};
pub use lifetime::{
    ConnectionHandle, LifetimeManager, LocalLifetimeManager, PreparedMessage, Target,
};
pub use request::{
    AllowAnonymous, Authenticator, Principal, PrincipalUserId, RequestInfo, Unauthorized,
    UserIdProvider,
};
pub use server::{HubEndpoint, HubServer, HubServerBuilder, ShutdownHandle};
pub use service::{HubService, ResponseBody};

/// The protocol core, for code that works with messages directly.
pub use hub_core as core;

/// The README's Rust examples, compiled (and run where they can) as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
