//! Panics and errors as SignalR texts: a panicking method is an internal error; error
//! Completions.

use bytes::Bytes;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use hub_core::hub::{CallError, HubError, MethodOutput, TypedError, TYPED_ERROR_HEADER};
use hub_core::protocol::{Headers, MessageRef, OutcomeRef};

use crate::connection::Connection;

/// Runs a method call, turning a panic into an internal error (the caller gets the generic text).
pub(super) async fn guarded(
    call: hub_core::hub::BoxFuture<Result<MethodOutput, CallError>>,
) -> Result<MethodOutput, CallError> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(CallError::Method(panicked(panic))),
    }
}

/// A panic's payload as an internal hub error.
pub(super) fn panicked(panic: Box<dyn std::any::Any + Send>) -> HubError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a hub method panicked".to_owned());
    tracing::error!(panic = %message, "a hub method panicked");
    HubError::internal(&MethodPanicked(message))
}

/// The error a panicking hub method becomes.
pub(super) struct MethodPanicked(String);

impl std::fmt::Display for MethodPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the hub method panicked: {}", self.0)
    }
}

pub(super) fn error_bytes(
    connection: &Connection,
    invocation_id: &str,
    text: &str,
) -> Option<Bytes> {
    typed_error_bytes(connection, invocation_id, text, None)
}

/// An error Completion; a [`ClientError`](hub_core::hub::ClientError)'s value rides in its
/// [`TYPED_ERROR_HEADER`] as `{"type": …, "error": …}` (official clients ignore headers).
pub(super) fn typed_error_bytes(
    connection: &Connection,
    invocation_id: &str,
    text: &str,
    typed: Option<&TypedError>,
) -> Option<Bytes> {
    let headers = match typed {
        Some(typed) => {
            let name = serde_json::to_string(&typed.type_name).unwrap_or_else(|_| "\"\"".into());
            let value = format!(r#"{{"type":{name},"error":{}}}"#, typed.json);
            Headers::from_iter([(TYPED_ERROR_HEADER, value)])
        }
        None => Headers::new(),
    };
    connection.encode(&MessageRef::Completion {
        headers: &headers,
        invocation_id,
        outcome: OutcomeRef::Error(text),
    })
}

pub(super) async fn send_error(connection: &Arc<Connection>, invocation_id: &str, text: &str) {
    if let Some(bytes) = error_bytes(connection, invocation_id, text) {
        let _ = connection.send(bytes).await;
    }
}

/// What a caller who does not meet a method's authorization gets: ASP.NET Core's text, word for
/// word.
pub(super) fn unauthorized_text(target: &str) -> String {
    format!("Failed to invoke '{target}' because user is unauthorized")
}
