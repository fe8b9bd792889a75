//! Who a connection belongs to: the [`Authenticator`] that turns a request into a [`Principal`]
//! (or rejects it with [`Unauthorized`]), and the [`UserIdProvider`] that picks the user id
//! connections are grouped by.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use hub_core::hub::BoxFuture;
use tokio::sync::Notify;

use crate::request::RequestInfo;

/// Who is connecting, as established by an [`Authenticator`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The user the connection belongs to; connections with the same user id form that user's
    /// target (`clients.user(id)`).
    pub user_id: Option<String>,
    /// Anything else the authenticator learned (roles, names, …).
    pub claims: HashMap<String, String>,
    /// When the credentials this principal was authenticated from expire (a token's `exp`, a
    /// session's end); `None`: never. A connection is closed when it passes
    /// ([`HubConfig::close_on_authentication_expiration`](crate::HubConfig::close_on_authentication_expiration)),
    /// unless an authentication refresh renewed it first
    /// ([`HubConfig::authentication_refresh`](crate::HubConfig::authentication_refresh)).
    pub expires_at: Option<SystemTime>,
}

impl Principal {
    /// An anonymous principal.
    pub fn anonymous() -> Self {
        Principal::default()
    }

    /// A principal for user `user_id`.
    pub fn user(user_id: impl Into<String>) -> Self {
        Principal {
            user_id: Some(user_id.into()),
            claims: HashMap::new(),
            expires_at: None,
        }
    }

    /// This principal, its credentials expiring at `expires_at`.
    pub fn expiring_at(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// How long the credentials have left: `None` when they do not expire, zero when they have.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_at.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// A connection's principal, which an authentication refresh may replace (its expiry with it).
#[derive(Debug)]
pub(crate) struct Identity {
    principal: Mutex<Arc<Principal>>,
    /// Signalled when the principal is replaced, for the task that watches the expiry.
    replaced: Notify,
}

impl Identity {
    pub(crate) fn new(principal: Principal) -> Arc<Identity> {
        Arc::new(Identity {
            principal: Mutex::new(Arc::new(principal)),
            replaced: Notify::new(),
        })
    }

    /// The current principal.
    pub(crate) fn principal(&self) -> Arc<Principal> {
        self.principal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the principal (an accepted refresh); its expiry becomes the connection's.
    pub(crate) fn replace(&self, principal: Principal) {
        *self
            .principal
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(principal);
        self.replaced.notify_waiters();
    }

    /// Resolves at the next [`replace`](Self::replace) after it was first polled (or enabled).
    pub(crate) fn replaced(&self) -> tokio::sync::futures::Notified<'_> {
        self.replaced.notified()
    }
}

/// The request is not authenticated: the server answers 401 with an empty body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

/// Decides who a request comes from, or rejects it.
///
/// It runs on negotiate and on every transport request; the principal of the request that opens
/// the transport becomes the connection's. Any async function or closure
/// `Fn(&RequestInfo) -> impl Future<Output = Result<Principal, Unauthorized>>` is one.
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates `request`.
    fn authenticate(&self, request: &RequestInfo) -> BoxFuture<Result<Principal, Unauthorized>>;
}

impl<F, Fut> Authenticator for F
where
    F: Fn(&RequestInfo) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Principal, Unauthorized>> + Send + 'static,
{
    fn authenticate(&self, request: &RequestInfo) -> BoxFuture<Result<Principal, Unauthorized>> {
        Box::pin(self(request))
    }
}

/// Accepts everyone, anonymously.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAnonymous;

impl Authenticator for AllowAnonymous {
    fn authenticate(&self, _request: &RequestInfo) -> BoxFuture<Result<Principal, Unauthorized>> {
        Box::pin(std::future::ready(Ok(Principal::anonymous())))
    }
}

/// Maps an authenticated principal to the user id connections are grouped by (SignalR's
/// `IUserIdProvider`). The default takes [`Principal::user_id`].
pub trait UserIdProvider: Send + Sync + 'static {
    /// The user id of a connection opened by `principal` with `request`.
    fn user_id(&self, principal: &Principal, request: &RequestInfo) -> Option<String>;
}

/// The default [`UserIdProvider`]: the principal's own user id.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrincipalUserId;

impl UserIdProvider for PrincipalUserId {
    fn user_id(&self, principal: &Principal, _request: &RequestInfo) -> Option<String> {
        principal.user_id.clone()
    }
}

pub(crate) type SharedAuthenticator = Arc<dyn Authenticator>;
pub(crate) type SharedUserIdProvider = Arc<dyn UserIdProvider>;
