//! A unary invocation's run: the hub method, then its Completion (a result, or SignalR's error
//! text).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use hub_core::hub::{CallError, MethodOutput};
use hub_core::protocol::{Headers, MessageRef, OutcomeRef};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::*;

/// Runs a unary method and queues its Completion before giving its slot (if it holds one) back.
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
        let elapsed = started.elapsed();
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
