//! The invocations running on one connection, by id: for duplicate ids and CancelInvocation.
//!
//! A unary invocation that finishes in its first poll (where it is dispatched, before the next
//! message is read) is never entered: nothing could cancel it or reuse its id meanwhile. Most
//! calls then touch only the count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytestring::ByteString;

use crate::clients::InvocationCancellation;

/// Ids of the invocations running on a connection, with their cancellation.
#[derive(Default)]
pub(super) struct ActiveInvocations {
    tokens: Mutex<HashMap<ByteString, Arc<InvocationCancellation>>>,
    /// How many ids are entered (changed under the lock): none, most of the time.
    count: AtomicUsize,
}

impl ActiveInvocations {
    /// Registers `id`; false if it is already in use.
    pub(super) fn insert(&self, id: &ByteString, token: Arc<InvocationCancellation>) -> bool {
        let mut tokens = self.lock();
        if tokens.contains_key(id) {
            return false;
        }
        tokens.insert(id.clone(), token);
        self.count.store(tokens.len(), Ordering::Release);
        true
    }

    /// Whether `id` is in use.
    pub(super) fn contains(&self, id: &str) -> bool {
        self.count.load(Ordering::Acquire) > 0 && self.lock().contains_key(id)
    }

    pub(super) fn remove(&self, id: &str) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut tokens = self.lock();
        tokens.remove(id);
        self.count.store(tokens.len(), Ordering::Release);
    }

    pub(super) fn cancel(&self, id: &str) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(token) = self.lock().get(id) {
            token.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ByteString, Arc<InvocationCancellation>>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
