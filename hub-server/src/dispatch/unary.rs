//! A unary invocation's run: the hub method, then its Completion (a result, or SignalR's error
//! text).
//!
//! Most hub methods finish without waiting. A call is therefore started where it is dispatched
//! ([`start_unary`]): the method is called and polled once at once, and one that finishes then
//! has its Completion queued with no task, no boxed future of its own and no entry in the
//! connection's active invocations. Only one that waits becomes a task ([`run_unary`] runs the
//! rare ones that start as tasks: a method with an authorization policy, one that reads
//! uploads).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use hub_core::hub::{CallError, MethodOutput};
use hub_core::protocol::{Headers, MessageRef, OutcomeRef};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::*;

/// The invocation slot (`max_parallel_invocations`) of a unary call being started.
pub(super) enum Slot<'a> {
    /// Taken (a queued call the invoker started): given back once its Completion is queued.
    Taken(OwnedSemaphorePermit),
    /// Free and not taken: a call started where it was dispatched, with nothing queued before it.
    /// One that finishes in its first poll never takes it — nothing else starts meanwhile, and
    /// only the reader takes free slots — so most calls cost no semaphore; one that waits (or
    /// whose Completion waits for room) takes it then.
    Free(&'a Arc<Semaphore>),
}

impl Slot<'_> {
    /// The slot, taken, for a call that goes on in a task of its own.
    fn take(self) -> Option<OwnedSemaphorePermit> {
        match self {
            Slot::Taken(permit) => Some(permit),
            // Free when the call started, and nobody else took it since (see above).
            Slot::Free(permits) => permits.clone().try_acquire_owned().ok(),
        }
    }
}

/// Starts a unary invocation where it is dispatched (see the module's comment). Its slot is given
/// back once its Completion is queued.
pub(super) fn start_unary(
    shared: &Arc<Shared>,
    call: Call,
    slot: Slot<'_>,
    invocations: &TaskTracker,
) {
    let open = shared
        .env
        .hub
        .methods()
        .get(call.method.index)
        .is_none_or(|method| method.authorization.is_open());
    if !open || !call.method.uploads.is_empty() || call.cancellation.is_cancelled() {
        // It may wait from its start (for a policy's decision): entered now, so that a
        // CancelInvocation reaches it and its id counts as in use (a queued call already is).
        if let Some(id) = &call.invocation_id {
            shared.active.insert(id, call.cancellation.clone());
        }
        let task = invocations.track_future(run_unary(shared.clone(), call, slot.take()));
        run_or_spawn(&shared.env.tasks, task);
        return;
    }
    let span = span_for(shared, &call);
    let entered = span.enter();
    let Call {
        invocation_id,
        target,
        cancellation,
        method,
        remote,
    } = call;
    let started = Instant::now();
    let index = method.index;
    let mut future = method.call(shared, &cancellation, remote.trace_parent());
    let mut cx = TaskContext::from_waker(std::task::Waker::noop());
    let result = match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)))
    {
        Ok(Poll::Ready(result)) => result,
        Err(panic) => Err(CallError::Method(panicked(panic))),
        Ok(Poll::Pending) => {
            // It waits: from now on a CancelInvocation may reach it, and its id is in use.
            if let Some(id) = &invocation_id {
                shared.active.insert(id, cancellation.clone());
            }
            drop(entered);
            let permit = slot.take();
            let tasks = shared.env.tasks.clone();
            let shared = shared.clone();
            let task = async move {
                let result = until_cancelled(std::pin::pin!(guarded(future)), &cancellation).await;
                let reply = conclude(
                    &shared,
                    index,
                    invocation_id.as_deref(),
                    &target,
                    result,
                    started.elapsed(),
                );
                deliver(&shared, reply, permit).await;
            };
            tasks.spawn(invocations.track_future(task.instrument(span)));
            return;
        }
    };
    // Cancellation wins, as for a method that waited.
    let result = (!cancellation.is_cancelled()).then_some(result);
    let reply = conclude(
        shared,
        index,
        invocation_id.as_deref(),
        &target,
        result,
        started.elapsed(),
    );
    let Some(bytes) = reply else {
        return;
    };
    if let Some(bytes) = shared.connection.try_send(bytes) {
        // No room now: the reply waits for it (backpressure) in a task, with the slot.
        drop(entered);
        let permit = slot.take();
        let tasks = shared.env.tasks.clone();
        let shared = shared.clone();
        let task = async move { deliver(&shared, Some(bytes), permit).await }.instrument(span);
        tasks.spawn(invocations.track_future(task));
    }
}

/// Polls a method's call until it returns (`Some`) or `cancellation` fires (`None`), whichever
/// comes first; a method that returns after the cancellation fired counts as cancelled. The
/// token is made and waited on only if the call waits.
pub(super) async fn until_cancelled<T>(
    mut call: Pin<&mut impl Future<Output = T>>,
    cancellation: &Arc<InvocationCancellation>,
) -> Option<T> {
    if let Poll::Ready(result) =
        std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await
    {
        return (!cancellation.is_cancelled()).then_some(result);
    }
    let mut cancelled = std::pin::pin!(cancellation.token().cancelled());
    std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = call.as_mut().poll(cx) {
            return Poll::Ready((!cancellation.is_cancelled()).then_some(result));
        }
        cancelled.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Runs a unary method as a task of its own and queues its Completion before giving its slot (if
/// it holds one) back.
pub(super) async fn run_unary(
    shared: Arc<Shared>,
    call: Call,
    permit: Option<OwnedSemaphorePermit>,
) {
    let span = span_for(&shared, &call);
    async move {
        let Call {
            invocation_id,
            target,
            cancellation,
            method,
            remote,
        } = call;
        let index = method.index;
        let started = Instant::now();
        // Cancelled while it waited for a slot: it never starts.
        let result = if cancellation.is_cancelled() {
            None
        } else {
            method
                .run(&shared, &cancellation, remote.trace_parent())
                .await
        };
        let reply = conclude(
            &shared,
            index,
            invocation_id.as_deref(),
            &target,
            result,
            started.elapsed(),
        );
        deliver(&shared, reply, permit).await;
    }
    .instrument(span)
    .await
}

/// The end of a unary invocation: its outcome logged and counted, its id free again (before the
/// client can see the Completion), and its encoded Completion, if the client gets one (`None`
/// for a cancelled call or a non-blocking one).
fn conclude(
    shared: &Shared,
    index: usize,
    invocation_id: Option<&str>,
    target: &str,
    result: Option<Result<MethodOutput, CallError>>,
    elapsed: Duration,
) -> Option<Bytes> {
    let elapsed_us = elapsed.as_micros() as u64;
    let reply = match result {
        None => {
            tracing::debug!(elapsed_us, "invocation cancelled");
            shared
                .env
                .metrics
                .invocation(index, Outcome::Cancelled, elapsed);
            None
        }
        Some(result) => {
            log_outcome(&result, elapsed_us);
            let outcome = if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            };
            shared.env.metrics.invocation(index, outcome, elapsed);
            invocation_id.and_then(|id| completion_bytes(shared, id, target, result))
        }
    };
    if let Some(id) = invocation_id {
        shared.active.remove(id);
    }
    reply
}

/// Queues a Completion (waiting for room, as replies do), then gives the slot back.
async fn deliver(shared: &Shared, reply: Option<Bytes>, permit: Option<OwnedSemaphorePermit>) {
    if let Some(bytes) = reply {
        let _ = shared.connection.send(bytes).await;
    }
    drop(permit);
}

/// The encoded Completion of a unary invocation.
pub(super) fn completion_bytes(
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
        Err(error) => {
            let text = call_error_text(&error, target, detailed);
            let typed = match &error {
                CallError::Method(error) => error.client_error(),
                _ => None,
            };
            return typed_error_bytes(&shared.connection, invocation_id, &text, typed);
        }
    };
    error_bytes(&shared.connection, invocation_id, &text)
}

pub(super) fn call_error_text(error: &CallError, target: &str, detailed: bool) -> String {
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
        // ASP.NET Core's text, word for word.
        CallError::Unauthorized => unauthorized_text(target),
    }
}

pub(super) fn log_outcome(result: &Result<MethodOutput, CallError>, elapsed_us: u64) {
    match result {
        Ok(_) => tracing::debug!(elapsed_us, "invocation completed"),
        Err(CallError::Bind(error)) => {
            tracing::debug!(elapsed_us, %error, "invocation arguments did not bind")
        }
        Err(CallError::Method(error)) => tracing::warn!(elapsed_us, %error, "hub method failed"),
        Err(CallError::Unauthorized) => {
            tracing::debug!("the caller is not authorized to invoke this method")
        }
    }
}
