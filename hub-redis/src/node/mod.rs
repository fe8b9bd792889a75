//! One hub on this node: its local connections, what it is subscribed to, what it waits for
//! from other nodes, and what it does with what they publish.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use futures_util::FutureExt;
use hub_server::core::hub::BoxFuture;
use hub_server::observability::names;
use hub_server::protocol::RawValue;
use hub_server::{
    ClientResultError, ForwardedRequests, ForwardedResponse, HubBinding, LifetimeError,
    LifetimeManager, LocalLifetimeManager, PreparedMessage, Target,
};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::backplane::Shared;
use crate::keys::{Channel, Keys};
use crate::scripts::{PUBLISH_TO_OWNERS, PUBLISH_TO_OWNERS_LUA};
use crate::wire::{Body, Packet};

mod forwarding;
mod liveness;
mod receive;
mod requests;

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
    Ack {
        /// The node that owns the connection, once known: if it dies, the change is moot.
        owner: Option<String>,
        done: oneshot::Sender<()>,
    },
    /// An HTTP request of a connection, forwarded to the node that owns it.
    Http {
        /// That node: if it dies, the connection is gone.
        owner: String,
        /// The connection.
        connection: String,
        done: oneshot::Sender<Result<ForwardedResponse, LifetimeError>>,
    },
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
    /// No heartbeat has succeeded yet: the next clears what an earlier process of this node
    /// id left in Redis.
    fresh: AtomicBool,
    /// The connection table may lack this node's connections (they are registered again at
    /// the next heartbeat).
    unregistered: AtomicBool,
    /// The nodes alive at the last heartbeat (this one included).
    live: RwLock<HashSet<String>>,
    next_request: AtomicU64,
    requests: Mutex<HashMap<u64, Pending>>,
    next_invocation: AtomicU64,
    remote_results: Mutex<HashMap<String, RemoteResult>>,
    forwarded: Mutex<HashMap<String, Forwarded>>,
    /// What answers the HTTP requests other nodes forward here, once the hub is built.
    pub(crate) forwarded_requests: OnceLock<ForwardedRequests>,
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
            fresh: AtomicBool::new(true),
            unregistered: AtomicBool::new(false),
            live: RwLock::default(),
            next_request: AtomicU64::new(0),
            requests: Mutex::default(),
            next_invocation: AtomicU64::new(0),
            remote_results: Mutex::default(),
            forwarded: Mutex::default(),
            forwarded_requests: OnceLock::new(),
            shared,
        });
        node.shared.add_route(&node);
        node.shared
            .runtime
            .spawn(liveness::run(Arc::downgrade(&node)));
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

    // ----- publishing ------------------------------------------------------------------------

    /// A packet from this node: the current trace context and the time ride along.
    fn packet(&self, body: Body) -> Result<Vec<u8>, LifetimeError> {
        metrics::counter!(names::BACKPLANE_PUBLISHED, "kind" => body.kind()).increment(1);
        let mut packet = Packet::new(&self.node_id, body);
        packet.trace = hub_server::observability::current_traceparent();
        packet.at = Some(unix_ms());
        packet.encode().map_err(|error| {
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
        let payload = match payload {
            Ok(payload) => payload,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        // Sent without waiting for Redis's answer (a round trip per send would bound a
        // connection's sends by Redis's latency), in the order of the calls.
        let sent = if directed.is_empty() {
            self.shared.send_in_order(|mut connection| async move {
                let mut pipe = redis::pipe();
                for channel in &channels {
                    pipe.cmd("PUBLISH").arg(channel).arg(&payload).ignore();
                }
                pipe.query_async::<()>(&mut connection).await
            })
        } else {
            let hash = self.keys.connections();
            let inboxes = self.keys.node_prefix();
            self.shared.send_in_order(|mut connection| async move {
                redis::cmd("EVAL")
                    .arg(PUBLISH_TO_OWNERS_LUA)
                    .arg(1)
                    .arg(hash)
                    .arg(inboxes)
                    .arg(payload)
                    .arg(directed)
                    .query_async::<redis::Value>(&mut connection)
                    .await
                    .map(drop)
            })
        };
        Box::pin(std::future::ready(sent))
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

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
