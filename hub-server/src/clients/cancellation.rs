//! An invocation's cancellation, cheap for the calls that never look at it: two flags, and a
//! [`CancellationToken`] made only when someone asks for one (a method that takes
//! [`Cancellation`](super::Cancellation) or reads [`Context::cancellation`](super::Context), a call
//! that has to wait). Most calls finish in their first poll and never make one: a token costs an
//! allocation and a lock for each clone, drop and look.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// A stop that can be waited for (a token) and looked at for the price of an atomic load (a
/// flag set just before the token fires): a connection's invocations, a hub's shutdown.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    token: CancellationToken,
    stopped: AtomicBool,
}

impl StopSignal {
    /// Stops: the flag, then the token.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.token.cancel();
    }

    /// Whether [`stop`](Self::stop) was called (an atomic load).
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Fires on [`stop`](Self::stop).
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// One invocation's cancellation: CancelInvocation, or the stop of the connection's invocations.
#[derive(Debug)]
pub(crate) struct InvocationCancellation {
    cancelled: AtomicBool,
    token: OnceLock<CancellationToken>,
    /// The connection's; `None` for a cancellation made from a token.
    stop: Option<Arc<StopSignal>>,
}

impl InvocationCancellation {
    /// The cancellation of a new invocation of the connection that `stop` stops.
    pub(crate) fn new(stop: Arc<StopSignal>) -> Self {
        InvocationCancellation {
            cancelled: AtomicBool::new(false),
            token: OnceLock::new(),
            stop: Some(stop),
        }
    }

    /// A cancellation that is `token` (hooks, test contexts).
    pub(crate) fn from_token(token: CancellationToken) -> Self {
        InvocationCancellation {
            cancelled: AtomicBool::new(false),
            token: OnceLock::from(token),
            stop: None,
        }
    }

    /// Cancels the invocation (CancelInvocation).
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }

    /// Whether the invocation is cancelled: atomic loads, and the token's lock only if one was
    /// made (hub code may cancel it).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
            || self.stop.as_ref().is_some_and(|stop| stop.is_stopped())
            || self
                .token
                .get()
                .is_some_and(CancellationToken::is_cancelled)
    }

    /// The invocation's token, made on first use: a child of the connection's stop, cancelled
    /// already if the invocation was.
    pub(crate) fn token(&self) -> &CancellationToken {
        let token = self.token.get_or_init(|| match &self.stop {
            Some(stop) => stop.token().child_token(),
            None => CancellationToken::new(),
        });
        // After the token is in place (a `cancel` that did not see it set the flag before):
        // either that `cancel` cancels the token, or this sees its flag.
        if self.cancelled.load(Ordering::SeqCst) {
            token.cancel();
        }
        token
    }
}
