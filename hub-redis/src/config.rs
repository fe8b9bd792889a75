//! How a node talks to Redis and to the other nodes.

use std::time::Duration;

/// The settings of a [`RedisBackplane`](crate::RedisBackplane).
///
/// ```
/// use std::time::Duration;
/// use hub_redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379")
///     .prefix("my-app")
///     .heartbeat(Duration::from_millis(500));
/// assert_eq!(config.node_timeout_value(), Duration::from_millis(1500));
/// ```
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) heartbeat: Duration,
    pub(crate) node_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

impl RedisConfig {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port[/db]`).
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "hubs".to_owned(),
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// What every channel and key starts with (default `hubs`): applications sharing one Redis
    /// use different prefixes.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How often a node tells Redis it is alive (default 1 s), and — three times that — how long
    /// after its last heartbeat a silent node counts as dead (see [`node_timeout`](Self::node_timeout)).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self.node_timeout = interval * 3;
        self
    }

    /// How long after its last heartbeat a node counts as dead (default 3 s): its connections
    /// leave the counts, and client results to them fail.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// How long a Redis command, a group change on another node or a cluster-wide question
    /// may take before it fails (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The node timeout in use.
    pub fn node_timeout_value(&self) -> Duration {
        self.node_timeout
    }
}
