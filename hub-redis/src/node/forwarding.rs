//! No sticky sessions: which node owns a connection (claimed in the claim table when a request
//! of it first arrives somewhere — apart from the connection table, which holds connections
//! past their handshake: a long-polling connection that ended keeps its claim until its last
//! poll or DELETE), and the HTTP requests carried to the owner and answered back.

use std::sync::Arc;
use std::time::Duration;

use hub_server::{ForwardedRequest, ForwardedResponse, LifetimeError, Ownership};
use tokio::sync::oneshot;

use super::{lock, HubNode, Pending, RequestGuard};
use crate::keys::Channel;
use crate::scripts::{CLAIM, RELEASE};
use crate::wire::Body;

impl HubNode {
    /// Claims `connection` for this node (when `claimable` and nobody owns it) or says who
    /// owns it.
    pub(crate) async fn claim(
        &self,
        connection: &str,
        claimable: bool,
    ) -> Result<Ownership, LifetimeError> {
        let hash = self.keys.claims();
        let nodes = self.keys.nodes();
        let ended = self.keys.ended(connection);
        let set = self.keys.node_claims(&self.node_id);
        let id = connection.to_owned();
        let node_id = self.node_id.clone();
        let answer: Vec<String> = self
            .shared
            .command(|mut redis| async move {
                CLAIM
                    .key(hash)
                    .key(nodes)
                    .key(ended)
                    .key(set)
                    .arg(id)
                    .arg(node_id)
                    .arg(if claimable { "1" } else { "0" })
                    .invoke_async(&mut redis)
                    .await
            })
            .await?;
        Ok(match answer.as_slice() {
            [here] if here == "here" => Ownership::Here,
            [elsewhere, owner] if elsewhere == "elsewhere" => Ownership::Elsewhere(owner.clone()),
            _ => Ownership::Gone,
        })
    }

    /// Gives up this node's claim on `connection` and marks it ended for `tombstone`.
    pub(crate) async fn release(
        &self,
        connection: &str,
        tombstone: Duration,
    ) -> Result<(), LifetimeError> {
        let hash = self.keys.claims();
        let ended = self.keys.ended(connection);
        let set = self.keys.node_claims(&self.node_id);
        let id = connection.to_owned();
        let node_id = self.node_id.clone();
        let tombstone_ms = u64::try_from(tombstone.as_millis()).unwrap_or(u64::MAX);
        self.shared
            .command(|mut redis| async move {
                RELEASE
                    .key(hash)
                    .key(ended)
                    .key(set)
                    .arg(id)
                    .arg(node_id)
                    .arg(tombstone_ms)
                    .invoke_async::<i64>(&mut redis)
                    .await
            })
            .await
            .map(drop)
    }

    /// Carries an HTTP request to `owner` and waits up to `timeout` for its answer; fails with
    /// [`LifetimeError::OwnerGone`] when the owner dies meanwhile (seen at a heartbeat).
    pub(crate) async fn forward(
        &self,
        owner: &str,
        connection: &str,
        http: ForwardedRequest,
        timeout: Duration,
    ) -> Result<ForwardedResponse, LifetimeError> {
        let (done, answered) = oneshot::channel();
        let request = self.new_request(Pending::Http {
            owner: owner.to_owned(),
            connection: connection.to_owned(),
            done,
        });
        let _guard = RequestGuard {
            node: self,
            id: request,
        };
        self.publish(&[Channel::Node(owner)], Body::HttpRequest { request, http })
            .await?;
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(LifetimeError::OwnerGone(connection.to_owned())),
            Err(_) => Err(LifetimeError::TimedOut(timeout)),
        }
    }

    /// Serves an HTTP request another node forwarded here and sends the answer back.
    pub(super) fn serve_http(
        self: &Arc<Self>,
        origin: String,
        request: u64,
        http: ForwardedRequest,
    ) {
        let Some(requests) = self.forwarded_requests.get().cloned() else {
            tracing::debug!("a forwarded request arrived before the hub was ready; dropped");
            return;
        };
        let node = self.clone();
        self.shared.runtime.spawn(async move {
            let http = requests.handle(http).await;
            let answered = node
                .publish(
                    &[Channel::Node(&origin)],
                    Body::HttpResponse { request, http },
                )
                .await;
            if let Err(error) = answered {
                tracing::debug!(%error, "a forwarded request's answer could not be sent back");
            }
        });
    }

    /// The answer to an HTTP request this node forwarded.
    pub(super) fn http_answered(&self, request: u64, http: ForwardedResponse) {
        if let Some(Pending::Http { done, .. }) = lock(&self.requests).remove(&request) {
            let _ = done.send(Ok(http));
        }
    }
}
