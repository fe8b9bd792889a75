//! What a server maps at a path: a hub with its settings and lifetime manager
//! ([`HubEndpoint`]), or a connection handler without the hub protocol ([`ConnectionEndpoint`]).

use std::sync::Arc;

use hub_core::hub::HubDispatch;

use crate::auth::{Authenticator, SharedAuthenticator};
use crate::clients::Context;
use crate::config::HubConfig;
use crate::handler::ConnectionHandler;
use crate::lifetime::LifetimeManager;

/// A hub and how it is served: its settings and its lifetime manager.
pub struct HubEndpoint {
    pub(crate) hub: Arc<dyn HubDispatch<Context>>,
    pub(crate) config: Option<HubConfig>,
    pub(crate) manager: Option<Arc<dyn LifetimeManager>>,
    pub(crate) authenticator: Option<SharedAuthenticator>,
    /// A connection endpoint's handler (no hub protocol; `hub` is then empty).
    pub(crate) raw: Option<Arc<dyn ConnectionHandler>>,
}

impl HubEndpoint {
    /// Serves `hub` with the server's default settings and a
    /// [`LocalLifetimeManager`](crate::LocalLifetimeManager).
    pub fn new(hub: impl HubDispatch<Context>) -> Self {
        HubEndpoint {
            hub: Arc::new(hub),
            config: None,
            manager: None,
            authenticator: None,
            raw: None,
        }
    }

    /// A connection endpoint: `handler` runs each connection, without the hub protocol.
    pub(crate) fn raw(handler: Arc<dyn ConnectionHandler>) -> Self {
        HubEndpoint {
            raw: Some(handler),
            ..HubEndpoint::new(crate::HubMethods::<Context>::new())
        }
    }

    /// Authenticates this hub's negotiate and transport requests instead of the server's
    /// authenticator ([`HubServerBuilder::authenticator`](crate::HubServerBuilder::authenticator)).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Uses these settings for this hub.
    pub fn config(mut self, config: HubConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Uses this lifetime manager (e.g. a backplane) for this hub.
    pub fn lifetime_manager(mut self, manager: impl LifetimeManager) -> Self {
        self.manager = Some(Arc::new(manager));
        self
    }
}

/// A connection handler and how it is served: settings and authenticator, as for a hub
/// ([`HubEndpoint`]); its connections are not in any lifetime manager (there are no groups or
/// users without the hub protocol), and stateful reconnect is never granted.
pub struct ConnectionEndpoint {
    pub(crate) inner: HubEndpoint,
}

impl ConnectionEndpoint {
    /// Serves `handler` with the server's default settings.
    pub fn new(handler: impl ConnectionHandler) -> Self {
        ConnectionEndpoint {
            inner: HubEndpoint::raw(Arc::new(handler)),
        }
    }

    /// Uses these settings (transports, CORS and origin checks, timeouts, queue capacity…).
    pub fn config(mut self, config: HubConfig) -> Self {
        self.inner = self.inner.config(config);
        self
    }

    /// Authenticates this endpoint's negotiate and transport requests instead of the server's
    /// authenticator.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.inner = self.inner.authenticator(authenticator);
        self
    }
}
