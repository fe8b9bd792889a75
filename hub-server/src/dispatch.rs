//! From decoded messages to hub method calls and back to Completions.
//!
//! One [`Dispatcher`] per connection. Each invocation runs in its own task, at most
//! `max_parallel_invocations` at a time (the reader waits for a free slot, as ASP.NET Core does).
//! Errors become the exact SignalR texts; non-blocking invocations (no id) get no reply at all.

use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use hub_core::hub::{CallError, MethodKind, MethodOutput};
use hub_core::protocol::{Arguments, Close, Headers, HubMessage, MessageRef, OutcomeRef};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::connection::Connection;
use crate::context::{Context, HubContext};
use crate::endpoint::Endpoint;

/// What the connection should do after a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The client sent Close.
    ClientClosed,
}

pub(crate) struct Dispatcher {
    endpoint: Arc<Endpoint>,
    connection: Arc<Connection>,
    hub_context: HubContext,
    permits: Arc<Semaphore>,
    /// Fires when the connection's invocations must stop: the connection ended, or the shutdown
    /// grace period ran out. Hub methods see it as [`Context::cancellation`].
    cancellation: CancellationToken,
    /// This connection's running invocations.
    invocations: TaskTracker,
}

impl Dispatcher {
    pub(crate) fn new(endpoint: Arc<Endpoint>, connection: Arc<Connection>) -> Self {
        let permits = Arc::new(Semaphore::new(endpoint.config.max_parallel_invocations));
        Dispatcher {
            hub_context: endpoint.context.clone(),
            endpoint,
            connection,
            permits,
            cancellation: CancellationToken::new(),
            invocations: TaskTracker::new(),
        }
    }

    /// Stops the connection's invocations. On server shutdown, running invocations first get the
    /// grace period to finish and deliver their results, then the client gets a Close that
    /// invites it to reconnect.
    pub(crate) async fn finish(&mut self, shutting_down: bool) {
        self.invocations.close();
        if shutting_down && !self.connection.closing().is_cancelled() {
            let grace = self.endpoint.config.shutdown_timeout;
            if tokio::time::timeout(grace, self.invocations.wait())
                .await
                .is_err()
            {
                tracing::debug!(
                    ?grace,
                    "invocations still running after the shutdown grace period are cancelled"
                );
            }
            self.connection.end(
                Close {
                    error: None,
                    allow_reconnect: true,
                },
                None,
            );
        }
        self.cancellation.cancel();
        self.invocations.wait().await;
    }

    /// A context for hook calls (on-connected / on-disconnected).
    pub(crate) fn context(&self) -> Context {
        Context::new(
            self.connection.clone(),
            self.hub_context.clone(),
            self.cancellation.clone(),
        )
    }

    pub(crate) async fn handle(&mut self, message: HubMessage) -> Flow {
        match message {
            HubMessage::Invocation(invocation) => {
                self.invoke(
                    invocation.invocation_id,
                    invocation.target,
                    invocation.arguments,
                    invocation.stream_ids.len(),
                    false,
                )
                .await;
            }
            HubMessage::StreamInvocation(invocation) => {
                self.invoke(
                    Some(invocation.invocation_id),
                    invocation.target,
                    invocation.arguments,
                    invocation.stream_ids.len(),
                    true,
                )
                .await;
            }
            HubMessage::Close(close) => {
                if let Some(error) = &close.error {
                    tracing::debug!(connection_id = %self.connection.id, %error, "the client closed the connection with an error");
                }
                return Flow::ClientClosed;
            }
            // Client results, upload streams and cancellation arrive with their own features;
            // until then these are ignored, as messages for unknown ids are.
            HubMessage::StreamItem(_)
            | HubMessage::Completion(_)
            | HubMessage::CancelInvocation(_)
            | HubMessage::Ping
            | HubMessage::Ack(_)
            | HubMessage::Sequence(_) => {}
        }
        Flow::Continue
    }

    async fn invoke(
        &mut self,
        invocation_id: Option<ByteString>,
        target: ByteString,
        arguments: Arguments,
        stream_count: usize,
        streaming: bool,
    ) {
        let hub = &self.endpoint.hub;
        let Some(index) = hub.find(&target) else {
            self.reply_error(
                invocation_id.as_deref(),
                &format!("Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist."),
            );
            return;
        };
        let method = &hub.methods()[index];
        match (method.kind, streaming) {
            (MethodKind::Unary, true) => {
                self.reply_error(
                    invocation_id.as_deref(),
                    &format!("The client attempted to invoke the non-streaming '{target}' method with a streaming invocation."),
                );
                return;
            }
            (MethodKind::ServerStream, false) => {
                self.reply_error(
                    invocation_id.as_deref(),
                    &format!("The client attempted to invoke the streaming '{target}' method with a non-streaming invocation."),
                );
                return;
            }
            _ => {}
        }
        if stream_count != method.upload_streams {
            self.reply_error(
                invocation_id.as_deref(),
                &format!(
                    "An unexpected error occurred invoking '{target}' on the server. HubException: Client sent {stream_count} stream(s), Hub method expects {}.",
                    method.upload_streams
                ),
            );
            return;
        }

        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = self.connection.closing().cancelled() => return,
        };
        let context = Context::new(
            self.connection.clone(),
            self.hub_context.clone(),
            self.cancellation.clone(),
        );
        let call = hub.call(index, context, arguments, Vec::new());
        let cancellation = self.cancellation.clone();
        let connection = self.connection.clone();
        let detailed = self.endpoint.config.detailed_errors;
        let span = tracing::debug_span!(
            "invocation",
            method = %target,
            connection_id = %connection.id,
            invocation_id = invocation_id.as_deref().unwrap_or(""),
        );
        let task = self.invocations.track_future(
            async move {
                let started = Instant::now();
                let result = tokio::select! {
                    result = call => result,
                    () = cancellation.cancelled() => {
                        tracing::debug!("invocation cancelled");
                        return;
                    }
                };
                drop(permit);
                let elapsed_us = started.elapsed().as_micros() as u64;
                match &result {
                    Ok(_) => tracing::debug!(elapsed_us, "invocation completed"),
                    Err(CallError::Bind(error)) => {
                        tracing::debug!(elapsed_us, %error, "invocation arguments did not bind")
                    }
                    Err(CallError::Method(error)) => {
                        tracing::warn!(elapsed_us, %error, "hub method failed")
                    }
                }
                let Some(id) = invocation_id else {
                    return;
                };
                match result {
                    Ok(MethodOutput::Stream(_)) => {
                        send_error(
                            &connection,
                            &id,
                            "An error occurred on the server while streaming results.",
                        );
                    }
                    Ok(MethodOutput::Value(value)) => {
                        let _ = connection.send_message(&MessageRef::Completion {
                            headers: &Headers::new(),
                            invocation_id: &id,
                            outcome: OutcomeRef::Result(&*value),
                        });
                    }
                    Err(CallError::Bind(error)) => {
                        let prefix =
                            format!("Failed to invoke '{target}' due to an error on the server.");
                        let text = if detailed {
                            format!("{prefix} {}", error.detail())
                        } else {
                            prefix
                        };
                        send_error(&connection, &id, &text);
                    }
                    Err(CallError::Method(error)) => {
                        let prefix = format!(
                            "An unexpected error occurred invoking '{target}' on the server."
                        );
                        send_error(&connection, &id, &error.client_text(&prefix, detailed));
                    }
                }
            }
            .instrument(span),
        );
        self.endpoint.tasks.spawn(task);
    }

    fn reply_error(&self, invocation_id: Option<&str>, text: &str) {
        match invocation_id {
            Some(id) => send_error(&self.connection, id, text),
            None => {
                tracing::debug!(connection_id = %self.connection.id, error = text, "a non-blocking invocation failed")
            }
        }
    }

    /// Ends the connection after a protocol violation: Close with an error, reconnect allowed.
    pub(crate) fn protocol_violation(&self, error: &hub_core::ProtocolError) {
        tracing::debug!(connection_id = %self.connection.id, %error, "closing the connection: the client broke the protocol");
        self.connection
            .end(Close::with_error(), Some(error.to_string()));
    }
}

fn send_error(connection: &Connection, invocation_id: &str, text: &str) {
    let _ = connection.send_message(&MessageRef::Completion {
        headers: &Headers::new(),
        invocation_id,
        outcome: OutcomeRef::Error(text),
    });
}
