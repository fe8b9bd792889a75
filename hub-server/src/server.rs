//! Building and running a server: map hubs at paths, bind, serve, shut down gracefully.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hub_core::hub::{Authorization, HubDispatch, Requirement};
use hub_core::token::{TokenKey, TokenKeyError};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_util::sync::CancellationToken;

use crate::auth::{
    AllowAnonymous, Authenticator, PrincipalUserId, SharedAuthenticator, SharedUserIdProvider,
    UserIdProvider,
};
use crate::authorization::{Policies, Policy};
use crate::clients::{Context, HubContext};
use crate::config::{ConfigError, HubConfig};
use crate::endpoint::{Access, Endpoint};
use crate::handler::ConnectionHandler;
use crate::http::{forwarded_requests, normalize_path, HubService, OperatorRoute};
use crate::lifetime::{HubBinding, LocalLifetimeManager};
use crate::listener::{self, shutdown_signal};
use crate::mapping::{ConnectionEndpoint, HubEndpoint};

/// Builds a [`HubServer`] or a mountable [`HubService`].
pub struct HubServerBuilder {
    endpoints: Vec<(String, HubEndpoint)>,
    config: HubConfig,
    authenticator: SharedAuthenticator,
    user_ids: SharedUserIdProvider,
    http_shutdown_timeout: Duration,
    node_id: Option<String>,
    shutdown_on_signal: bool,
    policies: HashMap<String, Arc<dyn Policy>>,
    connection_token_key: Option<Vec<u8>>,
    /// The stats view's path and who may read it.
    stats: Option<(String, Authorization)>,
    /// The Prometheus scrape's path, recorder and who may read it.
    #[cfg(feature = "prometheus")]
    prometheus: Option<(
        String,
        crate::observability::PrometheusMetrics,
        Authorization,
    )>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
}

impl Default for HubServerBuilder {
    fn default() -> Self {
        HubServerBuilder {
            endpoints: Vec::new(),
            config: HubConfig::default(),
            authenticator: Arc::new(AllowAnonymous),
            user_ids: Arc::new(PrincipalUserId),
            http_shutdown_timeout: Duration::from_secs(10),
            node_id: None,
            shutdown_on_signal: true,
            policies: HashMap::new(),
            connection_token_key: None,
            stats: None,
            #[cfg(feature = "prometheus")]
            prometheus: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl HubServerBuilder {
    /// Maps `hub` at `path` (e.g. `/chat`; matched case-insensitively), with the default settings.
    pub fn hub(self, path: &str, hub: impl HubDispatch<Context>) -> Self {
        self.endpoint(path, HubEndpoint::new(hub))
    }

    /// Maps a configured hub at `path`.
    pub fn endpoint(mut self, path: &str, endpoint: HubEndpoint) -> Self {
        self.endpoints.push((normalize_path(path), endpoint));
        self
    }

    /// Maps a connection handler at `path` (ASP.NET Core's `MapConnectionHandler`): negotiate
    /// and the transports as for a hub, but the handler reads and writes the client's bytes
    /// itself (see [`ConnectionHandler`]).
    pub fn connection_handler(self, path: &str, handler: impl ConnectionHandler) -> Self {
        self.connection_endpoint(path, ConnectionEndpoint::new(handler))
    }

    /// Maps a configured connection handler at `path`.
    pub fn connection_endpoint(mut self, path: &str, endpoint: ConnectionEndpoint) -> Self {
        self.endpoints.push((normalize_path(path), endpoint.inner));
        self
    }

    /// The settings of hubs mapped without their own.
    pub fn config(mut self, config: HubConfig) -> Self {
        self.config = config;
        self
    }

    /// Authenticates negotiate and transport requests (default: everyone, anonymously). A
    /// rejection is answered with 401 and an empty body.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Arc::new(authenticator);
        self
    }

    /// Defines the authorization policy `name`, which `#[authorize(policy = "name")]` (or
    /// [`Requirement::Policy`](crate::Requirement::Policy)) requires: any async function or
    /// closure of the principal and the request that says yes or no. A hub that requires a
    /// policy no server defines fails [`into_service`](Self::into_service).
    pub fn policy(mut self, name: impl Into<String>, policy: impl Policy) -> Self {
        self.policies.insert(name.into(), Arc::new(policy));
        self
    }

    /// Decides the user id of each connection (default: the principal's user id).
    pub fn user_id_provider(mut self, provider: impl UserIdProvider) -> Self {
        self.user_ids = Arc::new(provider);
        self
    }

    /// After the hubs have shut down, how long [`HubServer::serve`] waits for other HTTP
    /// requests still in flight before it returns anyway (10 s).
    pub fn http_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.http_shutdown_timeout = timeout;
        self
    }

    /// Whether [`HubServer::serve`] shuts down gracefully on SIGTERM or SIGINT (Ctrl-C) — what
    /// Docker, Kubernetes and systemd send — (on): clients get Close with `allowReconnect: true`,
    /// running invocations get the hub's shutdown timeout, and `serve` returns `Ok`, so the
    /// process exits with 0. Turn it off to handle signals yourself (see [`shutdown_signal`]).
    pub fn shutdown_on_signal(mut self, enabled: bool) -> Self {
        self.shutdown_on_signal = enabled;
        self
    }

    /// This server's id among the servers of a deployment, given to every hub's lifetime manager
    /// ([`HubBinding::node_id`]); it prefixes the ids of client-result invocations. Default: 22
    /// random URL-safe characters per server instance.
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.node_id = Some(node_id.into());
        self
    }

    /// The secret that signs connection tokens (at least 32 bytes; default: random per server
    /// instance). Give every server of a deployment the same one, with a lifetime manager that
    /// shares connections between them (`hub-redis`), and any request of a connection may reach
    /// any server: no sticky sessions. Keep it secret: whoever has it can forge tokens (not
    /// identities: every request still authenticates).
    pub fn connection_token_key(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.connection_token_key = Some(secret.as_ref().to_vec());
        self
    }

    /// Serves the stats view at `path` (`GET`, JSON) to whom `authorization` admits
    /// ([`Authorization::anyone`] for everyone; requirements are checked with the server's
    /// authenticator and policies: 401/403 otherwise). Per hub of this server: connections by
    /// transport and protocol, users, groups with their member counts, running totals of
    /// invocations, messages and bytes, and their rates per second since the previous read (at
    /// least 1 s before). With a backplane, each server shows its own connections.
    pub fn stats_endpoint(mut self, path: &str, authorization: Authorization) -> Self {
        self.stats = Some((normalize_path(path), authorization));
        self
    }

    /// Serves `metrics` — every metric of the process, in the Prometheus text format — at `path`
    /// (`GET`) to whom `authorization` admits (feature `prometheus`; see
    /// [`PrometheusMetrics`](crate::observability::PrometheusMetrics)).
    #[cfg(feature = "prometheus")]
    pub fn metrics_endpoint(
        mut self,
        path: &str,
        metrics: crate::observability::PrometheusMetrics,
        authorization: Authorization,
    ) -> Self {
        self.prometheus = Some((normalize_path(path), metrics, authorization));
        self
    }

    /// Serves `https` and `wss` on the listener [`bind`](Self::bind) makes (feature `tls`):
    /// every connection starts with a TLS handshake (10 s at most) with this certificate.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// The service that serves the hubs, to mount in your own hyper or axum application. Fails
    /// when a hub's settings would break it ([`HubConfig::validate`]).
    pub fn into_service(self) -> Result<HubService, ServerError> {
        for (path, endpoint) in &self.endpoints {
            endpoint
                .config
                .as_ref()
                .unwrap_or(&self.config)
                .validate()
                .map_err(|error| ServerError::Config {
                    path: path.clone(),
                    error,
                })?;
        }
        let policies = Policies::new(self.policies);
        for (path, endpoint) in &self.endpoints {
            check_policies(path, endpoint.hub.as_ref(), &policies)?;
        }
        let token_key = match &self.connection_token_key {
            Some(secret) => TokenKey::new(secret).map_err(ServerError::TokenKey)?,
            None => random_token_key()?,
        };
        let node_id: Arc<str> = self.node_id.clone().unwrap_or_else(random_node_id).into();
        let mut operators = Vec::new();
        if let Some((path, authorization)) = self.stats.clone() {
            operators.push(OperatorRoute::stats(
                path,
                authorization,
                self.authenticator.clone(),
                policies.clone(),
            ));
        }
        #[cfg(feature = "prometheus")]
        if let Some((path, metrics, authorization)) = self.prometheus.clone() {
            operators.push(OperatorRoute::prometheus(
                path,
                metrics,
                authorization,
                self.authenticator.clone(),
                policies.clone(),
            ));
        }
        for route in &operators {
            check_requirements(&route.path, None, &route.authorization, &policies)?;
        }
        let stats = self.stats.is_some();
        let endpoints = self
            .endpoints
            .into_iter()
            .map(|(path, endpoint)| {
                let manager = endpoint
                    .manager
                    .unwrap_or_else(|| Arc::new(LocalLifetimeManager::new()));
                manager.bind(&HubBinding {
                    hub: path.clone(),
                    node_id: node_id.clone(),
                });
                let raw = endpoint.raw;
                let endpoint = Arc::new(Endpoint::new(
                    path,
                    endpoint.hub,
                    endpoint.config.unwrap_or_else(|| self.config.clone()),
                    manager.clone(),
                    Access {
                        authenticator: endpoint
                            .authenticator
                            .unwrap_or_else(|| self.authenticator.clone()),
                        user_ids: self.user_ids.clone(),
                        policies: policies.clone(),
                        token_key: token_key.clone(),
                        stats,
                    },
                    raw,
                ));
                manager.serve_forwarded(forwarded_requests(&endpoint));
                endpoint
            })
            .collect();
        Ok(HubService::new(endpoints, operators))
    }

    /// Checks the hubs' settings, then binds a listener (port 0 picks a free port; see
    /// [`HubServer::local_addr`]).
    pub async fn bind(self, address: impl ToSocketAddrs) -> Result<HubServer, ServerError> {
        let http_shutdown_timeout = self.http_shutdown_timeout;
        let shutdown_on_signal = self.shutdown_on_signal;
        #[cfg(feature = "tls")]
        let tls = self.tls.clone();
        let service = self.into_service()?;
        let listener = listener::listen(address).await.map_err(ServerError::Bind)?;
        let local_addr = listener.local_addr().map_err(ServerError::Bind)?;
        Ok(HubServer {
            listener,
            local_addr,
            service,
            shutdown: CancellationToken::new(),
            http_shutdown_timeout,
            shutdown_on_signal,
            #[cfg(feature = "tls")]
            tls,
        })
    }
}

/// Why a server could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A hub's settings would break it.
    #[error("the hub at `{path}` cannot be served: {error}")]
    Config {
        /// The hub's path.
        path: String,
        /// The setting and what is wrong with it.
        #[source]
        error: ConfigError,
    },
    /// A hub requires an authorization policy that no [`HubServerBuilder::policy`] defines.
    #[error("the hub at `{path}` requires the authorization policy `{policy}`{}, which is not defined: add `HubServerBuilder::policy(\"{policy}\", ...)`", .method.as_ref().map(|m| format!(" (method `{m}`)")).unwrap_or_default())]
    UnknownPolicy {
        /// The hub's path.
        path: String,
        /// The method that requires it (`None`: the hub, to connect).
        method: Option<String>,
        /// The policy's name.
        policy: String,
    },
    /// The connection token key is too short ([`HubServerBuilder::connection_token_key`]).
    #[error("{0}")]
    TokenKey(#[source] TokenKeyError),
    /// The operating system gave no random bytes for a connection token key.
    #[error("cannot make a connection token key: {0}")]
    Entropy(String),
    /// The listener could not be bound (address in use, no permission, …).
    #[error("cannot listen: {0}")]
    Bind(#[source] io::Error),
}

/// A bound server. Call [`serve`](Self::serve) to run it; stop it with a [`ShutdownHandle`].
pub struct HubServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: HubService,
    shutdown: CancellationToken,
    http_shutdown_timeout: Duration,
    shutdown_on_signal: bool,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
}

/// Stops a running [`HubServer`] gracefully. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    token: CancellationToken,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown: the server stops accepting, running invocations get their
    /// hub's shutdown timeout, every client gets Close with `allowReconnect: true`.
    pub fn shutdown(&self) {
        self.token.cancel();
    }
}

impl HubServer {
    /// Starts building a server.
    pub fn builder() -> HubServerBuilder {
        HubServerBuilder::default()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The context of the hub mapped at `path`, to send to its clients from anywhere.
    pub fn hub_context(&self, path: &str) -> Option<HubContext> {
        self.service.hub_context(path)
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            token: self.shutdown.clone(),
        }
    }

    /// The service, e.g. to route some paths of another listener to the same hubs.
    pub fn service(&self) -> HubService {
        self.service.clone()
    }

    /// Serves until [`ShutdownHandle::shutdown`] is called or, unless turned off
    /// ([`HubServerBuilder::shutdown_on_signal`]), the process gets SIGTERM or SIGINT; then
    /// shuts down gracefully.
    pub async fn serve(self) -> Result<(), ServerError> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        if self.shutdown_on_signal {
            let token = self.shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = shutdown_signal() => {
                        tracing::info!("shutting down on a signal");
                        token.cancel();
                    }
                    () = token.cancelled() => {}
                }
            });
        }
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = self.shutdown.cancelled() => break,
            };
            let _ = stream.set_nodelay(true);
            #[cfg(feature = "tls")]
            let tls = self.tls.as_ref();
            #[cfg(not(feature = "tls"))]
            let tls = None;
            listener::serve_connection(stream, peer, self.service.clone(), &graceful, tls);
        }
        drop(self.listener);
        self.service.shutdown().await;
        if tokio::time::timeout(self.http_shutdown_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?self.http_shutdown_timeout,
                "HTTP requests still running at the end of the shutdown were abandoned"
            );
        }
        Ok(())
    }
}

/// A key of 32 random bytes, for a server whose tokens no other server checks.
fn random_token_key() -> Result<TokenKey, ServerError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| ServerError::Entropy(error.to_string()))?;
    TokenKey::new(&secret).map_err(ServerError::TokenKey)
}

/// A random node id (22 URL-safe characters), or the time when the system has no random source.
fn random_node_id() -> String {
    crate::endpoint::random_id().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        format!("{nanos:x}")
    })
}

/// Every policy a hub requires must be defined.
fn check_policies(
    path: &str,
    hub: &dyn HubDispatch<Context>,
    policies: &Policies,
) -> Result<(), ServerError> {
    let hub_level = std::iter::once((None, hub.authorization()));
    let methods = hub
        .methods()
        .iter()
        .map(|method| (Some(method.name.clone()), method.authorization.clone()));
    for (method, authorization) in hub_level.chain(methods) {
        check_requirements(path, method, &authorization, policies)?;
    }
    Ok(())
}

/// Every policy `authorization` requires must be defined.
fn check_requirements(
    path: &str,
    method: Option<String>,
    authorization: &Authorization,
    policies: &Policies,
) -> Result<(), ServerError> {
    for requirement in &authorization.requirements {
        if let Requirement::Policy(policy) = requirement {
            if !policies.contains(policy) {
                return Err(ServerError::UnknownPolicy {
                    path: path.to_owned(),
                    method,
                    policy: policy.clone(),
                });
            }
        }
    }
    Ok(())
}
