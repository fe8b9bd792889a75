//! [`RedisLifetimeManager`]: the [`LifetimeManager`] of one hub on the Redis backplane.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hub_server::core::hub::BoxFuture;
use hub_server::protocol::{CompletionOutcome, EncodeArguments, Invocation, RawValue};
use hub_server::{
    ClientResultError, ConnectionHandle, ForwardedRequest, ForwardedRequests, ForwardedResponse,
    HubBinding, LifetimeError, LifetimeManager, Ownership, PreparedMessage, Target,
};

use crate::backplane::Shared;
use crate::keys::Channel;
use crate::node::HubNode;
use crate::wire::{Body, Query};

/// The lifetime manager of one hub on a [`RedisBackplane`](crate::RedisBackplane): the hub's
/// connections on every server behave as one registry.
///
/// - Sends reach their recipients on every server exactly once: local recipients directly,
///   others through Redis pub/sub — broadcasts on the hub's channel, groups and users on their
///   own channels (a server subscribes only while it has a member), connections through the
///   inbox of the server that owns them (one message per server, however many of its
///   connections are addressed). Receivers write the bytes the sender encoded.
/// - Group changes, client results and aborts for another server's connection go to that
///   server and complete when it has acted.
/// - Introspection is cluster-wide. Servers heartbeat into Redis; one that stops is dead after
///   the node timeout: its connections leave the counts and client results to them fail.
/// - While Redis is down, local deliveries go on and what needs other servers fails with
///   [`LifetimeError::Unavailable`] (logged once per outage); the connections to Redis
///   reconnect and resubscribe by themselves.
pub struct RedisLifetimeManager {
    shared: Arc<Shared>,
    node: OnceLock<Arc<HubNode>>,
}

impl std::fmt::Debug for RedisLifetimeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLifetimeManager")
            .field("bound", &self.node.get().is_some())
            .finish_non_exhaustive()
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<T> {
    Box::pin(std::future::ready(value))
}

fn unbound() -> LifetimeError {
    LifetimeError::Unavailable("the Redis lifetime manager is not bound to a hub".to_owned())
}

impl RedisLifetimeManager {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        RedisLifetimeManager {
            shared,
            node: OnceLock::new(),
        }
    }

    fn node(&self) -> Result<Arc<HubNode>, LifetimeError> {
        self.node.get().cloned().ok_or_else(unbound)
    }

    /// Runs `f` with the node, or fails at once when the manager is not bound.
    fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<HubNode>) -> BoxFuture<Result<T, LifetimeError>>,
    ) -> BoxFuture<Result<T, LifetimeError>> {
        match self.node() {
            Ok(node) => f(node),
            Err(error) => ready(Err(error)),
        }
    }

    fn query(&self, query: Query) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.with_node(|node| Box::pin(async move { node.query(query).await }))
    }
}

impl LifetimeManager for RedisLifetimeManager {
    fn bind(&self, binding: &HubBinding) {
        if self.node.get().is_none() {
            let _ = self.node.set(HubNode::start(self.shared.clone(), binding));
        }
    }

    fn add_connection(&self, connection: ConnectionHandle) -> BoxFuture<Result<(), LifetimeError>> {
        self.with_node(|node| {
            Box::pin(async move {
                node.ready().await?;
                let id = connection.id().to_owned();
                let user = connection.user_id().map(str::to_owned);
                node.local.add_connection(connection).await?;
                node.register(vec![id]).await?;
                if let Some(user) = user {
                    node.reconcile(Channel::User(&user)).await?;
                }
                Ok(())
            })
        })
    }

    fn remove_connection(&self, connection_id: &str) -> BoxFuture<Result<(), LifetimeError>> {
        let id = connection_id.to_owned();
        self.with_node(|node| {
            Box::pin(async move {
                let user = node
                    .local
                    .connection(&id)
                    .and_then(|connection| connection.user_id().map(str::to_owned));
                let groups = node.local.groups_of(&id).await?;
                node.local.remove_connection(&id).await?;
                node.connection_ended(&id);
                let mut result = node.unregister(id).await;
                for group in &groups {
                    result = result.and(node.reconcile(Channel::Group(group)).await);
                }
                if let Some(user) = user {
                    result = result.and(node.reconcile(Channel::User(&user)).await);
                }
                result
            })
        })
    }

    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle> {
        self.node.get()?.local.connection(connection_id)
    }

    fn send(
        &self,
        target: &Target,
        message: &PreparedMessage<'_>,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.with_node(|node| {
            let local = node.local.send(target, message);
            let remote = node.publish_send(target, message);
            Box::pin(async move {
                let (_, published) = futures_util::future::join(local, remote).await;
                published
            })
        })
    }

    fn invoke_client(
        &self,
        connection_id: &str,
        method: &str,
        arguments: &dyn EncodeArguments,
        timeout: Duration,
    ) -> BoxFuture<Result<RawValue, ClientResultError>> {
        let node = match self.node() {
            Ok(node) => node,
            Err(error) => {
                return ready(Err(ClientResultError::ServerUnavailable {
                    connection_id: connection_id.to_owned(),
                    reason: error.to_string(),
                }))
            }
        };
        if node.local.connection(connection_id).is_some() {
            return node
                .local
                .invoke_client(connection_id, method, arguments, timeout);
        }
        let invocation = node.invocation_id();
        let message = Invocation::new(method, arguments).with_id(invocation.as_str());
        let Ok(envelope) = PreparedMessage::new(&message).envelope() else {
            return ready(Err(ClientResultError::Encode));
        };
        let connection = connection_id.to_owned();
        Box::pin(async move {
            node.invoke_remote(connection, invocation, envelope, timeout)
                .await
        })
    }

    fn complete_client_result(
        &self,
        connection_id: &str,
        invocation_id: &str,
        outcome: CompletionOutcome,
    ) -> bool {
        let Some(node) = self.node.get() else {
            return false;
        };
        node.forward_completion(connection_id, invocation_id, &outcome)
            || node
                .local
                .complete_client_result(connection_id, invocation_id, outcome)
    }

    fn add_to_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        group_change(self, connection_id, group, true)
    }

    fn remove_from_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        group_change(self, connection_id, group, false)
    }

    fn group_members(&self, group: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.query(Query::GroupMembers(group.to_owned()))
    }

    fn groups_of(&self, connection_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        match self.node.get() {
            // A connection of this server: no need to ask the others.
            Some(node) if node.local.connection(connection_id).is_some() => {
                node.local.groups_of(connection_id)
            }
            _ => self.query(Query::GroupsOf(connection_id.to_owned())),
        }
    }

    fn user_connections(&self, user_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.query(Query::UserConnections(user_id.to_owned()))
    }

    fn connection_count(&self) -> BoxFuture<Result<usize, LifetimeError>> {
        self.with_node(|node| Box::pin(async move { node.connection_count().await }))
    }

    fn abort(&self, target: &Target) -> BoxFuture<Result<usize, LifetimeError>> {
        let target = target.clone();
        self.with_node(|node| {
            let local = node.local.abort(&target);
            Box::pin(async move {
                let ended = local.await?;
                node.publish(&[Channel::All], Body::Abort { target })
                    .await?;
                Ok(ended)
            })
        })
    }

    fn local_connections(&self) -> Vec<ConnectionHandle> {
        self.node
            .get()
            .map(|node| node.local.local_connections())
            .unwrap_or_default()
    }

    fn local_groups(&self) -> Vec<(String, usize)> {
        self.node
            .get()
            .map(|node| node.local.local_groups())
            .unwrap_or_default()
    }

    fn claim_connection(
        &self,
        connection_id: &str,
        claimable: bool,
    ) -> BoxFuture<Result<Ownership, LifetimeError>> {
        let connection_id = connection_id.to_owned();
        self.with_node(|node| Box::pin(async move { node.claim(&connection_id, claimable).await }))
    }

    fn release_connection(
        &self,
        connection_id: &str,
        tombstone: Duration,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        let connection_id = connection_id.to_owned();
        self.with_node(|node| {
            Box::pin(async move { node.release(&connection_id, tombstone).await })
        })
    }

    fn forward(
        &self,
        owner: &str,
        connection_id: &str,
        request: ForwardedRequest,
        timeout: Duration,
    ) -> BoxFuture<Result<ForwardedResponse, LifetimeError>> {
        let (owner, connection_id) = (owner.to_owned(), connection_id.to_owned());
        self.with_node(|node| {
            Box::pin(async move { node.forward(&owner, &connection_id, request, timeout).await })
        })
    }

    fn serve_forwarded(&self, requests: ForwardedRequests) {
        match self.node.get() {
            Some(node) => {
                let _ = node.forwarded_requests.set(requests);
            }
            None => {
                tracing::warn!("serve_forwarded before bind: forwarded requests will be dropped")
            }
        }
    }
}

fn group_change(
    manager: &RedisLifetimeManager,
    connection_id: &str,
    group: &str,
    add: bool,
) -> BoxFuture<Result<(), LifetimeError>> {
    let connection = connection_id.to_owned();
    let group = group.to_owned();
    manager.with_node(|node| {
        Box::pin(async move {
            if node.local.connection(&connection).is_some() {
                node.local_group_change(&connection, &group, add).await
            } else {
                node.remote_group_change(&connection, &group, add).await
            }
        })
    })
}
