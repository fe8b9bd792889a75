//! Many servers without sticky sessions: which server owns a connection, and the HTTP requests
//! of a connection (sends, polls, DELETE) that reached another server, carried to its owner and
//! answered through the server they reached.
//!
//! A connection lives on the server its transport attached to. Connection tokens are signed
//! with a key every server shares ([`HubServerBuilder::connection_token_key`]), so any server
//! can check one; a distributed [`LifetimeManager`](super::LifetimeManager) records who owns
//! each connection ([`claim_connection`](super::LifetimeManager::claim_connection)) and carries
//! requests to the owner ([`forward`](super::LifetimeManager::forward)), which answers them
//! with [`ForwardedRequests`].
//!
//! [`HubServerBuilder::connection_token_key`]: crate::HubServerBuilder::connection_token_key

use std::sync::Arc;

use bytes::Bytes;
use hub_core::hub::BoxFuture;
use serde::{Deserialize, Serialize};

/// Who owns a connection, as a distributed lifetime manager knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ownership {
    /// This server: it just claimed the connection, or owned it already.
    Here,
    /// Another live server, by node id: requests of the connection are forwarded to it.
    Elsewhere(String),
    /// The connection ended, its server died, or nobody claimed it while it could be claimed:
    /// its requests get 404.
    Gone,
    /// The manager keeps no directory of owners (one server): only connections this server
    /// negotiated exist.
    Untracked,
}

/// An HTTP request of a connection, carried to the server that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedRequest {
    /// `GET` (a poll), `POST` (a send) or `DELETE`.
    pub method: String,
    /// The path and query, as the client sent them.
    pub path_and_query: String,
    /// The request's headers (credentials included: the owner authenticates the request again).
    pub headers: Vec<(String, Bytes)>,
    /// The body (a send's messages), cut one byte past the hub's size limit.
    pub body: Bytes,
}

/// The owner's answer to a [`ForwardedRequest`], given to the client as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedResponse {
    /// The status code.
    pub status: u16,
    /// The response's headers.
    pub headers: Vec<(String, Bytes)>,
    /// The body.
    pub body: Bytes,
}

type Handler = dyn Fn(ForwardedRequest) -> BoxFuture<ForwardedResponse> + Send + Sync;

/// What answers the requests other servers forward to this one, for one hub: a distributed
/// manager receives it once ([`LifetimeManager::serve_forwarded`]) and calls
/// [`handle`](Self::handle) for each request that arrives for this server.
///
/// [`LifetimeManager::serve_forwarded`]: super::LifetimeManager::serve_forwarded
#[derive(Clone)]
pub struct ForwardedRequests {
    handler: Arc<Handler>,
}

impl std::fmt::Debug for ForwardedRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardedRequests(..)")
    }
}

impl ForwardedRequests {
    pub(crate) fn new(
        handler: impl Fn(ForwardedRequest) -> BoxFuture<ForwardedResponse> + Send + Sync + 'static,
    ) -> Self {
        ForwardedRequests {
            handler: Arc::new(handler),
        }
    }

    /// Answers a request another server forwarded, as if it had arrived here (never forwarded
    /// again: a connection this server does not have gets 404).
    pub fn handle(&self, request: ForwardedRequest) -> BoxFuture<ForwardedResponse> {
        (self.handler)(request)
    }
}
