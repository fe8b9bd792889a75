//! Server-to-client invocations waiting for the client's Completion (client results), across the
//! connections of one manager.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hub_core::hub::ClientResultError;
use hub_core::protocol::{CompletionOutcome, RawValue};
use tokio::sync::oneshot;

/// The answer a waiting invocation gets.
pub(super) type Answer = Result<RawValue, ClientResultError>;

struct Pending {
    /// The connection asked: only its Completion is accepted.
    connection_id: Arc<str>,
    answer: oneshot::Sender<Answer>,
}

/// The pending client results of one manager. Invocation ids are `<node id>.<n>`: unique across
/// the servers of a deployment, so a Completion can be routed back to the server that waits.
pub(super) struct ClientResults {
    prefix: String,
    next: AtomicU64,
    pending: Mutex<HashMap<String, Pending>>,
}

impl ClientResults {
    pub(super) fn new(node_id: &str) -> Self {
        ClientResults {
            prefix: format!("{node_id}."),
            next: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers an invocation of `connection_id`; returns its id and the receiver of its answer.
    pub(super) fn start(&self, connection_id: Arc<str>) -> (String, oneshot::Receiver<Answer>) {
        let id = format!(
            "{}{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let (answer, receiver) = oneshot::channel();
        self.pending().insert(
            id.clone(),
            Pending {
                connection_id,
                answer,
            },
        );
        (id, receiver)
    }

    /// Forgets an invocation (timed out, or could not be sent).
    pub(super) fn cancel(&self, id: &str) {
        self.pending().remove(id);
    }

    /// Delivers `connection_id`'s Completion of invocation `id`; false when nobody waits for it
    /// or it was sent to another connection (which then still waits).
    pub(super) fn complete(
        &self,
        connection_id: &str,
        id: &str,
        outcome: CompletionOutcome,
    ) -> bool {
        let pending = {
            let mut pending = self.pending();
            match pending.get(id) {
                Some(waiting) if *waiting.connection_id == *connection_id => pending.remove(id),
                Some(_) => {
                    tracing::warn!(%connection_id, invocation_id = %id, "a Completion for another connection's invocation was refused");
                    None
                }
                None => None,
            }
        };
        let Some(pending) = pending else {
            return false;
        };
        let answer = match outcome {
            CompletionOutcome::Result(value) => Ok(value),
            CompletionOutcome::Error(error) => Err(ClientResultError::Client(error.to_string())),
            CompletionOutcome::NoResult => Err(ClientResultError::NoResult),
        };
        let _ = pending.answer.send(answer);
        true
    }

    /// Fails every invocation still waiting on `connection_id` (it ended).
    pub(super) fn fail_connection(&self, connection_id: &str) {
        let failed: Vec<Pending> = {
            let mut pending = self.pending();
            let ids: Vec<String> = pending
                .iter()
                .filter(|(_, waiting)| *waiting.connection_id == *connection_id)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| pending.remove(id)).collect()
        };
        for waiting in failed {
            let _ = waiting
                .answer
                .send(Err(ClientResultError::ConnectionClosed));
        }
    }
}
