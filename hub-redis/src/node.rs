//! One hub on this node: its local connections, what it is subscribed to, what it waits for
//! from other nodes, and what it does with what they publish.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use hub_server::core::hub::BoxFuture;
use hub_server::protocol::{CompletionOutcome, RawValue};
use hub_server::{
    ClientResultError, Envelope, HubBinding, LifetimeError, LifetimeManager, LocalLifetimeManager,
    PreparedMessage, Target,
};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::backplane::Shared;
use crate::keys::{Channel, Keys};
use crate::scripts::{HEARTBEAT, PUBLISH_TO_OWNERS};
use crate::wire::{Body, Packet, Query, WireOutcome};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The answer a remote client result waits for.
type Answer = Result<RawValue, ClientResultError>;

/// A client result this node asked of a connection on another node.
struct RemoteResult {
    connection: String,
    /// The node that owns the connection, once known.
    owner: Option<String>,
    answer: oneshot::Sender<Answer>,
}

/// A client result another node asked of a connection here.
struct Forwarded {
    connection: String,
    origin: String,
    deadline: Instant,
}

/// A request to other nodes waiting for their answers.
enum Pending {
    /// A group change on the connection's node.
    Ack(oneshot::Sender<()>),
    /// A question to every live node: who has not answered yet, and the answers so far.
    Query {
        expected: HashSet<String>,
        names: BTreeSet<String>,
        done: Option<oneshot::Sender<BTreeSet<String>>>,
    },
}

/// One hub on this node.
pub(crate) struct HubNode {
    shared: Arc<Shared>,
    keys: Keys,
    node_id: String,
    pub(crate) local: LocalLifetimeManager,
    /// True once the node listens on the hub's broadcast channel and its inbox.
    ready: watch::Sender<bool>,
    /// Serialises subscription changes (a SUBSCRIBE and an UNSUBSCRIBE of one channel must not
    /// cross).
    subscription_changes: tokio::sync::Mutex<()>,
    /// The group and user channels this node is subscribed to.
    subscribed: Mutex<HashSet<String>>,
    /// The nodes alive at the last heartbeat (this one included).
    live: RwLock<HashSet<String>>,
    next_request: AtomicU64,
    requests: Mutex<HashMap<u64, Pending>>,
    next_invocation: AtomicU64,
    remote_results: Mutex<HashMap<String, RemoteResult>>,
    forwarded: Mutex<HashMap<String, Forwarded>>,
}

/// Forgets a request when its waiter goes (answered, timed out or dropped).
struct RequestGuard<'a> {
    node: &'a HubNode,
    id: u64,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        lock(&self.node.requests).remove(&self.id);
    }
}

/// Forgets a remote client result when its waiter goes.
struct ResultGuard<'a> {
    node: &'a HubNode,
    id: String,
}

impl Drop for ResultGuard<'_> {
    fn drop(&mut self) {
        lock(&self.node.remote_results).remove(&self.id);
    }
}

impl HubNode {
    /// The hub described by `binding`, on `shared`; starts listening and the heartbeat.
    pub(crate) fn start(shared: Arc<Shared>, binding: &HubBinding) -> Arc<HubNode> {
        let local = LocalLifetimeManager::new();
        local.bind(binding);
        let node = Arc::new(HubNode {
            keys: Keys::new(&shared.config.prefix, &binding.hub),
            node_id: binding.node_id.to_string(),
            local,
            ready: watch::Sender::new(false),
            subscription_changes: tokio::sync::Mutex::new(()),
            subscribed: Mutex::default(),
            live: RwLock::default(),
            next_request: AtomicU64::new(0),
            requests: Mutex::default(),
            next_invocation: AtomicU64::new(0),
            remote_results: Mutex::default(),
            forwarded: Mutex::default(),
            shared,
        });
        node.shared.add_route(&node);
        node.shared.runtime.spawn(run(Arc::downgrade(&node)));
        node
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    fn timeout(&self) -> Duration {
        self.shared.config.request_timeout
    }

    /// Waits until the node listens to the other nodes (bounded by the request timeout).
    pub(crate) async fn ready(&self) -> Result<(), LifetimeError> {
        let mut ready = self.ready.subscribe();
        let listening = tokio::time::timeout(self.timeout(), ready.wait_for(|ready| *ready))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if listening {
            Ok(())
        } else {
            Err(LifetimeError::Unavailable(
                "this server could not subscribe to Redis".to_owned(),
            ))
        }
    }

    fn is_live(&self, node: &str) -> bool {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(node)
    }

    // ----- publishing ------------------------------------------------------------------------

    fn packet(&self, body: Body) -> Result<Vec<u8>, LifetimeError> {
        Packet::new(&self.node_id, body).encode().map_err(|error| {
            LifetimeError::Unavailable(format!("a backplane packet could not be encoded: {error}"))
        })
    }

    /// Publishes `body` on each of `channels` (one round trip).
    pub(crate) async fn publish(
        &self,
        channels: &[Channel<'_>],
        body: Body,
    ) -> Result<(), LifetimeError> {
        let payload = self.packet(body)?;
        self.publish_bytes(
            channels.iter().map(|c| self.keys.channel(c)).collect(),
            payload,
        )
        .await
    }

    async fn publish_bytes(
        &self,
        channels: Vec<String>,
        payload: Vec<u8>,
    ) -> Result<(), LifetimeError> {
        if channels.is_empty() {
            return Ok(());
        }
        self.shared
            .command(|mut connection| async move {
                let mut pipe = redis::pipe();
                for channel in &channels {
                    pipe.cmd("PUBLISH").arg(channel).arg(&payload).ignore();
                }
                pipe.query_async::<()>(&mut connection).await
            })
            .await
    }

    /// Publishes `body` to the inbox of each node owning one of `connections`; returns each
    /// connection's owner (`""`: none).
    pub(crate) async fn publish_to_owners(
        &self,
        connections: &[String],
        body: Body,
    ) -> Result<Vec<String>, LifetimeError> {
        if connections.is_empty() {
            return Ok(Vec::new());
        }
        let payload = self.packet(body)?;
        let hash = self.keys.connections();
        let inboxes = self.keys.node_prefix();
        self.shared
            .command(|mut connection| async move {
                PUBLISH_TO_OWNERS
                    .key(hash)
                    .arg(inboxes)
                    .arg(payload)
                    .arg(connections)
                    .invoke_async::<Vec<String>>(&mut connection)
                    .await
            })
            .await
    }

    /// Publishes a send to the nodes that may have recipients (local ones are served by the
    /// caller). The message is encoded (in both protocols) before this returns.
    pub(crate) fn publish_send(
        self: &Arc<Self>,
        target: &Target,
        message: &PreparedMessage<'_>,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        let directed = match target {
            Target::Connection(id) if self.local.connection(id).is_none() => vec![id.clone()],
            Target::Connections(ids) => ids
                .iter()
                .filter(|id| self.local.connection(id).is_none())
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        let channels: Vec<String> = match target {
            Target::All | Target::AllExcept(_) => vec![self.keys.channel(&Channel::All)],
            Target::Group(group) | Target::GroupExcept(group, _) => {
                vec![self.keys.channel(&Channel::Group(group))]
            }
            Target::Groups(groups) => unique(groups)
                .map(|group| self.keys.channel(&Channel::Group(group)))
                .collect(),
            Target::User(user) => vec![self.keys.channel(&Channel::User(user))],
            Target::Users(users) => unique(users)
                .map(|user| self.keys.channel(&Channel::User(user)))
                .collect(),
            Target::Connection(_) | Target::Connections(_) => Vec::new(),
        };
        if channels.is_empty() && directed.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let envelope = match message.envelope() {
            Ok(envelope) => envelope,
            Err(error) => {
                // The local delivery logs the same failure; nothing can be sent.
                tracing::error!(%error, "a message could not be encoded; it was not sent to other servers");
                return Box::pin(std::future::ready(Ok(())));
            }
        };
        let target = if directed.is_empty() {
            target.clone()
        } else {
            Target::Connections(directed.clone())
        };
        let payload = self.packet(Body::Send {
            target,
            message: envelope,
        });
        let node = self.clone();
        Box::pin(async move {
            let payload = payload?;
            if directed.is_empty() {
                node.publish_bytes(channels, payload).await
            } else {
                let hash = node.keys.connections();
                let inboxes = node.keys.node_prefix();
                node.shared
                    .command(|mut connection| async move {
                        PUBLISH_TO_OWNERS
                            .key(hash)
                            .arg(inboxes)
                            .arg(payload)
                            .arg(directed)
                            .invoke_async::<Vec<String>>(&mut connection)
                            .await
                    })
                    .await
                    .map(drop)
            }
        })
    }

    // ----- subscriptions and the connection table ----------------------------------------

    /// Subscribes to the channel of a group or user while this node has one of its
    /// connections, and unsubscribes when it has none.
    pub(crate) async fn reconcile(&self, channel: Channel<'_>) -> Result<(), LifetimeError> {
        let _serial = self.subscription_changes.lock().await;
        let needed = match channel {
            Channel::Group(group) => !local_names(self.local.group_members(group)).is_empty(),
            Channel::User(user) => !local_names(self.local.user_connections(user)).is_empty(),
            Channel::All | Channel::Node(_) => return Ok(()),
        };
        let name = self.keys.channel(&channel);
        let subscribed = lock(&self.subscribed).contains(&name);
        if needed && !subscribed {
            let channel_name = name.clone();
            self.shared
                .subscriber(
                    |mut connection| async move { connection.subscribe(channel_name).await },
                )
                .await?;
            lock(&self.subscribed).insert(name);
        } else if !needed && subscribed {
            lock(&self.subscribed).remove(&name);
            let channel_name = name.clone();
            self.shared
                .subscriber(
                    |mut connection| async move { connection.unsubscribe(channel_name).await },
                )
                .await?;
        }
        Ok(())
    }

    /// Records in Redis that this node owns `connections`.
    pub(crate) async fn register(&self, connections: Vec<String>) -> Result<(), LifetimeError> {
        if connections.is_empty() {
            return Ok(());
        }
        let hash = self.keys.connections();
        let set = self.keys.node_connections(&self.node_id);
        let node_id = self.node_id.clone();
        self.shared
            .command(|mut connection| async move {
                let mut pipe = redis::pipe();
                for id in &connections {
                    pipe.hset(&hash, id, &node_id).ignore();
                }
                pipe.sadd(&set, &connections).ignore();
                pipe.query_async::<()>(&mut connection).await
            })
            .await
    }

    /// Removes a connection of this node from the table.
    pub(crate) async fn unregister(&self, connection_id: String) -> Result<(), LifetimeError> {
        let hash = self.keys.connections();
        let set = self.keys.node_connections(&self.node_id);
        self.shared
            .command(|mut connection| async move {
                redis::pipe()
                    .hdel(&hash, &connection_id)
                    .ignore()
                    .srem(&set, &connection_id)
                    .ignore()
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await
    }

    /// How many connections the table holds (every live node's; a dead node's leave within
    /// the node timeout).
    pub(crate) async fn connection_count(&self) -> Result<usize, LifetimeError> {
        let hash = self.keys.connections();
        self.shared
            .command(|mut connection| async move {
                redis::cmd("HLEN")
                    .arg(hash)
                    .query_async::<usize>(&mut connection)
                    .await
            })
            .await
    }

    // ----- requests to other nodes -----------------------------------------------------------

    fn new_request(&self, pending: Pending) -> u64 {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        lock(&self.requests).insert(id, pending);
        id
    }

    /// Adds (or removes) a connection of another node to a group, waiting for its owner to
    /// have done it. A connection nobody owns, or whose node is dead, is ignored.
    pub(crate) async fn remote_group_change(
        &self,
        connection: &str,
        group: &str,
        add: bool,
    ) -> Result<(), LifetimeError> {
        let (done, answered) = oneshot::channel();
        let request = self.new_request(Pending::Ack(done));
        let _guard = RequestGuard {
            node: self,
            id: request,
        };
        let owners = self
            .publish_to_owners(
                &[connection.to_owned()],
                Body::GroupChange {
                    request,
                    connection: connection.to_owned(),
                    group: group.to_owned(),
                    add,
                },
            )
            .await?;
        match owners.first().map(String::as_str) {
            None | Some("") => return Ok(()),
            Some(owner) if !self.is_live(owner) => return Ok(()),
            Some(_) => {}
        }
        match tokio::time::timeout(self.timeout(), answered).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(LifetimeError::TimedOut(self.timeout())),
        }
    }

    /// Asks every live node `query` and gathers the answers with this node's own.
    pub(crate) async fn query(&self, query: Query) -> Result<Vec<String>, LifetimeError> {
        let mut names: BTreeSet<String> = self.answer(&query).into_iter().collect();
        let expected: HashSet<String> = self
            .live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|node| **node != self.node_id)
            .cloned()
            .collect();
        if expected.is_empty() {
            return Ok(names.into_iter().collect());
        }
        let (done, answered) = oneshot::channel();
        let request = self.new_request(Pending::Query {
            expected,
            names: BTreeSet::new(),
            done: Some(done),
        });
        let _guard = RequestGuard {
            node: self,
            id: request,
        };
        self.publish(&[Channel::All], Body::Query { request, query })
            .await?;
        match tokio::time::timeout(self.timeout(), answered).await {
            Ok(Ok(more)) => {
                names.extend(more);
                Ok(names.into_iter().collect())
            }
            _ => Err(LifetimeError::TimedOut(self.timeout())),
        }
    }

    /// This node's answer to `query`.
    fn answer(&self, query: &Query) -> Vec<String> {
        local_names(match query {
            Query::GroupMembers(group) => self.local.group_members(group),
            Query::GroupsOf(connection) => self.local.groups_of(connection),
            Query::UserConnections(user) => self.local.user_connections(user),
        })
    }

    // ----- client results across nodes -------------------------------------------------------

    /// Calls a client method of a connection on another node and waits for its answer.
    pub(crate) async fn invoke_remote(
        &self,
        connection: String,
        invocation: String,
        message: Envelope,
        timeout: Duration,
    ) -> Answer {
        let (answer, answered) = oneshot::channel();
        lock(&self.remote_results).insert(
            invocation.clone(),
            RemoteResult {
                connection: connection.clone(),
                owner: None,
                answer,
            },
        );
        let _guard = ResultGuard {
            node: self,
            id: invocation.clone(),
        };
        let unavailable = |reason: String| ClientResultError::ServerUnavailable {
            connection_id: connection.clone(),
            reason,
        };
        let owners = self
            .publish_to_owners(
                std::slice::from_ref(&connection),
                Body::InvokeClient {
                    connection: connection.clone(),
                    invocation: invocation.clone(),
                    message,
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                },
            )
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        let owner = owners.into_iter().next().unwrap_or_default();
        if owner.is_empty() {
            return Err(ClientResultError::NoSuchConnection(connection));
        }
        if !self.is_live(&owner) {
            return Err(unavailable(format!("server '{owner}' stopped answering")));
        }
        if let Some(waiting) = lock(&self.remote_results).get_mut(&invocation) {
            waiting.owner = Some(owner);
        }
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ClientResultError::ConnectionClosed),
            Err(_) => Err(ClientResultError::TimedOut(timeout)),
        }
    }

    /// A client answered an invocation another node asked for: sends the answer there.
    /// Returns false when no other node asked this connection for it.
    pub(crate) fn forward_completion(
        self: &Arc<Self>,
        connection: &str,
        invocation: &str,
        outcome: &CompletionOutcome,
    ) -> bool {
        let origin = {
            let mut forwarded = lock(&self.forwarded);
            match forwarded.get(invocation) {
                Some(waiting) if waiting.connection == connection => {
                    forwarded.remove(invocation).map(|waiting| waiting.origin)
                }
                _ => None,
            }
        };
        let Some(origin) = origin else {
            return false;
        };
        self.answer_invocation(
            origin,
            invocation.to_owned(),
            WireOutcome::from_completion(outcome.clone()),
        );
        true
    }

    fn answer_invocation(
        self: &Arc<Self>,
        origin: String,
        invocation: String,
        outcome: WireOutcome,
    ) {
        let node = self.clone();
        self.shared.runtime.spawn(async move {
            let sent = node
                .publish(
                    &[Channel::Node(&origin)],
                    Body::ClientResult {
                        invocation,
                        outcome,
                    },
                )
                .await;
            if let Err(error) = sent {
                tracing::debug!(%error, "a client result could not be sent back");
            }
        });
    }

    /// A connection of this node ended: the nodes waiting for its answers are told.
    pub(crate) fn connection_ended(self: &Arc<Self>, connection: &str) {
        let ended: Vec<(String, String)> = {
            let mut forwarded = lock(&self.forwarded);
            let ids: Vec<String> = forwarded
                .iter()
                .filter(|(_, waiting)| waiting.connection == connection)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| forwarded.remove(&id).map(|waiting| (id, waiting.origin)))
                .collect()
        };
        for (invocation, origin) in ended {
            self.answer_invocation(origin, invocation, WireOutcome::ConnectionClosed);
        }
    }

    /// A fresh invocation id: `<node>.r<n>`, unique across nodes and apart from the local
    /// manager's `<node>.<n>`.
    pub(crate) fn invocation_id(&self) -> String {
        format!(
            "{}.r{}",
            self.node_id,
            self.next_invocation.fetch_add(1, Ordering::Relaxed)
        )
    }

    // ----- receiving -------------------------------------------------------------------------

    /// Handles a packet that arrived on `channel`. Never waits: what would is spawned.
    pub(crate) fn receive(self: &Arc<Self>, channel: &Channel<'_>, payload: &[u8]) {
        let packet = match Packet::decode(payload) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::warn!(%error, "a backplane packet was dropped");
                return;
            }
        };
        if packet.origin == self.node_id {
            return;
        }
        let origin = packet.origin;
        match packet.body {
            Body::Send { target, message } => {
                if self.is_duplicate(channel, &target) {
                    return;
                }
                let prepared = PreparedMessage::from_envelope(&message);
                self.spawn_unless_ready(self.local.send(&target, &prepared));
            }
            Body::Abort { target } => {
                self.spawn_unless_ready(self.local.abort(&target));
            }
            Body::GroupChange {
                request,
                connection,
                group,
                add,
            } => {
                let node = self.clone();
                self.shared.runtime.spawn(async move {
                    if let Err(error) = node.local_group_change(&connection, &group, add).await {
                        tracing::warn!(%error, %group, "a group change from another server failed");
                    }
                    if let Err(error) = node
                        .publish(&[Channel::Node(&origin)], Body::Ack { request })
                        .await
                    {
                        tracing::debug!(%error, "a group change could not be acknowledged");
                    }
                });
            }
            Body::Ack { request } => {
                if let Some(Pending::Ack(done)) = lock(&self.requests).remove(&request) {
                    let _ = done.send(());
                }
            }
            Body::Query { request, query } => {
                let names = self.answer(&query);
                let node = self.clone();
                self.shared.runtime.spawn(async move {
                    let answered = node
                        .publish(&[Channel::Node(&origin)], Body::Answer { request, names })
                        .await;
                    if let Err(error) = answered {
                        tracing::debug!(%error, "a question from another server was not answered");
                    }
                });
            }
            Body::Answer { request, names } => {
                let mut requests = lock(&self.requests);
                if let Some(Pending::Query {
                    expected,
                    names: all,
                    done,
                }) = requests.get_mut(&request)
                {
                    expected.remove(&origin);
                    all.extend(names);
                    if expected.is_empty() {
                        if let Some(done) = done.take() {
                            let _ = done.send(std::mem::take(all));
                        }
                    }
                }
            }
            Body::InvokeClient {
                connection,
                invocation,
                message,
                timeout_ms,
            } => self.invoke_here(origin, connection, invocation, message, timeout_ms),
            Body::ClientResult {
                invocation,
                outcome,
            } => {
                if let Some(waiting) = lock(&self.remote_results).remove(&invocation) {
                    let _ = waiting
                        .answer
                        .send(outcome.into_answer(&waiting.connection));
                }
            }
        }
    }

    /// A send to several groups (or users) is published on each one's channel; a node
    /// subscribed to several of them delivers only the copy from the first it is subscribed
    /// to, in the target's order, so each connection gets it once.
    fn is_duplicate(&self, channel: &Channel<'_>, target: &Target) -> bool {
        let subscribed = lock(&self.subscribed);
        let first = |names: &[String], groups: bool| {
            names
                .iter()
                .map(|name| {
                    self.keys.channel(&if groups {
                        Channel::Group(name)
                    } else {
                        Channel::User(name)
                    })
                })
                .find(|name| subscribed.contains(name))
        };
        match (channel, target) {
            (Channel::Group(_), Target::Groups(groups)) => {
                first(groups, true) != Some(self.keys.channel(channel))
            }
            (Channel::User(_), Target::Users(users)) => {
                first(users, false) != Some(self.keys.channel(channel))
            }
            _ => false,
        }
    }

    fn spawn_unless_ready<T: Send + 'static>(&self, mut work: BoxFuture<T>) {
        if (&mut work).now_or_never().is_none() {
            self.shared.runtime.spawn(work);
        }
    }

    /// Adds or removes a connection of this node to or from a group, and follows the group's
    /// channel.
    pub(crate) async fn local_group_change(
        &self,
        connection: &str,
        group: &str,
        add: bool,
    ) -> Result<(), LifetimeError> {
        if add {
            self.local.add_to_group(connection, group).await?;
        } else {
            self.local.remove_from_group(connection, group).await?;
        }
        self.reconcile(Channel::Group(group)).await
    }

    fn invoke_here(
        self: &Arc<Self>,
        origin: String,
        connection: String,
        invocation: String,
        message: Envelope,
        timeout_ms: u64,
    ) {
        let Some(handle) = self.local.connection(&connection) else {
            self.answer_invocation(origin, invocation, WireOutcome::NoSuchConnection);
            return;
        };
        lock(&self.forwarded).insert(
            invocation.clone(),
            Forwarded {
                connection,
                origin: origin.clone(),
                deadline: Instant::now() + Duration::from_millis(timeout_ms),
            },
        );
        let node = self.clone();
        self.shared.runtime.spawn(async move {
            let bytes = message.encoded(handle.protocol()).clone();
            let sent = !handle.is_closed() && handle.send_encoded(bytes).await.is_ok();
            if !sent && lock(&node.forwarded).remove(&invocation).is_some() {
                node.answer_invocation(origin, invocation, WireOutcome::ConnectionClosed);
            }
        });
    }

    // ----- liveness --------------------------------------------------------------------------

    /// Subscribes to the hub's broadcast channel and this node's inbox.
    async fn listen(&self) -> Result<(), LifetimeError> {
        let channels = vec![
            self.keys.channel(&Channel::All),
            self.keys.channel(&Channel::Node(&self.node_id)),
        ];
        self.shared
            .subscriber(|mut connection| async move { connection.subscribe(channels).await })
            .await
    }

    /// Tells Redis this node is alive, learns which nodes are, and acts on those that died.
    ///
    /// `first`: this process's first successful heartbeat for the hub; what an earlier process
    /// with the same node id registered is removed, and this one's connections registered.
    async fn heartbeat(&self, first: bool) -> Result<(), LifetimeError> {
        let nodes = self.keys.nodes();
        let hash = self.keys.connections();
        let sets = self.keys.node_connections_prefix();
        let node_id = self.node_id.clone();
        let timeout_ms =
            u64::try_from(self.shared.config.node_timeout.as_millis()).unwrap_or(u64::MAX);
        let (added, live): (i64, Vec<String>) = self
            .shared
            .command(|mut connection| async move {
                HEARTBEAT
                    .key(nodes)
                    .key(hash)
                    .arg(node_id)
                    .arg(timeout_ms)
                    .arg(sets)
                    .arg(if first { "1" } else { "0" })
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        // The subscriber connection reconnects (and resubscribes) when it is used.
        self.shared
            .subscriber(|mut connection| async move {
                redis::cmd("PING").query_async::<()>(&mut connection).await
            })
            .await?;
        let live: HashSet<String> = live.into_iter().collect();
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = live.clone();
        if added == 1 || first {
            // New, restarted, or declared dead during an outage and its entries reaped.
            let ids = self
                .local
                .local_connections()
                .iter()
                .map(|connection| connection.id().to_owned())
                .collect();
            self.register(ids).await?;
        }
        self.forget_dead(&live);
        Ok(())
    }

    /// Fails what waits on nodes that are no longer live, and forgets forwarded invocations
    /// whose askers stopped waiting.
    fn forget_dead(&self, live: &HashSet<String>) {
        let failed: Vec<RemoteResult> = {
            let mut results = lock(&self.remote_results);
            let dead: Vec<String> = results
                .iter()
                .filter(|(_, waiting)| {
                    waiting
                        .owner
                        .as_ref()
                        .is_some_and(|owner| !live.contains(owner))
                })
                .map(|(id, _)| id.clone())
                .collect();
            dead.iter().filter_map(|id| results.remove(id)).collect()
        };
        for waiting in failed {
            let owner = waiting.owner.unwrap_or_default();
            let _ = waiting
                .answer
                .send(Err(ClientResultError::ServerUnavailable {
                    connection_id: waiting.connection,
                    reason: format!("server '{owner}' stopped answering"),
                }));
        }
        for pending in lock(&self.requests).values_mut() {
            if let Pending::Query {
                expected,
                names,
                done,
            } = pending
            {
                expected.retain(|node| live.contains(node));
                if expected.is_empty() {
                    if let Some(done) = done.take() {
                        let _ = done.send(std::mem::take(names));
                    }
                }
            }
        }
        let now = Instant::now();
        lock(&self.forwarded).retain(|_, waiting| waiting.deadline > now);
    }
}

/// Listens, then beats until the hub is gone.
async fn run(node: Weak<HubNode>) {
    let mut logged = false;
    loop {
        let Some(hub) = node.upgrade() else {
            return;
        };
        let interval = hub.shared.config.heartbeat;
        match hub.listen().await {
            Ok(()) => break,
            Err(error) if !logged => {
                logged = true;
                tracing::warn!(%error, "could not subscribe to Redis; retrying");
            }
            Err(_) => {}
        }
        drop(hub);
        tokio::time::sleep(interval).await;
    }
    let mut first = true;
    loop {
        let Some(hub) = node.upgrade() else {
            return;
        };
        let interval = hub.shared.config.heartbeat;
        // Failures are logged once per outage by the backplane's health.
        if hub.heartbeat(first).await.is_ok() {
            first = false;
        }
        // Connections are taken once the node listens and has had its first heartbeat (or
        // tried to): that heartbeat clears what an earlier process of the same id left.
        hub.ready.send_replace(true);
        drop(hub);
        tokio::time::sleep(interval).await;
    }
}

/// The names a local (always ready) introspection future gives.
fn local_names(names: BoxFuture<Result<Vec<String>, LifetimeError>>) -> Vec<String> {
    names
        .now_or_never()
        .and_then(Result::ok)
        .unwrap_or_default()
}

fn unique(names: &[String]) -> impl Iterator<Item = &str> {
    let mut seen = HashSet::new();
    names
        .iter()
        .map(String::as_str)
        .filter(move |name| seen.insert(*name))
}
