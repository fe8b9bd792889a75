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
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;
use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, StreamExt};
use hub_core::hub::{
    BoxStream, CallError, HubDispatch, HubError, MethodKind, MethodOutput, RawUpload,
};
use hub_core::protocol::{
    Arguments, Close, CompletionOutcome, Headers, HubMessage, MessageRef, OutcomeRef, RawValue,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::clients::{Context, HubContext};
use crate::config::HubConfig;
use crate::connection::Connection;
use crate::lifetime::LifetimeManager;

/// Unary invocations waiting for the invoker; beyond this the reader waits too.
const INVOCATION_QUEUE: usize = 64;

/// What the connection should do after a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The client sent Close.
    ClientClosed,
}

/// A unary invocation (or its rejection) waiting for a slot, in arrival order.
enum Queued {
    Call(Call),
    Reject {
        invocation_id: ByteString,
        text: String,
    },
}

/// A validated invocation, ready to run.
struct Call {
    invocation_id: Option<ByteString>,
    target: ByteString,
    /// Fires on CancelInvocation, or when the connection's invocations stop.
    cancellation: CancellationToken,
    method: BoundMethod,
}

/// Which method to run, with what.
struct BoundMethod {
    index: usize,
    arguments: Arguments,
    uploads: Vec<RawUpload>,
}

impl BoundMethod {
    /// Runs the method until it returns (a panic becomes an internal error) or `cancellation`
    /// fires (`None`: a cancelled invocation gets no reply).
    async fn run(
        self,
        shared: &Shared,
        cancellation: &CancellationToken,
    ) -> Option<Result<MethodOutput, CallError>> {
        // Cancelled while it waited for a slot: it never starts.
        if cancellation.is_cancelled() {
            return None;
        }
        let context = Context::new(
            shared.connection.clone(),
            shared.hub_context.clone(),
            cancellation.clone(),
        );
        let call = shared
            .env
            .hub
            .call(self.index, context, self.arguments, self.uploads);
        // Cancellation wins: a method that stops because it saw the cancellation must not get
        // its (error) result sent for an invocation the client cancelled. The method is polled
        // first and the token checked when it is done, so a method that finishes at once never
        // registers a waiter on the token.
        let mut call = std::pin::pin!(guarded(call));
        let mut cancelled = std::pin::pin!(cancellation.cancelled());
        std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = call.as_mut().poll(cx) {
                return Poll::Ready((!cancellation.is_cancelled()).then_some(result));
            }
            cancelled.as_mut().poll(cx).map(|()| None)
        })
        .await
    }
}

/// Ids of the invocations running on a connection, with their cancellation.
#[derive(Default)]
struct ActiveInvocations {
    tokens: Mutex<HashMap<ByteString, CancellationToken>>,
}

impl ActiveInvocations {
    /// Registers `id`; false if it is already in use.
    fn insert(&self, id: &ByteString, token: CancellationToken) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.contains_key(id) {
            return false;
        }
        tokens.insert(id.clone(), token);
        true
    }

    fn remove(&self, id: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    fn cancel(&self, id: &str) {
        if let Some(token) = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            token.cancel();
        }
    }
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
    cancellation: CancellationToken,
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
        let cancellation = CancellationToken::new();
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
            self.cancellation.clone(),
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
            self.cancellation.clone(),
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
        self.cancellation.cancel();
        self.invocations.wait().await;
    }

    /// Handles one message from the client.
    pub(crate) async fn handle(&mut self, message: HubMessage) -> Flow {
        match message {
            HubMessage::Invocation(invocation) => {
                let queued = match self.prepare(
                    invocation.invocation_id,
                    invocation.target,
                    invocation.arguments,
                    invocation.stream_ids,
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
                        return Flow::Continue;
                    }
                    Ok(call) => {
                        // Nothing waits for a slot and one is free: start it here, in order.
                        if self.backlog.load(Ordering::Acquire) == 0 {
                            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                                self.start_unary(call, permit);
                                return Flow::Continue;
                            }
                        }
                        Queued::Call(call)
                    }
                    Err((Some(invocation_id), text)) => Queued::Reject {
                        invocation_id,
                        text,
                    },
                    Err((None, text)) => {
                        tracing::debug!(error = %text, "a non-blocking invocation failed");
                        return Flow::Continue;
                    }
                };
                self.backlog.fetch_add(1, Ordering::AcqRel);
                let queue = self.queue();
                if let Err(mpsc::error::TrySendError::Full(queued)) = queue.try_send(queued) {
                    // The waits are boxed, here and below: the reader's task is as large as
                    // its largest wait, and most connections never wait.
                    let closing = self.shared.connection.closing();
                    Box::pin(async move {
                        tokio::select! {
                            _ = queue.send(queued) => {}
                            () = closing.cancelled() => {}
                        }
                    })
                    .await;
                }
            }
            HubMessage::StreamInvocation(invocation) => {
                match self.prepare(
                    Some(invocation.invocation_id),
                    invocation.target,
                    invocation.arguments,
                    invocation.stream_ids,
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
                            Box::pin(send_error(&self.shared.connection, &invocation_id, &text))
                                .await;
                        }
                    }
                }
            }
            HubMessage::StreamItem(item) => {
                if let Some(upload) = self.uploads.get(&item.invocation_id) {
                    let delivered = match upload.items.try_send(item.item) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                        Err(mpsc::error::TrySendError::Full(value)) => {
                            let items = &upload.items;
                            let closing = self.shared.connection.closing();
                            Box::pin(async move {
                                tokio::select! {
                                    sent = items.send(value) => sent.is_ok(),
                                    () = closing.cancelled() => true,
                                }
                            })
                            .await
                        }
                    };
                    if !delivered {
                        // The method no longer reads this stream.
                        self.uploads.remove(&item.invocation_id);
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
                return Flow::ClientClosed;
            }
            HubMessage::Ping | HubMessage::Ack(_) | HubMessage::Sequence(_) => {}
        }
        Flow::Continue
    }

    /// Starts a unary invocation that holds a slot.
    fn start_unary(&self, call: Call, permit: OwnedSemaphorePermit) {
        let task =
            self.invocations
                .track_future(run_unary(self.shared.clone(), call, Some(permit)));
        run_or_spawn(&self.shared.env.tasks, task);
    }

    /// Validates an invocation and opens its upload streams. On failure, returns the id to
    /// answer (if any) and the client-facing text.
    fn prepare(
        &mut self,
        invocation_id: Option<ByteString>,
        target: ByteString,
        arguments: Arguments,
        stream_ids: Vec<ByteString>,
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
        let cancellation = self.cancellation.child_token();
        if let Some(id) = &invocation_id {
            if !self.shared.active.insert(id, cancellation.clone()) {
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

/// A bounded upload stream: items wait for room; the end (with or without an error) does not.
fn upload_channel(capacity: usize) -> (UploadSender, UploadReceiver) {
    let (items, receiver) = mpsc::channel(capacity);
    let failure = Arc::new(Mutex::new(None));
    (
        UploadSender {
            items,
            failure: failure.clone(),
        },
        UploadReceiver {
            items: receiver,
            failure,
        },
    )
}

/// The reader's end of an upload stream. Dropping it ends the stream.
struct UploadSender {
    items: mpsc::Sender<RawValue>,
    failure: Arc<Mutex<Option<HubError>>>,
}

impl UploadSender {
    /// Ends the stream with `error`, after the items already sent.
    fn fail(self, error: HubError) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// The method's end of an upload stream.
struct UploadReceiver {
    items: mpsc::Receiver<RawValue>,
    failure: Arc<Mutex<Option<HubError>>>,
}

impl futures_util::Stream for UploadReceiver {
    type Item = Result<RawValue, HubError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        match self.items.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(Ok(item))),
            // The sender is gone: the client ended the stream, possibly with an error.
            Poll::Ready(None) => Poll::Ready(
                self.failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .map(Err),
            ),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs queued unary invocations in order, at most `permits` at a time.
async fn invoker(
    shared: Arc<Shared>,
    mut pending: mpsc::Receiver<Queued>,
    permits: Arc<Semaphore>,
    backlog: Arc<AtomicUsize>,
    invocations: TaskTracker,
    cancellation: CancellationToken,
) {
    loop {
        let queued = tokio::select! {
            queued = pending.recv() => match queued {
                Some(queued) => queued,
                None => return,
            },
            () = cancellation.cancelled() => return,
        };
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = cancellation.cancelled() => return,
        };
        backlog.fetch_sub(1, Ordering::AcqRel);
        match queued {
            Queued::Reject {
                invocation_id,
                text,
            } => {
                send_error(&shared.connection, &invocation_id, &text).await;
                drop(permit);
            }
            Queued::Call(call) => {
                let task = invocations.track_future(run_unary(shared.clone(), call, Some(permit)));
                run_or_spawn(&shared.env.tasks, task);
            }
        }
    }
}

/// Polls an invocation once where it is started, and spawns it as its own task only if it has
/// to wait. Most hub methods finish without waiting: their Completion is then queued at once, with
/// no task to create, schedule and tear down. Being polled first with a no-op waker is harmless:
/// the spawned task polls again at once, with its own waker, and futures re-register on every
/// poll.
fn run_or_spawn(tasks: &TaskTracker, task: impl Future<Output = ()> + Send + 'static) {
    let mut task = Box::pin(task);
    let mut cx = TaskContext::from_waker(std::task::Waker::noop());
    if task.as_mut().poll(&mut cx).is_pending() {
        tasks.spawn(task);
    }
}

fn span_for(call: &Call) -> tracing::Span {
    tracing::debug_span!(
        "invocation",
        method = %call.target,
        invocation_id = call.invocation_id.as_deref().unwrap_or(""),
    )
}

/// Runs a unary method and queues its Completion before giving its slot (if it holds one) back.
async fn run_unary(shared: Arc<Shared>, call: Call, permit: Option<OwnedSemaphorePermit>) {
    let span = span_for(&call);
    async move {
        let Call {
            invocation_id,
            target,
            cancellation,
            method,
        } = call;
        let started = Instant::now();
        let result = method.run(&shared, &cancellation).await;
        let elapsed_us = started.elapsed().as_micros() as u64;
        let reply = match result {
            None => {
                tracing::debug!(elapsed_us, "invocation cancelled");
                None
            }
            Some(result) => {
                log_outcome(&result, elapsed_us);
                invocation_id
                    .as_ref()
                    .and_then(|id| completion_bytes(&shared, id, &target, result))
            }
        };
        // The id is free again before the client can see the Completion.
        if let Some(id) = &invocation_id {
            shared.active.remove(id);
        }
        if let Some(bytes) = reply {
            let _ = shared.connection.send(bytes).await;
        }
        drop(permit);
    }
    .instrument(span)
    .await
}

/// The encoded Completion of a unary invocation.
fn completion_bytes(
    shared: &Shared,
    invocation_id: &str,
    target: &str,
    result: Result<MethodOutput, CallError>,
) -> Option<Bytes> {
    let detailed = shared.env.config.detailed_errors;
    let text = match result {
        Ok(MethodOutput::Value(value)) => {
            return shared.connection.encode(&MessageRef::Completion {
                headers: &Headers::new(),
                invocation_id,
                outcome: OutcomeRef::Result(&*value),
            })
        }
        Ok(MethodOutput::Stream(_)) => {
            format!("The client attempted to invoke the streaming '{target}' method with a non-streaming invocation.")
        }
        Err(error) => call_error_text(&error, target, detailed),
    };
    error_bytes(&shared.connection, invocation_id, &text)
}

fn call_error_text(error: &CallError, target: &str, detailed: bool) -> String {
    match error {
        CallError::Bind(error) => {
            let prefix = format!("Failed to invoke '{target}' due to an error on the server.");
            if detailed {
                format!("{prefix} {}", error.detail())
            } else {
                prefix
            }
        }
        CallError::Method(error) => error.client_text(
            &format!("An unexpected error occurred invoking '{target}' on the server."),
            detailed,
        ),
    }
}

fn log_outcome(result: &Result<MethodOutput, CallError>, elapsed_us: u64) {
    match result {
        Ok(_) => tracing::debug!(elapsed_us, "invocation completed"),
        Err(CallError::Bind(error)) => {
            tracing::debug!(elapsed_us, %error, "invocation arguments did not bind")
        }
        Err(CallError::Method(error)) => tracing::warn!(elapsed_us, %error, "hub method failed"),
    }
}

/// Runs a streaming method: StreamItems in order, then one Completion (without a result when the
/// stream ends or is cancelled, with an error when it fails).
async fn run_stream(shared: Arc<Shared>, call: Call) {
    let span = span_for(&call);
    async move {
        let Call {
            invocation_id,
            target,
            cancellation,
            method,
        } = call;
        let Some(id) = invocation_id else {
            return;
        };
        let started = Instant::now();
        let detailed = shared.env.config.detailed_errors;
        let result = method.run(&shared, &cancellation).await;
        let end = match result {
            None => Ok(()),
            Some(Ok(MethodOutput::Stream(items))) => {
                stream_items(&shared, &id, items, &cancellation).await
            }
            Some(Ok(MethodOutput::Value(value))) => {
                // A unary output from a method declared streaming: send it as the one item.
                let item = shared.connection.encode(&MessageRef::StreamItem {
                    headers: &Headers::new(),
                    invocation_id: &id,
                    item: &*value,
                });
                if let Some(bytes) = item {
                    let _ = shared.connection.send(bytes).await;
                }
                Ok(())
            }
            Some(Err(error)) => Err(call_error_text(&error, &target, detailed)),
        };
        let elapsed_us = started.elapsed().as_micros() as u64;
        let completion = match &end {
            Ok(()) => {
                tracing::debug!(elapsed_us, "stream completed");
                shared.connection.encode(&MessageRef::Completion {
                    headers: &Headers::new(),
                    invocation_id: &id,
                    outcome: OutcomeRef::NoResult,
                })
            }
            Err(text) => {
                tracing::debug!(elapsed_us, error = %text, "stream failed");
                error_bytes(&shared.connection, &id, text)
            }
        };
        shared.active.remove(&id);
        if let Some(bytes) = completion {
            let _ = shared.connection.send(bytes).await;
        }
    }
    .instrument(span)
    .await
}

/// Sends a stream's items until it ends, fails or is cancelled. Items wait for room in the
/// connection's queue, so a slow client slows its stream rather than growing memory.
async fn stream_items(
    shared: &Shared,
    id: &str,
    mut items: BoxStream<Result<hub_core::hub::BoxValue, HubError>>,
    cancellation: &CancellationToken,
) -> Result<(), String> {
    let detailed = shared.env.config.detailed_errors;
    loop {
        // Cancellation first: an item that fails because it saw the cancellation must not turn
        // the cancelled stream's end into an error.
        let item = tokio::select! {
            biased;
            () = cancellation.cancelled() => return Ok(()),
            item = AssertUnwindSafe(items.next()).catch_unwind() => match item {
                Ok(item) => item,
                Err(panic) => Some(Err(panicked(panic))),
            },
        };
        match item {
            None => return Ok(()),
            Some(Ok(value)) => {
                let bytes = shared.connection.encode(&MessageRef::StreamItem {
                    headers: &Headers::new(),
                    invocation_id: id,
                    item: &*value,
                });
                if let Some(bytes) = bytes {
                    if shared.connection.send(bytes).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "a stream failed");
                return Err(error.client_text(
                    "An error occurred on the server while streaming results.",
                    detailed,
                ));
            }
        }
    }
}

/// Runs a method call, turning a panic into an internal error (the caller gets the generic text).
async fn guarded(
    call: hub_core::hub::BoxFuture<Result<MethodOutput, CallError>>,
) -> Result<MethodOutput, CallError> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(CallError::Method(panicked(panic))),
    }
}

/// A panic's payload as an internal hub error.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> HubError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a hub method panicked".to_owned());
    tracing::error!(panic = %message, "a hub method panicked");
    HubError::internal(&MethodPanicked(message))
}

/// The error a panicking hub method becomes.
struct MethodPanicked(String);

impl std::fmt::Display for MethodPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the hub method panicked: {}", self.0)
    }
}

fn error_bytes(connection: &Connection, invocation_id: &str, text: &str) -> Option<Bytes> {
    connection.encode(&MessageRef::Completion {
        headers: &Headers::new(),
        invocation_id,
        outcome: OutcomeRef::Error(text),
    })
}

async fn send_error(connection: &Connection, invocation_id: &str, text: &str) {
    if let Some(bytes) = error_bytes(connection, invocation_id, text) {
        let _ = connection.send(bytes).await;
    }
}
