//! The token sweeper: once a second, negotiated connections nothing attached to are disposed
//! of, and long-polling connections no poll reached for the disconnect timeout.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Attachment, Endpoint, TokenState};
use crate::memory::shrink_map;

impl Endpoint {
    /// Once a second: disposes negotiated connections nothing attached to, and long-polling
    /// connections that no poll reached for the disconnect timeout.
    pub(super) fn start_sweeper(self: &Arc<Self>) {
        if self.sweeper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let endpoint: Weak<Endpoint> = Arc::downgrade(self);
        let shutdown = self.shutdown.token().clone();
        let period = self.config.disconnect_timeout.min(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let Some(endpoint) = endpoint.upgrade() else {
                    return;
                };
                let timeout = endpoint.config.disconnect_timeout;
                endpoint.tokens(|tokens| {
                    tokens.retain(|_, state| match state {
                        TokenState::Negotiated { created, .. } => created.elapsed() <= timeout,
                        TokenState::Active(Attachment::LongPolling(polling)) => {
                            let expired = polling
                                .inactive_for()
                                .is_some_and(|inactive| inactive > timeout);
                            if expired {
                                tracing::debug!(
                                    ?timeout,
                                    "disposing a long-polling connection that stopped polling"
                                );
                                polling.expire();
                            }
                            !expired
                        }
                        TokenState::Active(_) => true,
                    });
                    shrink_map(tokens);
                });
                endpoint.prune_bindings();
            }
        });
    }
}
