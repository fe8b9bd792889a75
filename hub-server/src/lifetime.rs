//! The registry of connections, groups and users, behind a trait so that a backplane (e.g. Redis)
//! can later carry broadcasts and groups across servers.
//!
//! [`LocalLifetimeManager`] is the one-process implementation. A message sent to many connections
//! is encoded **once per protocol** ([`PreparedMessage`]) and each connection's queue gets a cheap
//! clone of the bytes.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use std::time::Duration;

use bytes::Bytes;
use hub_core::hub::{BoxFuture, HubError};
use hub_core::protocol::{
    Close, CompletionOutcome, EncodeArguments, EncodeMessage, HubProtocol, Invocation, MessageRef,
    Protocol, RawValue,
};
use hub_core::ProtocolError;

use crate::connection::{Connection, SendError, TrySendError};

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A message about to be sent to many connections: encoded at most once per protocol, on first
/// use.
pub struct PreparedMessage<'a> {
    message: MessageRef<'a>,
    encoded: [OnceCell<Result<Bytes, ProtocolError>>; 2],
}

impl<'a> PreparedMessage<'a> {
    /// Prepares `message`; nothing is encoded yet.
    pub fn new(message: &'a dyn EncodeMessage) -> Self {
        PreparedMessage {
            message: message.as_message_ref(),
            encoded: [OnceCell::new(), OnceCell::new()],
        }
    }

    /// The message framed in `protocol`, encoded on the first call for that protocol.
    pub fn encoded(&self, protocol: Protocol) -> Result<Bytes, ProtocolError> {
        let slot = match protocol {
            Protocol::Json => &self.encoded[0],
            Protocol::MessagePack => &self.encoded[1],
        };
        slot.get_or_init(|| protocol.encode_to_bytes(&self.message))
            .clone()
    }
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
}

/// The registry of connections, groups and users of one hub.
///
/// Object safe. Methods that may need the network in a multi-server implementation return futures;
/// sends encode synchronously (the futures own what they need), so callers may pass borrowed
/// arguments. A send's future completes when every target has the message queued: a target whose
/// queue is full is waited for (backpressure on the sender) up to the hub's send timeout, then
/// closed, so one slow client costs a broadcaster at most that long and never memory.
pub trait LifetimeManager: Send + Sync + 'static {
    /// Registers a connection whose handshake completed.
    fn add_connection(&self, connection: ConnectionHandle);
    /// Removes a connection that ended, and its group memberships.
    fn remove_connection(&self, connection_id: &str);
    /// A live connection of this process.
    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle>;
    /// Sends `message` to `target`. Connections that cannot keep up are closed; the others still
    /// get the message.
    fn send(&self, target: &Target, message: &PreparedMessage<'_>) -> BoxFuture<()>;
    /// Calls `method` on one connection and waits (up to `timeout`) for the client's result.
    fn invoke_client(
        &self,
        connection_id: &str,
        method: &str,
        arguments: &dyn EncodeArguments,
        timeout: Duration,
    ) -> BoxFuture<Result<RawValue, HubError>>;
    /// Adds a connection to a group (a connection id that is not connected is ignored).
    fn add_to_group(&self, connection_id: &str, group: &str) -> BoxFuture<()>;
    /// Removes a connection from a group.
    fn remove_from_group(&self, connection_id: &str, group: &str) -> BoxFuture<()>;
    /// The connection ids in a group.
    fn group_members(&self, group: &str) -> BoxFuture<Vec<String>>;
    /// The groups a connection is in.
    fn groups_of(&self, connection_id: &str) -> BoxFuture<Vec<String>>;
    /// The connection ids of a user.
    fn user_connections(&self, user_id: &str) -> BoxFuture<Vec<String>>;
    /// How many connections there are.
    fn connection_count(&self) -> BoxFuture<usize>;
    /// Every live connection of this process (for shutdown).
    fn local_connections(&self) -> Vec<ConnectionHandle>;
}

#[derive(Default)]
struct Registry {
    connections: HashMap<Arc<str>, ConnectionHandle>,
    groups: HashMap<Arc<str>, HashSet<Arc<str>>>,
    groups_of: HashMap<Arc<str>, HashSet<Arc<str>>>,
    users: HashMap<Arc<str>, HashSet<Arc<str>>>,
}

/// Frames that found a full queue, to wait for.
type Backlog = Vec<(Arc<Connection>, Bytes)>;

impl Registry {
    /// Queues the message for one connection, or records it in `backlog` if its queue is full.
    fn deliver(&self, id: &str, message: &PreparedMessage<'_>, backlog: &mut Backlog) {
        let Some(connection) = self.connections.get(id) else {
            return;
        };
        let bytes = match message.encoded(connection.inner.protocol) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(connection_id = %id, %error, "a message could not be encoded; it was not sent");
                return;
            }
        };
        if let Err(TrySendError::Full(bytes)) = connection.inner.try_send(bytes) {
            backlog.push((connection.inner.clone(), bytes));
        }
    }

    fn deliver_all<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a Arc<str>>,
        except: &[String],
        message: &PreparedMessage<'_>,
        backlog: &mut Backlog,
    ) {
        for id in ids {
            if !except.iter().any(|e| **e == **id) {
                self.deliver(id, message, backlog);
            }
        }
    }

    fn members_of_any(&self, names: &[String]) -> HashSet<Arc<str>> {
        names
            .iter()
            .filter_map(|name| self.groups.get(name.as_str()))
            .flat_map(|members| members.iter().cloned())
            .collect()
    }

    fn connections_of_any(&self, users: &[String]) -> HashSet<Arc<str>> {
        users
            .iter()
            .filter_map(|user| self.users.get(user.as_str()))
            .flat_map(|ids| ids.iter().cloned())
            .collect()
    }
}

/// The lifetime manager of a single process.
#[derive(Default)]
pub struct LocalLifetimeManager {
    registry: RwLock<Registry>,
}

impl LocalLifetimeManager {
    /// An empty registry.
    pub fn new() -> Self {
        LocalLifetimeManager::default()
    }

    fn read<R>(&self, f: impl FnOnce(&Registry) -> R) -> R {
        f(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<T> {
    Box::pin(std::future::ready(value))
}

fn sorted(ids: impl IntoIterator<Item = Arc<str>>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    ids.sort();
    ids
}

impl LifetimeManager for LocalLifetimeManager {
    fn add_connection(&self, connection: ConnectionHandle) {
        let id = connection.inner.id.clone();
        let user = connection.inner.user_id.clone();
        self.write(|registry| {
            if let Some(user) = user {
                registry.users.entry(user).or_default().insert(id.clone());
            }
            registry.connections.insert(id, connection);
        });
    }

    fn remove_connection(&self, connection_id: &str) {
        self.write(|registry| {
            let Some(connection) = registry.connections.remove(connection_id) else {
                return;
            };
            if let Some(user) = &connection.inner.user_id {
                if let Some(ids) = registry.users.get_mut(user) {
                    ids.remove(connection_id);
                    if ids.is_empty() {
                        registry.users.remove(user);
                    }
                }
            }
            for group in registry.groups_of.remove(connection_id).unwrap_or_default() {
                if let Some(members) = registry.groups.get_mut(&group) {
                    members.remove(connection_id);
                    if members.is_empty() {
                        registry.groups.remove(&group);
                    }
                }
            }
        });
    }

    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle> {
        self.read(|registry| registry.connections.get(connection_id).cloned())
    }

    fn send(&self, target: &Target, message: &PreparedMessage<'_>) -> BoxFuture<()> {
        let mut backlog = Backlog::new();
        self.read(|registry| {
            let backlog = &mut backlog;
            match target {
                Target::All => {
                    registry.deliver_all(registry.connections.keys(), &[], message, backlog)
                }
                Target::AllExcept(except) => {
                    registry.deliver_all(registry.connections.keys(), except, message, backlog)
                }
                Target::Connection(id) => registry.deliver(id, message, backlog),
                Target::Connections(ids) => {
                    let unique: HashSet<&str> = ids.iter().map(String::as_str).collect();
                    for id in unique {
                        registry.deliver(id, message, backlog);
                    }
                }
                Target::Group(group) => {
                    if let Some(members) = registry.groups.get(group.as_str()) {
                        registry.deliver_all(members, &[], message, backlog);
                    }
                }
                Target::Groups(groups) => {
                    registry.deliver_all(&registry.members_of_any(groups), &[], message, backlog)
                }
                Target::GroupExcept(group, except) => {
                    if let Some(members) = registry.groups.get(group.as_str()) {
                        registry.deliver_all(members, except, message, backlog);
                    }
                }
                Target::User(user) => {
                    if let Some(ids) = registry.users.get(user.as_str()) {
                        registry.deliver_all(ids, &[], message, backlog);
                    }
                }
                Target::Users(users) => {
                    registry.deliver_all(&registry.connections_of_any(users), &[], message, backlog)
                }
            }
        });
        if backlog.is_empty() {
            return ready(());
        }
        Box::pin(async move {
            futures_util::future::join_all(
                backlog
                    .into_iter()
                    .map(|(connection, bytes)| async move { connection.send(bytes).await }),
            )
            .await;
        })
    }

    fn invoke_client(
        &self,
        connection_id: &str,
        method: &str,
        arguments: &dyn EncodeArguments,
        timeout: Duration,
    ) -> BoxFuture<Result<RawValue, HubError>> {
        let Some(connection) = self.connection(connection_id) else {
            return ready(Err(HubError::new(format!(
                "Connection '{connection_id}' does not exist."
            ))));
        };
        let connection = connection.inner;
        let Some((id, answer)) = connection.start_client_call() else {
            return ready(Err(HubError::new(
                "The connection was closed before the client answered.",
            )));
        };
        let invocation = Invocation::new(method, arguments).with_id(id.as_str());
        let Some(bytes) = connection.encode(&invocation) else {
            connection.cancel_client_call(&id);
            return ready(Err(HubError::new(
                "The client invocation could not be encoded.",
            )));
        };
        Box::pin(async move {
            if connection.send(bytes).await.is_err() {
                connection.cancel_client_call(&id);
                return Err(HubError::new(
                    "The connection was closed before the client answered.",
                ));
            }
            match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(CompletionOutcome::Result(value))) => Ok(value),
                Ok(Ok(CompletionOutcome::Error(error))) => Err(HubError::new(error.to_string())),
                Ok(Ok(CompletionOutcome::NoResult)) => {
                    Err(HubError::new("Client didn't provide a result."))
                }
                Ok(Err(_)) => Err(HubError::new(
                    "The connection was closed before the client answered.",
                )),
                Err(_) => {
                    connection.cancel_client_call(&id);
                    Err(HubError::new(format!(
                        "The client did not answer within {timeout:?}."
                    )))
                }
            }
        })
    }

    fn add_to_group(&self, connection_id: &str, group: &str) -> BoxFuture<()> {
        self.write(|registry| {
            let Some((id, _)) = registry.connections.get_key_value(connection_id) else {
                return;
            };
            let id = id.clone();
            let group: Arc<str> = Arc::from(group);
            registry
                .groups
                .entry(group.clone())
                .or_default()
                .insert(id.clone());
            registry.groups_of.entry(id).or_default().insert(group);
        });
        ready(())
    }

    fn remove_from_group(&self, connection_id: &str, group: &str) -> BoxFuture<()> {
        self.write(|registry| {
            if let Some(members) = registry.groups.get_mut(group) {
                members.remove(connection_id);
                if members.is_empty() {
                    registry.groups.remove(group);
                }
            }
            if let Some(groups) = registry.groups_of.get_mut(connection_id) {
                groups.remove(group);
                if groups.is_empty() {
                    registry.groups_of.remove(connection_id);
                }
            }
        });
        ready(())
    }

    fn group_members(&self, group: &str) -> BoxFuture<Vec<String>> {
        let members =
            self.read(|registry| sorted(registry.groups.get(group).into_iter().flatten().cloned()));
        ready(members)
    }

    fn groups_of(&self, connection_id: &str) -> BoxFuture<Vec<String>> {
        let groups = self.read(|registry| {
            sorted(
                registry
                    .groups_of
                    .get(connection_id)
                    .into_iter()
                    .flatten()
                    .cloned(),
            )
        });
        ready(groups)
    }

    fn user_connections(&self, user_id: &str) -> BoxFuture<Vec<String>> {
        let ids = self
            .read(|registry| sorted(registry.users.get(user_id).into_iter().flatten().cloned()));
        ready(ids)
    }

    fn connection_count(&self) -> BoxFuture<usize> {
        ready(self.read(|registry| registry.connections.len()))
    }

    fn local_connections(&self) -> Vec<ConnectionHandle> {
        self.read(|registry| registry.connections.values().cloned().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hub_core::negotiate::TransportType;
    use hub_core::protocol::Invocation;

    use super::*;
    use crate::connection::{ConnectionParts, Outbox};
    use crate::request::{Principal, RequestInfo};

    /// A value that counts how often it is serialized.
    struct Counted<'a>(&'a AtomicUsize);

    impl serde::Serialize for Counted<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            serializer.serialize_str("payload")
        }
    }

    fn connection(id: &str, protocol: Protocol, user: Option<&str>) -> (ConnectionHandle, Outbox) {
        let request = RequestInfo::from_parts(&http::Request::new(()).into_parts().0);
        let (inner, outbox) = Connection::new(ConnectionParts {
            id: Arc::from(id),
            send_timeout: Duration::from_millis(50),
            user_id: user.map(Arc::from),
            principal: Principal::anonymous(),
            request,
            transport: TransportType::WebSockets,
            protocol,
            queue_capacity: 4,
        });
        (ConnectionHandle { inner }, outbox)
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
        }
    }

    fn received(outbox: &mut Outbox) -> Vec<Bytes> {
        std::iter::from_fn(|| outbox.receiver.try_recv().ok()).collect()
    }

    #[test]
    fn a_broadcast_is_encoded_once_per_protocol() {
        let manager = LocalLifetimeManager::new();
        let mut outboxes = Vec::new();
        for i in 0..10 {
            let protocol = if i % 2 == 0 {
                Protocol::Json
            } else {
                Protocol::MessagePack
            };
            let (handle, outbox) = connection(&format!("c{i}"), protocol, None);
            manager.add_connection(handle);
            outboxes.push((protocol, outbox));
        }
        let encodes = AtomicUsize::new(0);
        let invocation = Invocation::new("Receive", (Counted(&encodes),));
        block_on(manager.send(&Target::All, &PreparedMessage::new(&invocation)));
        assert_eq!(
            encodes.load(Ordering::SeqCst),
            2,
            "once for JSON, once for MessagePack"
        );
        for (protocol, outbox) in &mut outboxes {
            let frames = received(outbox);
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0], protocol.encode_to_bytes(&invocation).unwrap());
        }
    }

    #[test]
    fn targets_reach_exactly_their_connections() {
        let manager = LocalLifetimeManager::new();
        let mut outboxes = HashMap::new();
        for (id, user) in [
            ("a", Some("ann")),
            ("b", Some("bob")),
            ("c", Some("bob")),
            ("d", None),
        ] {
            let (handle, outbox) = connection(id, Protocol::Json, user);
            manager.add_connection(handle);
            outboxes.insert(id, outbox);
        }
        block_on(manager.add_to_group("a", "g"));
        block_on(manager.add_to_group("b", "g"));
        block_on(manager.add_to_group("b", "h"));
        block_on(manager.add_to_group("nobody", "g"));
        let cases: Vec<(Target, &[&str])> = vec![
            (Target::All, &["a", "b", "c", "d"]),
            (Target::AllExcept(vec!["a".into()]), &["b", "c", "d"]),
            (Target::Connection("c".into()), &["c"]),
            (
                Target::Connections(vec!["a".into(), "a".into(), "d".into()]),
                &["a", "d"],
            ),
            (Target::Group("g".into()), &["a", "b"]),
            (Target::Groups(vec!["g".into(), "h".into()]), &["a", "b"]),
            (Target::GroupExcept("g".into(), vec!["a".into()]), &["b"]),
            (Target::User("bob".into()), &["b", "c"]),
            (
                Target::Users(vec!["ann".into(), "bob".into()]),
                &["a", "b", "c"],
            ),
            (Target::Group("none".into()), &[]),
        ];
        for (target, expected) in cases {
            let invocation = Invocation::new("M", ());
            block_on(manager.send(&target, &PreparedMessage::new(&invocation)));
            let mut got: Vec<&str> = outboxes
                .iter_mut()
                .filter_map(|(id, outbox)| (!received(outbox).is_empty()).then_some(*id))
                .collect();
            got.sort();
            assert_eq!(got, expected, "{target:?}");
        }
        assert_eq!(block_on(manager.group_members("g")), ["a", "b"]);
        assert_eq!(block_on(manager.groups_of("b")), ["g", "h"]);
        manager.remove_connection("b");
        assert_eq!(block_on(manager.group_members("g")), ["a"]);
        assert!(block_on(manager.group_members("h")).is_empty());
        assert_eq!(block_on(manager.user_connections("bob")), ["c"]);
        assert_eq!(block_on(manager.connection_count()), 3);
    }

    #[tokio::test]
    async fn a_full_queue_delays_the_sender_then_closes_only_that_connection() {
        let manager = LocalLifetimeManager::new();
        let (slow, _slow_outbox) = connection("slow", Protocol::Json, None);
        let (fast, mut fast_outbox) = connection("fast", Protocol::Json, None);
        manager.add_connection(slow.clone());
        manager.add_connection(fast.clone());
        for i in 0..6 {
            let invocation = Invocation::new("M", (i,));
            let sent = manager.send(&Target::All, &PreparedMessage::new(&invocation));
            assert_eq!(
                received(&mut fast_outbox).len(),
                1,
                "the fast client has it before any wait"
            );
            sent.await;
        }
        assert!(
            slow.inner.closing().is_cancelled(),
            "the queue of 4 stayed full for the send timeout"
        );
        assert!(!fast.inner.closing().is_cancelled());
        let ending = slow.inner.ending().unwrap();
        assert_eq!(ending.message, Close::with_error());
        assert!(!ending.flush);
    }
}
