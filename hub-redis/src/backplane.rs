//! The connections to Redis one process shares among its hubs, and where incoming pub/sub
//! messages go.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use hub_server::LifetimeError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};

use crate::config::RedisConfig;
use crate::node::HubNode;
use crate::RedisLifetimeManager;

/// Why the backplane could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackplaneError {
    /// The URL is not a Redis URL.
    #[error("'{url}' is not a Redis URL: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        source: redis::RedisError,
    },
    /// Redis could not be reached (is it running, and is the URL's host and port right?).
    #[error("could not connect to Redis at '{url}': {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
}

/// A Redis backplane: one hub on many servers. Connect once per process, then give each hub
/// its own [`manager`](Self::manager).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_redis::{RedisBackplane, RedisConfig};
/// use hub_server::{HubEndpoint, HubMethods, HubServer};
///
/// let backplane = RedisBackplane::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let server = HubServer::builder()
///     .endpoint(
///         "/chat",
///         HubEndpoint::new(HubMethods::new()).lifetime_manager(backplane.manager()),
///     )
///     .bind(("0.0.0.0", 8080))
///     .await?;
/// server.serve().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackplane {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("prefix", &self.shared.config.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBackplane {
    /// Connects to Redis (RESP3, reconnecting by itself and resubscribing after an outage).
    /// Must be called inside a Tokio runtime, which the backplane's tasks then run on.
    pub async fn connect(config: RedisConfig) -> Result<Self, BackplaneError> {
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|source| BackplaneError::Url {
                url: config.url.clone(),
                source,
            })?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(|source| {
            BackplaneError::Url {
                url: config.url.clone(),
                source,
            }
        })?;
        let routes: Arc<Routes> = Arc::default();
        let health = Arc::new(Health::default());
        let manager_config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.request_timeout))
                .set_response_timeout(Some(config.request_timeout))
                .set_number_of_retries(2)
                .set_max_delay(config.heartbeat)
        };
        let connect_error = |source| BackplaneError::Connect {
            url: config.url.clone(),
            source,
        };
        let commands = ConnectionManager::new_with_config(client.clone(), manager_config())
            .await
            .map_err(connect_error)?;
        let push_routes = routes.clone();
        let push_health = health.clone();
        let subscriber = ConnectionManager::new_with_config(
            client,
            manager_config()
                .set_automatic_resubscription()
                .set_push_sender(move |push: PushInfo| {
                    route(&push_routes, &push_health, push);
                    Ok::<(), std::convert::Infallible>(())
                }),
        )
        .await
        .map_err(connect_error)?;
        Ok(RedisBackplane {
            shared: Arc::new(Shared {
                config,
                commands,
                subscriber,
                routes,
                health,
                runtime: tokio::runtime::Handle::current(),
            }),
        })
    }

    /// A lifetime manager for one hub on this backplane (give each hub its own).
    pub fn manager(&self) -> RedisLifetimeManager {
        RedisLifetimeManager::new(self.shared.clone())
    }

    /// How many sends to other servers have failed (Redis down or not answering) since the
    /// backplane connected; each outage's count is also logged when Redis is back.
    pub fn failed_sends(&self) -> u64 {
        self.shared.health.failed_sends()
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_available(&self) -> bool {
        self.shared.health.is_up()
    }
}

/// The hubs of this process, to route incoming messages to.
type Routes = RwLock<Vec<Weak<HubNode>>>;

/// Hands a pub/sub message to the hub whose channel it came on. Runs on the subscriber
/// connection's task: it never waits (what would is spawned).
fn route(routes: &Routes, health: &Health, push: PushInfo) {
    match push.kind {
        PushKind::Message => {
            let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice()
            else {
                return;
            };
            let Ok(channel) = std::str::from_utf8(channel) else {
                return;
            };
            let nodes = routes.read().unwrap_or_else(PoisonError::into_inner);
            for node in nodes.iter().filter_map(Weak::upgrade) {
                if let Some(kind) = node.keys().parse(channel) {
                    node.receive(&kind, payload);
                    return;
                }
            }
        }
        PushKind::Disconnection => health.failed("the subscriber connection was lost"),
        _ => {}
    }
}

/// Whether Redis answers, to log one line per outage rather than one per failed operation, and
/// how many sends to other servers failed.
#[derive(Debug)]
pub(crate) struct Health {
    up: AtomicBool,
    /// Sends that did not reach Redis (in all, and since the current outage began).
    failed_sends: AtomicU64,
    failed_at_outage: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            up: AtomicBool::new(true),
            failed_sends: AtomicU64::new(0),
            failed_at_outage: AtomicU64::new(0),
        }
    }
}

impl Health {
    /// Counts a send to other servers that failed.
    pub(crate) fn send_failed(&self) {
        self.failed_sends.fetch_add(1, Ordering::Relaxed);
    }

    /// How many sends to other servers have failed since the backplane connected.
    pub(crate) fn failed_sends(&self) -> u64 {
        self.failed_sends.load(Ordering::Relaxed)
    }

    pub(crate) fn failed(&self, error: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.failed_at_outage
                .store(self.failed_sends.load(Ordering::Relaxed), Ordering::Relaxed);
            tracing::warn!(
                %error,
                "Redis is unavailable: sends to other servers fail until it is back (local deliveries go on)"
            );
        }
    }

    /// Whether Redis answered the last time it was asked.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn succeeded(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            let failed = self
                .failed_sends
                .load(Ordering::Relaxed)
                .saturating_sub(self.failed_at_outage.load(Ordering::Relaxed));
            tracing::info!(
                failed_sends = failed,
                "Redis is available again; sends to other servers that failed during the outage: {failed}"
            );
        }
    }
}

/// What the hubs of one process share.
pub(crate) struct Shared {
    pub(crate) config: RedisConfig,
    commands: ConnectionManager,
    subscriber: ConnectionManager,
    routes: Arc<Routes>,
    pub(crate) health: Arc<Health>,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl Shared {
    /// Routes this hub's channels to `node`.
    pub(crate) fn add_route(&self, node: &Arc<HubNode>) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.retain(|node| node.strong_count() > 0);
        routes.push(Arc::downgrade(node));
    }

    /// Runs a command on the command connection, bounded by the request timeout; failures are
    /// [`LifetimeError::Unavailable`] and mark Redis as down (logged once).
    pub(crate) async fn command<T, F, Fut>(&self, f: F) -> Result<T, LifetimeError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.run(f(self.commands.clone())).await
    }

    /// Sends a command now, in order with every command sent before on the command connection,
    /// without waiting for Redis's answer: fails at once while Redis is known to be down;
    /// otherwise a failure is reported by the backplane's health (logged once per outage).
    pub(crate) fn send_in_order<F, Fut>(self: &Arc<Self>, f: F) -> Result<(), LifetimeError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<()>> + Send + 'static,
    {
        if !self.health.is_up() {
            self.health.send_failed();
            return Err(LifetimeError::Unavailable(
                "Redis is unavailable (reconnecting)".to_owned(),
            ));
        }
        let shared = self.clone();
        let command = f(self.commands.clone());
        let mut sent = Box::pin(async move {
            let sent = shared.run(command).await;
            if sent.is_err() {
                shared.health.send_failed();
            }
            sent.map(drop)
        });
        // Polled once here: the command enters the connection's queue now, so commands keep
        // the order of the calls; the answer is awaited by a task.
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match sent.as_mut().poll(&mut context) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => {
                self.runtime.spawn(sent);
                Ok(())
            }
        }
    }

    /// Runs a command on the subscriber connection (SUBSCRIBE, UNSUBSCRIBE, PING).
    pub(crate) async fn subscriber<T, F, Fut>(&self, f: F) -> Result<T, LifetimeError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.run(f(self.subscriber.clone())).await
    }

    async fn run<T>(
        &self,
        operation: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, LifetimeError> {
        match tokio::time::timeout(self.config.request_timeout, operation).await {
            // Back up is declared by a whole heartbeat (both connections), not by one command.
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                let error = error.to_string();
                self.health.failed(&error);
                Err(LifetimeError::Unavailable(error))
            }
            Err(_) => {
                let error = format!(
                    "Redis did not answer within {:?}",
                    self.config.request_timeout
                );
                self.health.failed(&error);
                Err(LifetimeError::Unavailable(error))
            }
        }
    }
}
