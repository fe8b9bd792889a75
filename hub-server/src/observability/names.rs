//! The names of the metrics the server records, as a recorder shows them. A Prometheus scrape
//! ([`PrometheusMetrics`](super::PrometheusMetrics)) follows Prometheus's naming: dots become
//! underscores, counters end in `_total`, and the unit is appended (e.g.
//! `signalr_server_connection_duration_seconds_bucket`, `hubs_invocations_total`,
//! `hubs_sent_bytes_total`).
//!
//! The first two are SignalR's own, as ASP.NET Core's `Microsoft.AspNetCore.Http.Connections`
//! meter emits them (OpenTelemetry semantic conventions); the others are this server's, each with
//! a `hub` label (the hub's path).

/// Histogram, seconds: how long connections lasted. Labels `signalr.connection.status`
/// (`normal_closure`, `timeout`, `app_shutdown`) and `signalr.transport` (`web_sockets`,
/// `server_sent_events`, `long_polling`).
pub const CONNECTION_DURATION: &str = "signalr.server.connection.duration";
/// Up-down counter (a gauge): connections active now. Label `signalr.transport`.
pub const ACTIVE_CONNECTIONS: &str = "signalr.server.active_connections";

/// Counter: invocations that ended. Labels `method` and `outcome` (`ok`, `error`, `cancelled`).
pub const INVOCATIONS: &str = "hubs.invocations";
/// Histogram, seconds: how long invocations ran. Label `method`.
pub const INVOCATION_DURATION: &str = "hubs.invocation.duration";
/// Counter: hub protocol messages received from clients.
pub const MESSAGES_RECEIVED: &str = "hubs.received.messages";
/// Counter: hub protocol messages queued for clients.
pub const MESSAGES_SENT: &str = "hubs.sent.messages";
/// Counter: bytes read from clients' transports.
pub const BYTES_RECEIVED: &str = "hubs.received.bytes";
/// Counter: bytes of the messages queued for clients.
pub const BYTES_SENT: &str = "hubs.sent.bytes";
/// Gauge: the most frames any connection's outbound queue (with its overflow) has held.
pub const QUEUE_HIGH_WATER: &str = "hubs.outbound_queue.high_water";
/// Counter: connections closed because their client did not read fast enough.
pub const SLOW_CONSUMER_CLOSES: &str = "hubs.slow_consumer.closes";
/// Counter: messages hub code sent to many connections (everyone, groups, users).
pub const BROADCASTS: &str = "hubs.broadcasts";
/// Counter: messages fan-out sends queued for this server's connections (a broadcast reaching
/// 1 000 connections here counts 1 000).
pub const DELIVERIES: &str = "hubs.broadcast.deliveries";
/// Counter: client results not answered within their timeout.
pub const CLIENT_RESULT_TIMEOUTS: &str = "hubs.client_results.timeouts";

/// Counter: packets a backplane published to the other servers. Label `kind`.
pub const BACKPLANE_PUBLISHED: &str = "hubs.backplane.published";
/// Counter: packets a backplane received from the other servers. Label `kind`.
pub const BACKPLANE_RECEIVED: &str = "hubs.backplane.received";
/// Histogram, seconds: from a packet's publication on one server to its arrival on another
/// (across machines, as far as their clocks agree).
pub const BACKPLANE_LAG: &str = "hubs.backplane.lag";
