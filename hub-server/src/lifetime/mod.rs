//! The registry of connections, groups and users of one hub, behind the [`LifetimeManager`] seam
//! (SignalR's `HubLifetimeManager`, socketioxide's adapter), so that a backplane — Redis, say —
//! can carry sends, groups, client results and introspection across servers.
//!
//! - [`LocalLifetimeManager`] is the one-process implementation and a public building block: a
//!   distributed manager wraps it to deliver to the connections of its own process.
//! - [`PreparedMessage`] is a message encoded **once per protocol**; [`Envelope`] is that
//!   encoding as data, serialisable, for another server to deliver as it is.
//! - [`Target`] (who a message is for) is serialisable too.
//! - Client results go through the manager both ways: [`LifetimeManager::invoke_client`] sends
//!   the invocation, [`LifetimeManager::complete_client_result`] hands the client's Completion
//!   back. Invocation ids start with the server's node id, so they are unique across servers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hub_core::hub::{BoxFuture, ClientResultError};
use hub_core::protocol::{Close, CompletionOutcome, EncodeArguments, Protocol, RawValue};
use serde::{Deserialize, Serialize};

use crate::connection::{Connection, SendError};

mod client_results;
mod forwarding;
mod local;
mod message;

pub use forwarding::{ForwardedRequest, ForwardedRequests, ForwardedResponse, Ownership};
pub use local::LocalLifetimeManager;
pub use message::{Envelope, PreparedMessage};

/// Who a message is for. Serialisable, so a backplane can publish it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Every connection.
    All,
    /// Every connection but these.
    AllExcept(Vec<String>),
    /// One connection.
    Connection(String),
    /// Several connections.
    Connections(Vec<String>),
    /// The members of a group.
    Group(String),
    /// The members of any of these groups (each connection once).
    Groups(Vec<String>),
    /// The members of a group but these connections.
    GroupExcept(String, Vec<String>),
    /// Every connection of a user.
    User(String),
    /// Every connection of any of these users.
    Users(Vec<String>),
}

/// What a manager is told about its place before the hub serves its first connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubBinding {
    /// The path the hub is mapped at (e.g. `/chat`): distinguishes the hubs of one server.
    pub hub: String,
    /// This server's id among the servers of a deployment ([`HubServerBuilder::node_id`],
    /// random by default).
    ///
    /// [`HubServerBuilder::node_id`]: crate::HubServerBuilder::node_id
    pub node_id: Arc<str>,
}

/// Why a lifetime manager could not do what it was asked. The local manager never fails; a
/// distributed one fails when the other servers cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifetimeError {
    /// The backplane (or the network to it) is unavailable; the operation was not done.
    #[error("the backplane is unavailable: {0}")]
    Unavailable(String),
    /// Other servers did not answer in time (introspection, a group change on another server).
    #[error("the other servers did not answer within {0:?}")]
    TimedOut(Duration),
    /// The server that owns the connection is gone.
    #[error("the server that owns connection '{0}' is gone")]
    OwnerGone(String),
}

/// A handle on a live connection of this process, given to a [`LifetimeManager`].
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    pub(crate) inner: Arc<Connection>,
}

impl ConnectionHandle {
    /// The connection id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The user the connection belongs to.
    pub fn user_id(&self) -> Option<&str> {
        self.inner.user_id.as_deref()
    }

    /// The hub protocol the connection speaks.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    /// Queues already encoded bytes (whole messages in the connection's protocol), waiting up to
    /// the hub's send timeout for room; a client whose queue stays full is closed.
    pub async fn send_encoded(&self, bytes: Bytes) -> Result<(), SendError> {
        self.inner.send(bytes).await
    }

    /// Ends the connection with `close` (e.g. on server shutdown).
    pub fn close(&self, close: Close) {
        self.inner.end(close, None);
    }

    /// Whether the connection has ended (or is ending).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closing()
    }
}

/// The registry of connections, groups and users of one hub: everything a multi-server
/// implementation must carry.
///
/// Object safe. Methods that may need the network return futures; the arguments are read before
/// the future is returned (messages are encoded then), so callers may pass borrowed data.
///
/// **Sends** complete when every local target has the message queued — never waiting on one:
/// a target whose queue is full takes it in its overflow and is closed on its own if it stays
/// stuck for the send timeout or falls further behind, so one slow client costs a sender
/// nothing and memory stays bounded — and, for a distributed manager, when the message is
/// *published* to the other servers (not when they deliver it). `Ok` therefore means "accepted
/// for delivery", never "received".
///
/// **Introspection** (`group_members`, `groups_of`, `user_connections`, `connection_count`) is
/// cluster-wide: a distributed manager asks the other servers and fails with
/// [`LifetimeError::TimedOut`] when they do not answer within its own timeout.
pub trait LifetimeManager: Send + Sync + 'static {
    /// Tells the manager which hub it serves and the server's node id. Called once, when the
    /// server is built, before any connection.
    fn bind(&self, binding: &HubBinding) {
        let _ = binding;
    }
    /// Registers a connection whose handshake completed. An error ends the connection.
    fn add_connection(&self, connection: ConnectionHandle) -> BoxFuture<Result<(), LifetimeError>>;
    /// Removes a connection that ended, its group memberships and its pending client results.
    fn remove_connection(&self, connection_id: &str) -> BoxFuture<Result<(), LifetimeError>>;
    /// A live connection of this process.
    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle>;
    /// Sends `message` to `target`. Connections that cannot keep up are closed; the others still
    /// get the message.
    fn send(
        &self,
        target: &Target,
        message: &PreparedMessage<'_>,
    ) -> BoxFuture<Result<(), LifetimeError>>;
    /// Calls `method` on one connection (wherever it is) and waits, up to `timeout`, for the
    /// client's result.
    fn invoke_client(
        &self,
        connection_id: &str,
        method: &str,
        arguments: &dyn EncodeArguments,
        timeout: Duration,
    ) -> BoxFuture<Result<RawValue, ClientResultError>>;
    /// Hands a client's Completion of a server-to-client invocation to whoever waits for it
    /// (here or on another server). `connection_id` is the connection it came from: an answer
    /// from another connection than the one asked is refused. Returns whether someone waited.
    fn complete_client_result(
        &self,
        connection_id: &str,
        invocation_id: &str,
        outcome: CompletionOutcome,
    ) -> bool;
    /// Adds a connection to a group (a connection id that is not connected is ignored). Completes
    /// when the server that owns the connection has done it.
    fn add_to_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>>;
    /// Removes a connection from a group; completes when its owner has done it.
    fn remove_from_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>>;
    /// The connection ids in a group, sorted.
    fn group_members(&self, group: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>>;
    /// The groups a connection is in, sorted.
    fn groups_of(&self, connection_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>>;
    /// The connection ids of a user, sorted.
    fn user_connections(&self, user_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>>;
    /// How many connections there are.
    fn connection_count(&self) -> BoxFuture<Result<usize, LifetimeError>>;
    /// Ends the targeted connections (the clients get a Close and do not reconnect); returns how
    /// many this server ended (a distributed manager also asks the others to end theirs).
    fn abort(&self, target: &Target) -> BoxFuture<Result<usize, LifetimeError>>;
    /// Every live connection of this process (for shutdown).
    fn local_connections(&self) -> Vec<ConnectionHandle>;

    /// The groups that have members among this process's connections, with how many (for the
    /// stats view). A distributed manager answers with its local manager's. None by default.
    fn local_groups(&self) -> Vec<(String, usize)> {
        Vec::new()
    }

    // ----- many servers without sticky sessions (see `forwarding`) ---------------------------

    /// Claims a negotiated connection for this server as a request of it arrives here: the
    /// connection becomes this server's when nobody owns it yet and `claimable` (its token may
    /// still attach a transport); otherwise says who owns it. Called before a transport
    /// attaches and for every request of a connection this server does not have.
    ///
    /// The default keeps no directory ([`Ownership::Untracked`]): one server, where only the
    /// connections it negotiated exist.
    fn claim_connection(
        &self,
        connection_id: &str,
        claimable: bool,
    ) -> BoxFuture<Result<Ownership, LifetimeError>> {
        let _ = (connection_id, claimable);
        Box::pin(std::future::ready(Ok(Ownership::Untracked)))
    }

    /// Forgets this server's claim on a connection that ended; for `tombstone` (the time its
    /// token could still attach a transport) no server may claim it again.
    fn release_connection(
        &self,
        connection_id: &str,
        tombstone: Duration,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        let _ = (connection_id, tombstone);
        Box::pin(std::future::ready(Ok(())))
    }

    /// Carries a request of connection `connection_id` to `owner` (a node id from
    /// [`Ownership::Elsewhere`]) and waits up to `timeout` for its answer.
    /// [`LifetimeError::OwnerGone`] is answered 404, as for a connection that does not exist.
    ///
    /// The default has nowhere to carry it.
    fn forward(
        &self,
        owner: &str,
        connection_id: &str,
        request: ForwardedRequest,
        timeout: Duration,
    ) -> BoxFuture<Result<ForwardedResponse, LifetimeError>> {
        let _ = (owner, request, timeout);
        Box::pin(std::future::ready(Err(LifetimeError::OwnerGone(
            connection_id.to_owned(),
        ))))
    }

    /// Hands the manager what answers the requests other servers forward to this one. Called
    /// once, when the server is built, after [`bind`](Self::bind).
    fn serve_forwarded(&self, requests: ForwardedRequests) {
        let _ = requests;
    }
}
