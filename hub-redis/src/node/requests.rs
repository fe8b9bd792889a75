//! Requests to other nodes: group changes, cluster-wide questions, client results.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hub_server::protocol::CompletionOutcome;
use hub_server::{ClientResultError, Envelope, LifetimeError, LifetimeManager};
use tokio::sync::oneshot;

use super::{local_names, lock, Answer, HubNode, Pending, RemoteResult, RequestGuard, ResultGuard};
use crate::keys::Channel;
use crate::scripts::LIVE_NODES;
use crate::wire::{Body, Query, WireOutcome};

impl HubNode {
    // ----- requests to other nodes -----------------------------------------------------------

    pub(super) fn new_request(&self, pending: Pending) -> u64 {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        lock(&self.requests).insert(id, pending);
        id
    }

    /// Adds (or removes) a connection of another node to a group, waiting for its owner to
    /// have done it. A connection nobody owns, or whose node dies meanwhile, is ignored.
    pub(crate) async fn remote_group_change(
        &self,
        connection: &str,
        group: &str,
        add: bool,
    ) -> Result<(), LifetimeError> {
        let (done, answered) = oneshot::channel();
        let request = self.new_request(Pending::Ack { owner: None, done });
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
        match owners.into_iter().next() {
            Some(owner) if !owner.is_empty() => {
                // A heartbeat that finds the owner dead completes the request (see
                // `forget_dead`).
                if let Some(Pending::Ack { owner: known, .. }) =
                    lock(&self.requests).get_mut(&request)
                {
                    *known = Some(owner);
                }
            }
            _ => return Ok(()),
        }
        match tokio::time::timeout(self.timeout(), answered).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(LifetimeError::TimedOut(self.timeout())),
        }
    }

    /// Asks every live node `query` and gathers the answers with this node's own.
    pub(crate) async fn query(&self, query: Query) -> Result<Vec<String>, LifetimeError> {
        let mut names: BTreeSet<String> = self.answer(&query).into_iter().collect();
        // Asked of Redis, not the last heartbeat's list: a node that started since then has
        // connections too.
        let nodes = self.keys.nodes();
        let live: Vec<String> = self
            .shared
            .command(|mut connection| async move {
                LIVE_NODES.key(nodes).invoke_async(&mut connection).await
            })
            .await?;
        let expected: HashSet<String> = live
            .into_iter()
            .filter(|node| *node != self.node_id)
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
    pub(super) fn answer(&self, query: &Query) -> Vec<String> {
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
        // A heartbeat that finds the owner dead fails the call (see `forget_dead`): within a
        // heartbeat interval when it is already gone, within the node timeout when it dies
        // later.
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

    pub(super) fn answer_invocation(
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
}
