//! Where a connection lives when servers share a token key (no sticky sessions): a token this
//! server does not run is checked, its connection claimed here or found elsewhere through the
//! lifetime manager, and the owners of connections elsewhere remembered.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use hub_core::token::ConnectionToken;
use tokio::time::Instant;

use super::{Binding, Claim, Endpoint, TokenState, OWNERS_REMEMBERED};
use crate::lifetime::Ownership;
use crate::memory::shrink_map;

/// Where a request of a connection is served.
pub(crate) enum Placement {
    /// Here: the connection is (or becomes) this server's, or does not exist (404 here).
    Here,
    /// On the server with this node id.
    Elsewhere(String),
}

impl Endpoint {
    /// The signed token `token` if this server must ask where its connection lives before
    /// serving a request of it: it names no transport attached here (a token negotiated by
    /// another server, or not attached yet). `None` for a connection running here, and for a
    /// text that is not a token of this deployment (its request gets 404 as it would anyway).
    pub(crate) fn unplaced(&self, token: &str) -> Option<ConnectionToken> {
        let active = self.tokens(|tokens| matches!(tokens.get(token), Some(TokenState::Active(_))));
        if active {
            return None;
        }
        self.token_key.verify(token).ok()
    }

    /// Whether `user_id` is the user `claims` were issued to.
    pub(crate) fn issued_to(&self, claims: &ConnectionToken, user_id: Option<&str>) -> bool {
        claims.user == self.token_key.user_tag(user_id)
    }

    /// Asks the lifetime manager who owns the connection `claims` name, claiming it for this
    /// server when nobody does and its token may still attach a transport. A connection that
    /// becomes this server's is known here from then on (as if negotiated here).
    ///
    /// `may_attach` is false for a request that cannot start a connection (a refresh);
    /// `user_id` is the sender's, whom [`issued_to`](Self::issued_to) found the token issued to.
    pub(crate) async fn place(
        self: &Arc<Self>,
        token: &str,
        claims: &ConnectionToken,
        may_attach: bool,
        user_id: Option<String>,
    ) -> Placement {
        let window = self.config.disconnect_timeout;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let now_ms = unix_ms();
        let claimable = may_attach && claims.attachable_at(now_ms, window_ms);
        let ownership = self
            .manager
            .claim_connection(&claims.connection_id, claimable)
            .await;
        match ownership {
            Ok(Ownership::Here) => {
                if claimable {
                    let age = Duration::from_millis(now_ms.saturating_sub(claims.issued_at_ms));
                    self.adopt(token, claims, age, user_id);
                }
                Placement::Here
            }
            Ok(Ownership::Elsewhere(owner)) => {
                self.forget_negotiated(token);
                let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
                if owners.len() >= OWNERS_REMEMBERED {
                    owners.clear();
                    shrink_map(&mut owners);
                }
                owners.insert(token.to_owned(), Arc::from(owner.as_str()));
                Placement::Elsewhere(owner)
            }
            Ok(Ownership::Gone) => {
                self.forget_negotiated(token);
                Placement::Here
            }
            Ok(_) => Placement::Here,
            Err(error) => {
                tracing::warn!(%error, "cannot tell which server owns a connection; serving its request here");
                Placement::Here
            }
        }
    }

    /// The server that owns the connection `token` names, if it lives elsewhere and a request of
    /// it came here before.
    pub(crate) fn known_owner(&self, token: &str) -> Option<Arc<str>> {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    /// Forgets where the connection `token` names lives (it ended, or its owner is gone).
    pub(crate) fn forget_owner(&self, token: &str) {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// Makes a connection this server claimed known here, negotiated `age` ago, unless it is.
    fn adopt(
        self: &Arc<Self>,
        token: &str,
        claims: &ConnectionToken,
        age: Duration,
        user_id: Option<String>,
    ) {
        self.start_sweeper();
        let created = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        let connection_id: Arc<str> = Arc::from(claims.connection_id.as_str());
        self.tokens(|tokens| {
            tokens
                .entry(token.to_owned())
                .or_insert(TokenState::Negotiated {
                    connection_id: connection_id.clone(),
                    created,
                    stateful: claims.stateful,
                });
        });
        let issued_at_ms = claims.issued_at_ms;
        let mut bindings = self.bindings();
        let binding = bindings.entry(token.to_owned()).or_insert(Binding {
            user_id,
            version: u32::from(claims.negotiate_version),
            identity: None,
            claim: None,
        });
        binding.claim = Some(Claim {
            connection_id,
            issued_at_ms,
        });
    }

    /// Forgets a token negotiated here that no transport attached to here (another server owns
    /// its connection, or it ended).
    fn forget_negotiated(&self, token: &str) {
        self.tokens(|tokens| {
            if matches!(tokens.get(token), Some(TokenState::Negotiated { .. })) {
                tokens.remove(token);
                self.bindings().remove(token);
            }
        });
    }

    /// Gives up this server's claim on a connection that ended, so that no server claims its
    /// token again while it could still attach.
    pub(super) fn release_claim(&self, claim: Claim) {
        let window = u64::try_from(self.config.disconnect_timeout.as_millis()).unwrap_or(u64::MAX);
        let left = (claim.issued_at_ms.saturating_add(window)).saturating_sub(unix_ms());
        let mut released = self
            .manager
            .release_connection(&claim.connection_id, Duration::from_millis(left));
        let done = futures_util::FutureExt::now_or_never(&mut released);
        if done.is_none() {
            tokio::spawn(async move {
                if let Err(error) = released.await {
                    tracing::warn!(%error, "cannot release a connection's claim");
                }
            });
        }
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
