//! The invocations running on one connection, by id: for duplicate ids and CancelInvocation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytestring::ByteString;

use crate::clients::InvocationCancellation;

/// Ids of the invocations running on a connection, with their cancellation.
#[derive(Default)]
pub(super) struct ActiveInvocations {
    tokens: Mutex<HashMap<ByteString, Arc<InvocationCancellation>>>,
}

impl ActiveInvocations {
    /// Registers `id`; false if it is already in use.
    pub(super) fn insert(&self, id: &ByteString, token: Arc<InvocationCancellation>) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.contains_key(id) {
            return false;
        }
        tokens.insert(id.clone(), token);
        true
    }

    pub(super) fn remove(&self, id: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    pub(super) fn cancel(&self, id: &str) {
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
