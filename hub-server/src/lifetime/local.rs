//! The lifetime manager of a single process, and the building block of distributed ones.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use hub_core::hub::{BoxFuture, ClientResultError};
use hub_core::protocol::{
    Close, CompletionOutcome, EncodeArguments, Invocation, Protocol, RawValue,
};

use super::client_results::ClientResults;
use super::{
    ConnectionHandle, HubBinding, LifetimeError, LifetimeManager, PreparedMessage, Target,
};
use crate::memory::shrink_map;

/// Connections by id, and the members of each group and user — each member with its connection,
/// so that a send to a group or a user reaches every member without looking its id up again
/// (at ten thousand members, that lookup was a hash and three cache misses per member).
#[derive(Default)]
struct Registry {
    connections: HashMap<Arc<str>, ConnectionHandle>,
    groups: HashMap<Arc<str>, Members>,
    groups_of: HashMap<Arc<str>, HashSet<Arc<str>>>,
    users: HashMap<Arc<str>, Members>,
}

/// The connections of a group or a user, by id.
type Members = HashMap<Arc<str>, ConnectionHandle>;

impl Registry {
    /// Queues the message for one connection (a client that cannot keep up is closed on its own).
    fn deliver(&self, id: &str, connection: &ConnectionHandle, message: &PreparedMessage<'_>) {
        let bytes = match message.encoded(connection.inner.protocol) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(connection_id = %id, %error, "a message could not be encoded; it was not sent");
                return;
            }
        };
        // Never waits: a client that cannot keep up is closed on its own.
        let _ = connection.inner.send_now(bytes);
    }

    /// Calls `f` once for every connection `target` reaches here.
    fn for_each_target(&self, target: &Target, mut f: impl FnMut(&Arc<str>, &ConnectionHandle)) {
        let mut each = |members: &mut dyn Iterator<Item = (&Arc<str>, &ConnectionHandle)>,
                        except: &[String]| {
            for (id, connection) in members {
                if !except.iter().any(|e| **e == **id) {
                    f(id, connection);
                }
            }
        };
        let known = |id: &String| self.connections.get_key_value(id.as_str());
        match target {
            Target::All => each(&mut self.connections.iter(), &[]),
            Target::AllExcept(except) => each(&mut self.connections.iter(), except),
            Target::Connection(id) => each(&mut known(id).into_iter(), &[]),
            Target::Connections(ids) => {
                let unique: HashSet<&String> = ids.iter().collect();
                each(&mut unique.into_iter().filter_map(known), &[]);
            }
            Target::Group(group) => each(
                &mut self.groups.get(group.as_str()).into_iter().flatten(),
                &[],
            ),
            Target::Groups(groups) => each(&mut union(&self.groups, groups).into_iter(), &[]),
            Target::GroupExcept(group, except) => each(
                &mut self.groups.get(group.as_str()).into_iter().flatten(),
                except,
            ),
            Target::User(user) => each(
                &mut self.users.get(user.as_str()).into_iter().flatten(),
                &[],
            ),
            Target::Users(users) => each(&mut union(&self.users, users).into_iter(), &[]),
        }
    }

    /// Queues `message` for every connection `target` reaches here; returns how many.
    fn deliver_to(&self, target: &Target, message: &PreparedMessage<'_>) -> u64 {
        let mut reached = 0;
        self.for_each_target(target, |id, connection| {
            self.deliver(id, connection, message);
            reached += 1;
        });
        reached
    }
}

/// The members of any of the `names` sets of `sets` (groups or users), each once.
fn union<'a>(
    sets: &'a HashMap<Arc<str>, Members>,
    names: &[String],
) -> HashMap<&'a Arc<str>, &'a ConnectionHandle> {
    names
        .iter()
        .filter_map(|name| sets.get(name.as_str()))
        .flatten()
        .collect()
}

/// The lifetime manager of a single process.
///
/// A distributed manager wraps one to reach the connections of its own process: it registers
/// them here, and delivers here what other servers publish (an [`super::Envelope`] becomes a
/// [`PreparedMessage::from_envelope`]); client results of local connections are started and
/// completed here, whoever asked.
#[derive(Default)]
pub struct LocalLifetimeManager {
    registry: RwLock<Registry>,
    /// Connections per protocol: a send encodes, before taking the registry's lock, for the
    /// protocols that have connections.
    per_protocol: [AtomicUsize; 2],
    client_results: OnceLock<Arc<ClientResults>>,
    /// `hubs.broadcast.deliveries` of the hub it is bound to.
    deliveries: OnceLock<::metrics::Counter>,
}

/// A client result being awaited: forgotten when the wait ends, however it ends (answered, timed
/// out, connection gone, or the caller stopped waiting).
struct Waiting {
    results: Arc<ClientResults>,
    id: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.results.cancel(&self.id);
    }
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

    fn client_results(&self) -> &Arc<ClientResults> {
        self.client_results
            .get_or_init(|| Arc::new(ClientResults::new("local")))
    }

    fn counter(&self, protocol: Protocol) -> &AtomicUsize {
        match protocol {
            Protocol::Json => &self.per_protocol[0],
            Protocol::MessagePack => &self.per_protocol[1],
        }
    }

    /// The connection ids `target` reaches on this server, each once.
    pub fn resolve(&self, target: &Target) -> Vec<String> {
        self.read(|registry| {
            let mut ids = Vec::new();
            registry.for_each_target(target, |id, _| ids.push(id.to_string()));
            ids.sort();
            ids
        })
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
    fn bind(&self, binding: &HubBinding) {
        let _ = self
            .client_results
            .set(Arc::new(ClientResults::new(&binding.node_id)));
        let _ = self.deliveries.set(::metrics::counter!(
            crate::observability::names::DELIVERIES,
            "hub" => binding.hub.clone()
        ));
    }

    fn add_connection(&self, connection: ConnectionHandle) -> BoxFuture<Result<(), LifetimeError>> {
        let id = connection.inner.id.clone();
        let user = connection.inner.user_id.clone();
        self.counter(connection.inner.protocol)
            .fetch_add(1, Ordering::Relaxed);
        self.write(|registry| {
            if let Some(user) = user {
                registry
                    .users
                    .entry(user)
                    .or_default()
                    .insert(id.clone(), connection.clone());
            }
            // A connection added again under its id takes over the groups it was in (they hold
            // the connection itself, not its id).
            let Registry {
                groups, groups_of, ..
            } = registry;
            for group in groups_of.get(&id).into_iter().flatten() {
                if let Some(member) = groups
                    .get_mut(group)
                    .and_then(|members| members.get_mut(&id))
                {
                    *member = connection.clone();
                }
            }
            registry.connections.insert(id, connection);
        });
        ready(Ok(()))
    }

    fn remove_connection(&self, connection_id: &str) -> BoxFuture<Result<(), LifetimeError>> {
        let removed = self.write(|registry| {
            let connection = registry.connections.remove(connection_id)?;
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
                    } else {
                        shrink_map(members);
                    }
                }
            }
            shrink_map(&mut registry.connections);
            shrink_map(&mut registry.users);
            shrink_map(&mut registry.groups);
            shrink_map(&mut registry.groups_of);
            Some(connection)
        });
        if let Some(connection) = removed {
            self.counter(connection.inner.protocol)
                .fetch_sub(1, Ordering::Relaxed);
        }
        self.client_results().fail_connection(connection_id);
        ready(Ok(()))
    }

    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle> {
        self.read(|registry| registry.connections.get(connection_id).cloned())
    }

    fn send(
        &self,
        target: &Target,
        message: &PreparedMessage<'_>,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        // Encode before the lock: readers of the registry never wait for serde.
        for protocol in [Protocol::Json, Protocol::MessagePack] {
            if self.counter(protocol).load(Ordering::Relaxed) > 0 {
                message.encode(protocol);
            }
        }
        let reached = self.read(|registry| registry.deliver_to(target, message));
        if !matches!(target, Target::Connection(_)) {
            if let Some(deliveries) = self.deliveries.get() {
                deliveries.increment(reached);
            }
        }
        ready(Ok(()))
    }

    fn invoke_client(
        &self,
        connection_id: &str,
        method: &str,
        arguments: &dyn EncodeArguments,
        timeout: Duration,
    ) -> BoxFuture<Result<RawValue, ClientResultError>> {
        // Registered under the registry's lock: a connection removed after this point fails the
        // invocation in `remove_connection`; one removed before is not found.
        let started = self.read(|registry| {
            let connection = registry.connections.get(connection_id)?.inner.clone();
            let (id, answer) = self.client_results().start(connection.id.clone());
            Some((connection, id, answer))
        });
        let Some((connection, id, answer)) = started else {
            return ready(Err(ClientResultError::NoSuchConnection(
                connection_id.to_owned(),
            )));
        };
        let invocation = Invocation::new(method, arguments).with_id(id.as_str());
        let waiting = Waiting {
            results: self.client_results().clone(),
            id,
        };
        let Some(bytes) = connection.encode(&invocation) else {
            return ready(Err(ClientResultError::Encode));
        };
        Box::pin(async move {
            if connection.send(bytes).await.is_err() {
                return Err(ClientResultError::ConnectionClosed);
            }
            let answer = tokio::select! {
                biased;
                answer = answer => answer.unwrap_or(Err(ClientResultError::ConnectionClosed)),
                () = connection.closing().cancelled() => Err(ClientResultError::ConnectionClosed),
                () = tokio::time::sleep(timeout) => Err(ClientResultError::TimedOut(timeout)),
            };
            drop(waiting);
            answer
        })
    }

    fn complete_client_result(
        &self,
        connection_id: &str,
        invocation_id: &str,
        outcome: CompletionOutcome,
    ) -> bool {
        self.client_results()
            .complete(connection_id, invocation_id, outcome)
    }

    fn add_to_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.write(|registry| {
            let Some((id, connection)) = registry.connections.get_key_value(connection_id) else {
                return;
            };
            let (id, connection) = (id.clone(), connection.clone());
            let group: Arc<str> = Arc::from(group);
            registry
                .groups
                .entry(group.clone())
                .or_default()
                .insert(id.clone(), connection);
            registry.groups_of.entry(id).or_default().insert(group);
        });
        ready(Ok(()))
    }

    fn remove_from_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
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
        ready(Ok(()))
    }

    fn group_members(&self, group: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        let members = self.read(|registry| {
            sorted(
                registry
                    .groups
                    .get(group)
                    .into_iter()
                    .flat_map(|m| m.keys().cloned()),
            )
        });
        ready(Ok(members))
    }

    fn groups_of(&self, connection_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
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
        ready(Ok(groups))
    }

    fn user_connections(&self, user_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        let ids = self.read(|registry| {
            sorted(
                registry
                    .users
                    .get(user_id)
                    .into_iter()
                    .flat_map(|m| m.keys().cloned()),
            )
        });
        ready(Ok(ids))
    }

    fn connection_count(&self) -> BoxFuture<Result<usize, LifetimeError>> {
        ready(Ok(self.read(|registry| registry.connections.len())))
    }

    fn abort(&self, target: &Target) -> BoxFuture<Result<usize, LifetimeError>> {
        let connections = self.read(|registry| {
            let mut connections = Vec::new();
            registry.for_each_target(target, |_, connection| connections.push(connection.clone()));
            connections
        });
        for connection in &connections {
            connection.close(Close::new());
        }
        ready(Ok(connections.len()))
    }

    fn local_connections(&self) -> Vec<ConnectionHandle> {
        self.read(|registry| registry.connections.values().cloned().collect())
    }

    fn local_groups(&self) -> Vec<(String, usize)> {
        self.read(|registry| {
            registry
                .groups
                .iter()
                .map(|(name, members)| (name.to_string(), members.len()))
                .collect()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hub_core::negotiate::TransportType;
    use hub_core::protocol::{HubProtocol, Invocation};

    use super::*;
    use crate::auth::Principal;
    use bytes::Bytes;

    use crate::connection::{Connection, ConnectionParts, Outbox};
    use crate::request::RequestInfo;

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
            identity: crate::auth::Identity::new(Principal::anonymous()),
            request,
            transport: TransportType::WebSockets,
            protocol,
            queue_capacity: 4,
            metrics: crate::observability::HubMetrics::for_tests(),
        });
        (ConnectionHandle { inner }, outbox)
    }

    /// Runs `future` on a current-thread runtime (the local manager's futures are ready at once).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn received(outbox: &mut Outbox) -> Vec<Bytes> {
        std::iter::from_fn(|| outbox.pop()).collect()
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
            block_on(manager.add_connection(handle)).unwrap();
            outboxes.push((protocol, outbox));
        }
        let encodes = AtomicUsize::new(0);
        let invocation = Invocation::new("Receive", (Counted(&encodes),));
        block_on(manager.send(&Target::All, &PreparedMessage::new(&invocation))).unwrap();
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
            block_on(manager.add_connection(handle)).unwrap();
            outboxes.insert(id, outbox);
        }
        for (id, group) in [("a", "g"), ("b", "g"), ("b", "h"), ("nobody", "g")] {
            block_on(manager.add_to_group(id, group)).unwrap();
        }
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
            block_on(manager.send(&target, &PreparedMessage::new(&invocation))).unwrap();
            let mut got: Vec<&str> = outboxes
                .iter_mut()
                .filter_map(|(id, outbox)| (!received(outbox).is_empty()).then_some(*id))
                .collect();
            got.sort();
            assert_eq!(got, expected, "{target:?}");
        }
        assert_eq!(block_on(manager.group_members("g")).unwrap(), ["a", "b"]);
        assert_eq!(block_on(manager.groups_of("b")).unwrap(), ["g", "h"]);
        assert_eq!(
            manager.resolve(&Target::Groups(vec!["g".into(), "h".into()])),
            ["a", "b"]
        );
        block_on(manager.remove_connection("b")).unwrap();
        assert_eq!(block_on(manager.group_members("g")).unwrap(), ["a"]);
        assert!(block_on(manager.group_members("h")).unwrap().is_empty());
        assert_eq!(block_on(manager.user_connections("bob")).unwrap(), ["c"]);
        assert_eq!(block_on(manager.connection_count()).unwrap(), 3);
        assert_eq!(
            block_on(manager.abort(&Target::User("bob".into()))).unwrap(),
            1
        );
    }

    #[test]
    fn a_connection_added_again_under_its_id_takes_over_its_groups() {
        let manager = LocalLifetimeManager::new();
        let (first, mut first_outbox) = connection("a", Protocol::Json, None);
        block_on(manager.add_connection(first)).unwrap();
        block_on(manager.add_to_group("a", "g")).unwrap();
        let (second, mut second_outbox) = connection("a", Protocol::Json, None);
        block_on(manager.add_connection(second)).unwrap();
        let invocation = Invocation::new("M", ());
        block_on(manager.send(
            &Target::Group("g".into()),
            &PreparedMessage::new(&invocation),
        ))
        .unwrap();
        assert!(received(&mut first_outbox).is_empty());
        assert_eq!(received(&mut second_outbox).len(), 1);
    }

    fn send_all(manager: &LocalLifetimeManager, i: i32) {
        let invocation = Invocation::new("M", (i,));
        let sent = manager.send(&Target::All, &PreparedMessage::new(&invocation));
        assert!(
            matches!(futures_util::FutureExt::now_or_never(sent), Some(Ok(()))),
            "a send waited"
        );
    }

    #[tokio::test]
    async fn a_full_queue_never_delays_the_sender_and_closes_only_that_connection() {
        let manager = LocalLifetimeManager::new();
        let (slow, _slow_outbox) = connection("slow", Protocol::Json, None);
        let (fast, mut fast_outbox) = connection("fast", Protocol::Json, None);
        manager.add_connection(slow.clone()).await.unwrap();
        manager.add_connection(fast.clone()).await.unwrap();
        // 4 in the slow client's queue, 4 in its overflow: still open.
        for i in 0..8 {
            send_all(&manager, i);
            assert_eq!(received(&mut fast_outbox).len(), 1);
        }
        assert!(!slow.inner.closing().is_cancelled());
        // One more than queue and overflow hold: closed at once, not after the send timeout.
        send_all(&manager, 8);
        assert_eq!(received(&mut fast_outbox).len(), 1);
        assert!(slow.inner.closing().is_cancelled());
        assert!(!fast.inner.closing().is_cancelled());
        let ending = slow.inner.ending().unwrap();
        assert_eq!(ending.message, Close::with_error());
        assert!(!ending.flush);
    }

    #[tokio::test]
    async fn a_client_that_frees_no_room_for_the_send_timeout_is_closed() {
        let manager = LocalLifetimeManager::new();
        let (stuck, _stuck_outbox) = connection("stuck", Protocol::Json, None);
        let (reading, mut reading_outbox) = connection("reading", Protocol::Json, None);
        manager.add_connection(stuck.clone()).await.unwrap();
        manager.add_connection(reading.clone()).await.unwrap();
        for i in 0..5 {
            send_all(&manager, i);
        }
        assert!(!stuck.inner.closing().is_cancelled());
        // The reading client's queue drains (the drainer moves its fifth frame in as room
        // appears); the stuck one's does not.
        assert_eq!(received(&mut reading_outbox).len(), 4);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(received(&mut reading_outbox).len(), 1);
        assert!(stuck.inner.closing().is_cancelled(), "no room for 50 ms");
        assert!(!reading.inner.closing().is_cancelled());
    }

    #[tokio::test]
    async fn frames_that_waited_in_the_overflow_arrive_in_order_once_the_client_reads() {
        let manager = LocalLifetimeManager::new();
        let (client, outbox) = connection("client", Protocol::Json, None);
        manager.add_connection(client.clone()).await.unwrap();
        for i in 0..8 {
            send_all(&manager, i);
        }
        let mut texts = Vec::new();
        while texts.len() < 8 {
            let frame = tokio::time::timeout(Duration::from_secs(1), outbox.recv())
                .await
                .unwrap()
                .unwrap();
            texts.push(String::from_utf8(frame.to_vec()).unwrap());
        }
        for (i, text) in texts.iter().enumerate() {
            assert!(
                text.contains(&format!("\"arguments\":[{i}]")),
                "{i}: {text}"
            );
        }
        assert!(!client.inner.closing().is_cancelled());
    }
}
