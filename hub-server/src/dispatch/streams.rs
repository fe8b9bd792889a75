//! A streaming invocation's run: StreamItems in order, then one Completion.

use std::sync::Arc;
use std::time::Instant;

use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, StreamExt};
use hub_core::hub::{BoxStream, HubError, MethodOutput};
use hub_core::protocol::{Headers, MessageRef, OutcomeRef};
use tracing::Instrument;

use super::*;

/// Runs a streaming method: StreamItems in order, then one Completion (without a result when the
/// stream ends or is cancelled, with an error when it fails).
pub(super) async fn run_stream(shared: Arc<Shared>, call: Call) {
    let span = span_for(&shared, &call);
    async move {
        let Call {
            invocation_id,
            target,
            cancellation,
            method,
            remote,
        } = call;
        let Some(id) = invocation_id else {
            return;
        };
        let index = method.index;
        let started = Instant::now();
        let detailed = shared.env.config.detailed_errors;
        let result = method
            .run(&shared, &cancellation, remote.trace_parent())
            .await;
        let mut outcome = Outcome::Ok;
        let end = match result {
            None => {
                outcome = Outcome::Cancelled;
                Ok(())
            }
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
        let elapsed = started.elapsed();
        let elapsed_us = elapsed.as_micros() as u64;
        if end.is_err() {
            outcome = Outcome::Error;
        } else if cancellation.is_cancelled() {
            outcome = Outcome::Cancelled;
        }
        shared.env.metrics.invocation(index, outcome, elapsed);
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
pub(super) async fn stream_items(
    shared: &Shared,
    id: &str,
    mut items: BoxStream<Result<hub_core::hub::BoxValue, HubError>>,
    cancellation: &InvocationCancellation,
) -> Result<(), String> {
    let detailed = shared.env.config.detailed_errors;
    loop {
        // Cancellation first: an item that fails because it saw the cancellation must not turn
        // the cancelled stream's end into an error.
        let item = tokio::select! {
            biased;
            () = cancellation.token().cancelled() => return Ok(()),
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
