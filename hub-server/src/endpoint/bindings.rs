//! Who each negotiated token was issued to: the user every later request of the connection must
//! come from, the identity an authentication refresh renews, and this server's claim on the
//! connection in the lifetime manager's directory.

use std::sync::{Arc, PoisonError};

use hub_core::refresh::RefreshRefusal;

use crate::auth::Identity;
use crate::endpoint::Endpoint;
use crate::memory::shrink_map;

/// Who a negotiated token was issued to.
pub(super) struct Binding {
    /// The user id negotiate's principal had (for a connection claimed from another server, the
    /// user its token was issued to, checked then): every later request of the connection must
    /// come from the same user.
    pub(super) user_id: Option<String>,
    /// The negotiate version answered.
    pub(super) version: u32,
    /// The connection's identity, once a transport attached.
    pub(super) identity: Option<Arc<Identity>>,
    /// This server's claim on the connection in the lifetime manager's directory, once made
    /// (given up when the connection ends).
    pub(super) claim: Option<Claim>,
}

/// This server's claim on a connection, to give up when it ends.
pub(super) struct Claim {
    pub(super) connection_id: Arc<str>,
    /// When its token was issued: until the token could no longer attach, no server may claim
    /// the connection again.
    pub(super) issued_at_ms: u64,
}

impl Endpoint {
    pub(super) fn bindings(&self) -> std::sync::MutexGuard<'_, super::TokenMap<Binding>> {
        self.bindings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a request for `token` comes from the user the token was negotiated for (or the
    /// token was never negotiated: unknown tokens get their 404 later).
    pub(crate) fn same_user(&self, token: &str, user_id: Option<&str>) -> bool {
        match self.bindings().get(token) {
            Some(binding) => binding.user_id.as_deref() == user_id,
            None => true,
        }
    }

    /// Records the identity of the connection a transport attached to `token` started, for the
    /// authentication refreshes that name the token.
    pub(crate) fn bind_identity(&self, token: &str, identity: &Arc<Identity>) {
        if let Some(binding) = self.bindings().get_mut(token) {
            binding.identity = Some(identity.clone());
        }
    }

    /// The identity of the running connection `token` names, for an authentication refresh.
    pub(crate) fn identity(&self, token: &str) -> Result<Arc<Identity>, RefreshRefusal> {
        let bindings = self.bindings();
        let binding = bindings
            .get(token)
            .ok_or(RefreshRefusal::ConnectionNotFound)?;
        if binding.version == 0 {
            return Err(RefreshRefusal::UnsupportedNegotiateVersion);
        }
        binding
            .identity
            .clone()
            .ok_or(RefreshRefusal::ConnectionNotFound)
    }

    /// Forgets the bindings of tokens that are gone (the sweeper's once-a-second pass).
    pub(super) fn prune_bindings(&self) {
        let gone: Vec<String> = self.tokens(|tokens| {
            self.bindings()
                .keys()
                .filter(|token| !tokens.contains_key(*token))
                .cloned()
                .collect()
        });
        let mut claims = Vec::new();
        {
            let mut bindings = self.bindings();
            for token in gone {
                if let Some(claim) = bindings.remove(&token).and_then(|binding| binding.claim) {
                    claims.push(claim);
                }
            }
            shrink_map(&mut bindings);
        }
        for claim in claims {
            self.release_claim(claim);
        }
    }

    /// Forgets the binding of a token whose connection ended: its claim, to give up.
    pub(super) fn unbind(&self, token: &str) -> Option<Claim> {
        self.bindings()
            .remove(token)
            .and_then(|binding| binding.claim)
    }
}
