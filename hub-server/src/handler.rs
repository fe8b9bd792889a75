//! Connection endpoints without the hub protocol (ASP.NET Core's `MapConnectionHandler`): the
//! same negotiate, transports (WebSockets, Server-Sent Events, long polling), authentication,
//! origin checks, limits and shutdown as a hub, but the application reads and writes the
//! client's bytes itself — what the official clients' `HttpConnection` talks to.
//!
//! ```no_run
//! # async fn run() -> Result<(), hub_server::ServerError> {
//! use hub_server::{HubServer, RawConnection};
//!
//! // An echo: every chunk the client sends comes back.
//! HubServer::builder()
//!     .connection_handler("/echo", |mut connection: RawConnection| async move {
//!         while let Some(bytes) = connection.recv().await {
//!             if connection.send(bytes).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//!     .bind(("127.0.0.1", 5000))
//!     .await?
//!     .serve()
//!     .await
//! # }
//! ```
//!
//! The client's bytes arrive as it sent them: a WebSocket message, the body of a POST (Server-Sent
//! Events and long polling) — framing messages inside them is the application's business, as with
//! ASP.NET Core's connection handlers. What the handler sends goes out as one WebSocket message
//! (a text frame when the bytes are UTF-8, else binary; always binary after
//! [`RawConnection::use_binary_frames`]), one event (Server-Sent Events carry text only), or part
//! of the next poll's body.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use hub_core::hub::BoxFuture;
use hub_core::negotiate::TransportType;
use tokio::sync::mpsc;

use crate::auth::Principal;
use crate::request::RequestInfo;

/// What runs for each connection of a connection endpoint.
///
/// Any `Fn(RawConnection) -> impl Future<Output = ()>` is one. The connection ends when the
/// handler returns (the server then closes it), when the client goes away ([`RawConnection::recv`]
/// gives `None`), or when the server shuts down.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Runs one connection.
    fn on_connected(&self, connection: RawConnection) -> BoxFuture<()>;
}

impl<F, Fut> ConnectionHandler for F
where
    F: Fn(RawConnection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn on_connected(&self, connection: RawConnection) -> BoxFuture<()> {
        Box::pin(self(connection))
    }
}

/// What a handler writes.
pub(crate) enum Outgoing {
    /// Bytes for the client.
    Data(Bytes),
    /// From now on, WebSocket messages are binary (true) or text (false).
    Binary(bool),
}

/// The connection was closed (by the client, the server, or the handler's other half).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct ConnectionClosed;

/// One connection of a connection endpoint, as its handler sees it.
#[derive(Debug)]
pub struct RawConnection {
    id: Arc<str>,
    transport: TransportType,
    request: RequestInfo,
    principal: Arc<Principal>,
    incoming: mpsc::Receiver<Bytes>,
    sender: RawSender,
}

impl RawConnection {
    pub(crate) fn new(
        id: Arc<str>,
        transport: TransportType,
        request: RequestInfo,
        principal: Arc<Principal>,
        incoming: mpsc::Receiver<Bytes>,
        outgoing: mpsc::Sender<Outgoing>,
    ) -> Self {
        RawConnection {
            id,
            transport,
            request,
            principal,
            incoming,
            sender: RawSender { outgoing },
        }
    }

    /// The connection id negotiate gave the client.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The transport the client uses.
    pub fn transport(&self) -> TransportType {
        self.transport
    }

    /// The request that opened the transport (headers, query, peer address).
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// Who the client is, as the endpoint's authenticator decided.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The next bytes the client sent; `None` once the client went away or the server is
    /// shutting down. Not reading holds the client back (the transport stops reading).
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.incoming.recv().await
    }

    /// Sends bytes to the client, waiting while the connection's queue (the hub setting
    /// `outbound_queue_capacity`) is full.
    pub async fn send(&self, bytes: impl Into<Bytes>) -> Result<(), ConnectionClosed> {
        self.sender.send(bytes).await
    }

    /// Sends WebSocket messages as binary frames from now on (by default, text frames for UTF-8
    /// bytes and binary frames for the rest; other transports are unaffected).
    pub async fn use_binary_frames(&self) -> Result<(), ConnectionClosed> {
        self.sender
            .outgoing
            .send(Outgoing::Binary(true))
            .await
            .map_err(|_| ConnectionClosed)
    }

    /// A sender for other tasks (e.g. to write while this one reads).
    pub fn sender(&self) -> RawSender {
        self.sender.clone()
    }
}

/// Sends to one connection of a connection endpoint; cheap to clone. The connection stays open
/// while the handler runs, even if every sender is dropped.
#[derive(Debug, Clone)]
pub struct RawSender {
    outgoing: mpsc::Sender<Outgoing>,
}

impl RawSender {
    /// Sends bytes to the client, waiting while the connection's queue is full.
    pub async fn send(&self, bytes: impl Into<Bytes>) -> Result<(), ConnectionClosed> {
        self.outgoing
            .send(Outgoing::Data(bytes.into()))
            .await
            .map_err(|_| ConnectionClosed)
    }
}
