//! What a node does with what other nodes publish.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hub_server::core::hub::BoxFuture;
use hub_server::{Envelope, LifetimeError, LifetimeManager, PreparedMessage, Target};
use tokio::time::Instant;

use super::{lock, Forwarded, HubNode, Pending};
use crate::keys::Channel;
use crate::wire::{Body, Packet, WireOutcome};
use hub_server::observability::names;

impl HubNode {
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
        metrics::counter!(names::BACKPLANE_RECEIVED, "kind" => packet.body.kind()).increment(1);
        if let Some(at) = packet.at {
            let lag_ms = super::unix_ms().saturating_sub(at);
            metrics::histogram!(names::BACKPLANE_LAG).record(lag_ms as f64 / 1000.0);
        }
        let origin = packet.origin;
        match packet.body {
            Body::Send { target, message } => {
                if self.is_duplicate(channel, &target) {
                    return;
                }
                // Delivered in a span whose parent is the operation that published it (the
                // invocation on the other server, with its client's trace context).
                let span = tracing::info_span!(
                    "backplane delivery",
                    otel.name = "backplane deliver",
                    otel.kind = "consumer",
                    backplane.origin = %origin,
                );
                if let Some(trace) = &packet.trace {
                    hub_server::observability::set_remote_parent(&span, trace, None);
                }
                let _entered = span.enter();
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
                if let Some(Pending::Ack { done, .. }) = lock(&self.requests).remove(&request) {
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
            Body::HttpRequest { request, http } => self.serve_http(origin, request, http),
            Body::HttpResponse { request, http } => self.http_answered(request, http),
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
}
