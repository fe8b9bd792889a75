//! Heartbeats: which nodes are alive, and what is failed or forgotten when one dies.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{PoisonError, Weak};

use hub_server::{ClientResultError, LifetimeError, LifetimeManager};
use tokio::time::Instant;

use super::{lock, HubNode, Pending, RemoteResult};
use crate::keys::Channel;
use crate::scripts::HEARTBEAT;

impl HubNode {
    // ----- liveness --------------------------------------------------------------------------

    /// Subscribes to the hub's broadcast channel and this node's inbox.
    pub(super) async fn listen(&self) -> Result<(), LifetimeError> {
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
    /// The first heartbeat of this process for the hub removes what an earlier process with
    /// the same node id registered; whenever the node was not live before (new, or declared
    /// dead during an outage, or Redis restarted empty) its connections are registered again,
    /// retried at each heartbeat until that succeeds.
    pub(super) async fn heartbeat(&self) -> Result<(), LifetimeError> {
        let nodes = self.keys.nodes();
        let hash = self.keys.connections();
        let claims = self.keys.claims();
        let sets = self.keys.node_connections_prefix();
        let claim_sets = self.keys.node_claims_prefix();
        let node_id = self.node_id.clone();
        let fresh = self.fresh.load(Ordering::Relaxed);
        let timeout_ms =
            u64::try_from(self.shared.config.node_timeout.as_millis()).unwrap_or(u64::MAX);
        let (added, live): (i64, Vec<String>) = self
            .shared
            .command(|mut connection| async move {
                HEARTBEAT
                    .key(nodes)
                    .key(hash)
                    .key(claims)
                    .arg(node_id)
                    .arg(timeout_ms)
                    .arg(sets)
                    .arg(if fresh { "1" } else { "0" })
                    .arg(claim_sets)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        self.fresh.store(false, Ordering::Relaxed);
        if added == 1 || fresh {
            self.unregistered.store(true, Ordering::Relaxed);
        }
        let live: HashSet<String> = live.into_iter().collect();
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = live.clone();
        self.forget_dead(&live);
        if self.unregistered.load(Ordering::Relaxed) {
            let ids = self
                .local
                .local_connections()
                .iter()
                .map(|connection| connection.id().to_owned())
                .collect();
            self.register(ids).await?;
            self.unregistered.store(false, Ordering::Relaxed);
        }
        // The subscriber connection reconnects (and resubscribes) when it is used.
        self.shared
            .subscriber(|mut connection| async move {
                redis::cmd("PING").query_async::<()>(&mut connection).await
            })
            .await?;
        self.shared.health.succeeded();
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
        let mut requests = lock(&self.requests);
        // Group changes on a dead node are moot: its connections are gone.
        let moot: Vec<u64> = requests
            .iter()
            .filter(|(_, pending)| {
                matches!(pending, Pending::Ack { owner: Some(owner), .. } if !live.contains(owner))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in moot {
            if let Some(Pending::Ack { done, .. }) = requests.remove(&id) {
                let _ = done.send(());
            }
        }
        // Requests forwarded to a dead node: their connections died with it.
        let orphaned: Vec<u64> = requests
            .iter()
            .filter(|(_, pending)| {
                matches!(pending, Pending::Http { owner, .. } if !live.contains(owner))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in orphaned {
            if let Some(Pending::Http {
                connection, done, ..
            }) = requests.remove(&id)
            {
                let _ = done.send(Err(LifetimeError::OwnerGone(connection)));
            }
        }
        // Questions are answered without the dead.
        for pending in requests.values_mut() {
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
        drop(requests);
        let now = Instant::now();
        lock(&self.forwarded).retain(|_, waiting| waiting.deadline > now);
    }
}

/// Listens, then beats until the hub is gone.
pub(super) async fn run(node: Weak<HubNode>) {
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
    loop {
        let Some(hub) = node.upgrade() else {
            return;
        };
        let interval = hub.shared.config.heartbeat;
        // Failures are logged once per outage by the backplane's health.
        let _ = hub.heartbeat().await;
        // Connections are taken once the node listens and has had its first heartbeat (or
        // tried to): that heartbeat clears what an earlier process of the same id left.
        hub.ready.send_replace(true);
        drop(hub);
        tokio::time::sleep(interval).await;
    }
}
