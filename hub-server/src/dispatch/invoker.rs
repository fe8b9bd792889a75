//! The ordered invoker: unary invocations in arrival order, at most `max_parallel_invocations`
//! at a time; and the poll-once-then-spawn start every call gets.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Context as TaskContext;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;

/// Runs queued unary invocations in order, at most `permits` at a time.
pub(super) async fn invoker(
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
            Queued::Call(call) => start_unary(&shared, call, Slot::Taken(permit), &invocations),
        }
    }
}

/// Polls an invocation once where it is started, and spawns it as its own task only if it has
/// to wait. Most hub methods finish without waiting: their Completion is then queued at once, with
/// no task to create, schedule and tear down. Being polled first with a no-op waker is harmless:
/// the spawned task polls again at once, with its own waker, and futures re-register on every
/// poll.
pub(super) fn run_or_spawn(tasks: &TaskTracker, task: impl Future<Output = ()> + Send + 'static) {
    let mut task = Box::pin(task);
    let mut cx = TaskContext::from_waker(std::task::Waker::noop());
    if task.as_mut().poll(&mut cx).is_pending() {
        tasks.spawn(task);
    }
}

/// The invocation's span: `{Hub}/{Method}`, its parent the client's trace context.
pub(super) fn span_for(shared: &Shared, call: &Call) -> tracing::Span {
    crate::observability::trace::invocation_span(
        &shared.env.metrics,
        call.method.index,
        call.invocation_id.as_deref(),
        &call.remote,
    )
}
