//! From decoded messages to hub method calls and back to Completions and StreamItems.
//!
//! One [`Dispatcher`] per connection, driven by the connection's reader, which never waits for a
//! hub method: that is what lets a method await a client result (the client's Completion must
//! still be read) without the deadlock ASP.NET Core has.
//!
//! - **Unary invocations** go, in arrival order, through a bounded queue to the connection's
//!   *invoker*, which runs at most `max_parallel_invocations` of them at a time. When nothing is
//!   queued and a slot is free, the reader starts the call itself (same order, no hop), and a call
//!   is polled once where it starts: only one that has to wait becomes its own task. A method
//!   keeps its slot until its Completion is queued, and rejections (unknown method, wrong
//!   arguments) take the same path, so with the default limit of 1 replies come back in request
//!   order. A call cancelled while it waits for its slot never starts.
//! - **Stream invocations** start at once and do not count against the limit (as in SignalR).
//! - **Upload stream items**, **Completions** (ends of upload streams, then client results) and
//!   **CancelInvocation** are handled by the reader directly.
//!
//! Errors become the exact SignalR texts; non-blocking invocations (no id) get no reply at all.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytestring::ByteString;

use hub_core::hub::{CallError, HubDispatch, HubError, MethodKind, MethodOutput, RawUpload};
use hub_core::protocol::{Arguments, Close, CompletionOutcome, HubMessage};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::authorization::{Decision, Policies};
use crate::clients::{Context, HubContext, InvocationCancellation, StopSignal};
use crate::config::HubConfig;
use crate::connection::Connection;
use crate::lifetime::LifetimeManager;
use crate::observability::trace::RemoteParent;
use crate::observability::{HubMetrics, Outcome};

mod active;
mod call;
mod errors;
mod invoker;
mod streams;
mod unary;
mod uploads;

use active::ActiveInvocations;
use call::*;
use errors::*;
use invoker::*;
use streams::*;
use unary::*;
use uploads::*;

/// Unary invocations waiting for the invoker; beyond this the reader waits too.
const INVOCATION_QUEUE: usize = 64;

/// What the connection should do after a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The client sent Close.
    ClientClosed,
}

/// What became of a message the dispatcher handled.
pub(crate) enum Handled<'a> {
    /// Handled.
    Done(Flow),
    /// Handled once this wait (boxed: rare) is over; the connection goes on after it.
    Wait(std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>),
}

impl<'a> Handled<'a> {
    fn wait(wait: impl Future<Output = ()> + Send + 'a) -> Self {
        Handled::Wait(Box::pin(wait))
    }
}

/// A unary invocation (or its rejection) waiting for a slot, in arrival order.
enum Queued {
    Call(Call),
    Reject {
        invocation_id: ByteString,
        text: String,
    },
}

/// What the dispatcher needs of its hub: narrower than the endpoint, which also holds the
/// connection tokens, authentication and transports.
pub(crate) struct DispatchEnv {
    /// The hub's methods.
    pub(crate) hub: Arc<dyn HubDispatch<Context>>,
    /// The hub's context, handed to every invocation.
    pub(crate) context: HubContext,
    /// Where client results are completed.
    pub(crate) manager: Arc<dyn LifetimeManager>,
    /// The hub's tasks (invocations run there), for shutdown.
    pub(crate) tasks: TaskTracker,
    /// The hub's settings.
    pub(crate) config: HubConfig,
    /// The server's named authorization policies.
    pub(crate) policies: Policies,
    /// The hub's instruments.
    pub(crate) metrics: Arc<HubMetrics>,
}

/// What every invocation task needs, shared.
struct Shared {
    env: Arc<DispatchEnv>,
    connection: Arc<Connection>,
    hub_context: HubContext,
    active: ActiveInvocations,
}

pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    /// Fires when the connection's invocations must stop: the connection ended, or the shutdown
    /// grace period ran out. Every invocation's cancellation derives from it.
    cancellation: Arc<StopSignal>,
    /// This connection's running invocations (and its invoker).
    invocations: TaskTracker,
    /// The queue to the invoker, created (and the invoker started) the first time a call has to
    /// wait: most connections never need one, and an idle connection stays small.
    queue: Option<mpsc::Sender<Queued>>,
    /// The invocation slots (`max_parallel_invocations`), shared with the invoker.
    permits: Arc<Semaphore>,
    /// Unary invocations handed to the invoker that have no slot yet. While it is zero, the reader
    /// may take a free slot itself and start the call at once (no hop through the invoker task)
    /// without overtaking an earlier call.
    backlog: Arc<AtomicUsize>,
    /// Open upload streams by stream id (reader only).
    uploads: HashMap<ByteString, UploadSender>,
}

impl Dispatcher {
    pub(crate) fn new(env: Arc<DispatchEnv>, connection: Arc<Connection>) -> Self {
        let shared = Arc::new(Shared {
            hub_context: env.context.clone(),
            env,
            connection,
            active: ActiveInvocations::default(),
        });
        let cancellation = Arc::new(StopSignal::default());
        let permits = Arc::new(Semaphore::new(shared.env.config.max_parallel_invocations));
        Dispatcher {
            shared,
            cancellation,
            invocations: TaskTracker::new(),
            queue: None,
            permits,
            backlog: Arc::new(AtomicUsize::new(0)),
            uploads: HashMap::new(),
        }
    }

    /// The queue to the invoker, starting the invoker on first use.
    fn queue(&mut self) -> mpsc::Sender<Queued> {
        if let Some(queue) = &self.queue {
            return queue.clone();
        }
        let (queue, pending) = mpsc::channel(INVOCATION_QUEUE);
        let invoker = self.invocations.track_future(invoker(
            self.shared.clone(),
            pending,
            self.permits.clone(),
            self.backlog.clone(),
            self.invocations.clone(),
            self.cancellation.token().clone(),
        ));
        self.shared.env.tasks.spawn(invoker.in_current_span());
        self.queue = Some(queue.clone());
        queue
    }

    /// A context for hook calls (on-connected / on-disconnected).
    pub(crate) fn context(&self) -> Context {
        Context::new(
            self.shared.connection.clone(),
            self.shared.hub_context.clone(),
            Arc::new(InvocationCancellation::from_token(
                self.cancellation.token().clone(),
            )),
        )
    }

    /// Stops the connection's invocations. On server shutdown, running invocations first get the
    /// grace period to finish and deliver their results, then the client gets a Close that
    /// invites it to reconnect.
    pub(crate) async fn finish(&mut self, shutting_down: bool) {
        self.uploads.clear();
        let connection = &self.shared.connection;
        if shutting_down && !connection.closing().is_cancelled() {
            let grace = self.shared.env.config.shutdown_timeout;
            // Closing the queue lets the invoker run what is queued and then end.
            drop(self.queue.take());
            self.invocations.close();
            if tokio::time::timeout(grace, self.invocations.wait())
                .await
                .is_err()
            {
                tracing::debug!(
                    ?grace,
                    "invocations still running after the shutdown grace period are cancelled"
                );
            }
            connection.end(
                Close {
                    error: None,
                    allow_reconnect: true,
                },
                None,
            );
        }
        self.invocations.close();
        self.cancellation.stop();
        self.invocations.wait().await;
    }

    /// Handles one message from the client: at once, or with a wait left to do (an invocation
    /// queue or an upload buffer is full, a rejection is waiting for room) that the reader
    /// awaits. Only the wait is boxed: the reader's task does not carry the largest message
    /// handling for its whole life.
    pub(crate) fn handle(&mut self, message: HubMessage) -> Handled<'_> {
        match message {
            HubMessage::Invocation(invocation) => {
                let queued = match self.prepare(
                    invocation.invocation_id,
                    invocation.target,
                    invocation.arguments,
                    invocation.stream_ids,
                    &invocation.headers,
                    false,
                ) {
                    // Methods fed by upload streams run at once, outside the parallel limit (as
                    // in SignalR): queued behind another call, their full upload buffers would
                    // stop the reader and deadlock the connection.
                    Ok(call) if !call.method.uploads.is_empty() => {
                        let task = self.invocations.track_future(run_unary(
                            self.shared.clone(),
                            call,
                            None,
                        ));
                        self.shared.env.tasks.spawn(task);
                        return Handled::Done(Flow::Continue);
                    }
                    Ok(call) => {
                        // Nothing waits for a slot and one is free: start it here, in order.
                        if self.backlog.load(Ordering::Acquire) == 0
                            && self.permits.available_permits() > 0
                        {
                            let slot = Slot::Free(&self.permits);
                            start_unary(&self.shared, call, slot, &self.invocations);
                            return Handled::Done(Flow::Continue);
                        }
                        // Waits in the queue, where a CancelInvocation may reach it.
                        if let Some(id) = &call.invocation_id {
                            self.shared.active.insert(id, call.cancellation.clone());
                        }
                        Queued::Call(call)
                    }
                    Err((Some(invocation_id), text)) => Queued::Reject {
                        invocation_id,
                        text,
                    },
                    Err((None, text)) => {
                        tracing::debug!(error = %text, "a non-blocking invocation failed");
                        return Handled::Done(Flow::Continue);
                    }
                };
                self.backlog.fetch_add(1, Ordering::AcqRel);
                let queue = self.queue();
                if let Err(mpsc::error::TrySendError::Full(queued)) = queue.try_send(queued) {
                    let closing = self.shared.connection.closing();
                    return Handled::wait(async move {
                        tokio::select! {
                            _ = queue.send(queued) => {}
                            () = closing.cancelled() => {}
                        }
                    });
                }
            }
            HubMessage::StreamInvocation(invocation) => {
                match self.prepare(
                    Some(invocation.invocation_id),
                    invocation.target,
                    invocation.arguments,
                    invocation.stream_ids,
                    &invocation.headers,
                    true,
                ) {
                    Ok(call) => {
                        let task = self
                            .invocations
                            .track_future(run_stream(self.shared.clone(), call));
                        self.shared.env.tasks.spawn(task);
                    }
                    Err((invocation_id, text)) => {
                        if let Some(invocation_id) = invocation_id {
                            let connection = &self.shared.connection;
                            return Handled::wait(async move {
                                send_error(connection, &invocation_id, &text).await;
                            });
                        }
                    }
                }
            }
            HubMessage::StreamItem(item) => {
                if let Some(upload) = self.uploads.get(&item.invocation_id) {
                    match upload.items.try_send(item.item) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            // The method no longer reads this stream.
                            self.uploads.remove(&item.invocation_id);
                        }
                        Err(mpsc::error::TrySendError::Full(value)) => {
                            let items = upload.items.clone();
                            let closing = self.shared.connection.closing();
                            let uploads = &mut self.uploads;
                            return Handled::wait(async move {
                                let delivered = tokio::select! {
                                    sent = items.send(value) => sent.is_ok(),
                                    () = closing.cancelled() => true,
                                };
                                if !delivered {
                                    // The method no longer reads this stream.
                                    uploads.remove(&item.invocation_id);
                                }
                            });
                        }
                    }
                }
            }
            HubMessage::Completion(completion) => {
                if let Some(upload) = self.uploads.remove(&completion.invocation_id) {
                    // Ending the stream needs no room in its buffer: the method gets the items
                    // already sent, then the error (if any), then the end.
                    if let CompletionOutcome::Error(error) = completion.outcome {
                        upload.fail(HubError::new(error.to_string()));
                    }
                } else if !self.shared.env.manager.complete_client_result(
                    &self.shared.connection.id,
                    &completion.invocation_id,
                    completion.outcome,
                ) {
                    tracing::debug!(invocation_id = %completion.invocation_id, "a Completion for an unknown id was ignored");
                }
            }
            HubMessage::CancelInvocation(cancel) => {
                self.shared.active.cancel(&cancel.invocation_id)
            }
            HubMessage::Close(close) => {
                if let Some(error) = &close.error {
                    tracing::debug!(%error, "the client closed the connection with an error");
                }
                return Handled::Done(Flow::ClientClosed);
            }
            HubMessage::Ping | HubMessage::Ack(_) | HubMessage::Sequence(_) => {}
        }
        Handled::Done(Flow::Continue)
    }

    /// Validates an invocation and opens its upload streams. On failure, returns the id to
    /// answer (if any) and the client-facing text.
    fn prepare(
        &mut self,
        invocation_id: Option<ByteString>,
        target: ByteString,
        arguments: Arguments,
        stream_ids: Vec<ByteString>,
        headers: &hub_core::protocol::Headers,
        streaming: bool,
    ) -> Result<Call, (Option<ByteString>, String)> {
        let hub = &self.shared.env.hub;
        let reject = |text: String| Err((invocation_id.clone(), text));
        let Some(index) = hub.find(&target) else {
            return reject(format!(
                "Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist."
            ));
        };
        let method = &hub.methods()[index];
        // Authorization comes first, as in ASP.NET Core (its policies are run with the call).
        if !method.authorization.is_open()
            && Policies::refuses_at_once(
                &method.authorization,
                &self.shared.connection.identity.principal(),
            )
        {
            return reject(unauthorized_text(&target));
        }
        match (method.kind, streaming) {
            (MethodKind::Unary, true) => {
                return reject(format!(
                    "The client attempted to invoke the non-streaming '{target}' method with a streaming invocation."
                ))
            }
            (MethodKind::ServerStream, false) => {
                return reject(format!(
                    "The client attempted to invoke the streaming '{target}' method with a non-streaming invocation."
                ))
            }
            _ => {}
        }
        if stream_ids.len() != method.upload_streams {
            return reject(format!(
                "An unexpected error occurred invoking '{target}' on the server. HubException: Client sent {} stream(s), Hub method expects {}.",
                stream_ids.len(),
                method.upload_streams
            ));
        }
        if let Some(taken) = stream_id_in_use(&self.uploads, &stream_ids) {
            return reject(format!("Invocation ID '{taken}' is already in use."));
        }
        let cancellation = Arc::new(InvocationCancellation::new(self.cancellation.clone()));
        if let Some(id) = &invocation_id {
            // A plain unary call is entered only if it has to wait (queued, or not done in its
            // first poll): see `active.rs`.
            let in_use = if streaming || method.upload_streams > 0 {
                !self.shared.active.insert(id, cancellation.clone())
            } else {
                self.shared.active.contains(id)
            };
            if in_use {
                return reject(format!("Invocation ID '{id}' is already in use."));
            }
        }
        let capacity = self.shared.env.config.stream_buffer_capacity;
        let mut uploads = Vec::with_capacity(stream_ids.len());
        for stream_id in stream_ids {
            let (sender, receiver) = upload_channel(capacity);
            self.uploads.insert(stream_id, sender);
            uploads.push(Box::pin(receiver) as RawUpload);
        }
        Ok(Call {
            invocation_id,
            target,
            cancellation,
            method: BoundMethod {
                index,
                arguments,
                uploads,
            },
            remote: RemoteParent::from_headers(headers),
        })
    }

    /// Ends the connection after a protocol violation: Close with an error, reconnect allowed.
    pub(crate) fn protocol_violation(&self, error: &hub_core::ProtocolError) {
        tracing::debug!(%error, "closing the connection: the client broke the protocol");
        self.shared
            .connection
            .end(Close::with_error(), Some(error.to_string()));
    }
}
