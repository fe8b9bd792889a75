//! A Redis backplane for [`hub_server`]: one hub on many servers.
//!
//! Behind a load balancer, N servers each run the same hubs; with every hub on a
//! [`RedisLifetimeManager`], a send to all, a group, a user, a connection or "others" reaches
//! its recipients exactly once wherever they are connected, and groups, client results and
//! introspection work across servers.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use hub_redis::{RedisBackplane, RedisConfig};
//! use hub_server::{HubEndpoint, HubMethods, HubServer};
//!
//! let url = std::env::var("REDIS_URL")?; // e.g. redis://127.0.0.1:6379
//! let backplane = RedisBackplane::connect(RedisConfig::new(url).prefix("my-app")).await?;
//! HubServer::builder()
//!     .endpoint("/chat", HubEndpoint::new(HubMethods::new()).lifetime_manager(backplane.manager()))
//!     .bind(("0.0.0.0", 8080))
//!     .await?
//!     .serve()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # In Redis
//!
//! Everything lives under `{prefix}:{hub path}:` ([`RedisConfig::prefix`]):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `all` | channel | broadcasts, aborts, cluster-wide questions; every server listens |
//! | `group:{name}` | channel | a group's messages; a server listens while it has a member |
//! | `user:{id}` | channel | a user's messages; a server listens while it has a connection of theirs |
//! | `node:{node id}` | channel | one server's inbox: sends to its connections, group changes, client results, answers |
//! | `nodes` | sorted set | live servers, scored by when their heartbeat runs out |
//! | `connections` | hash | connection id → the server that owns it |
//! | `node-connections:{node id}` | set | a server's connections, removed with it when it dies |
//! | `claims` | hash | connection id → the server its transport attached to (no sticky sessions) |
//! | `node-claims:{node id}` | set | a server's claims, removed with it when it dies |
//! | `ended:{connection id}` | string | a connection that ended while its token could still attach a transport (expires then) |
//!
//! Messages between servers are versioned MessagePack, and carry each hub message already
//! encoded in both hub protocols, so receivers never re-encode.
//!
//! # Delivery
//!
//! Redis pub/sub delivers at most once: while Redis is down, sends that need other servers
//! fail (the error reaches the caller and is logged once per outage) and local deliveries go
//! on. A send to several groups (or users) is published on each one's channel, and a server
//! delivers only the copy from the first of them it listens to; a membership change racing
//! with such a send may deliver it once more or once less to that connection.

mod backplane;
mod config;
mod keys;
mod manager;
mod node;
mod scripts;
mod wire;

pub use backplane::{BackplaneError, RedisBackplane};
pub use config::RedisConfig;
pub use manager::RedisLifetimeManager;
