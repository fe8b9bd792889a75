//! The server's metrics: SignalR's OpenTelemetry instruments and ours, registered once per hub
//! through the `metrics` facade (free when no recorder is installed: every handle is a no-op).
//!
//! Handles are made when the server is built, so install a recorder (e.g.
//! [`PrometheusMetrics::install`](crate::observability::PrometheusMetrics)) before building it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};
use hub_core::hub::MethodDescriptor;
use hub_core::negotiate::TransportType;

use super::names;

/// Why a connection ended, as SignalR's `signalr.connection.status` says it (in the order of
/// `ALL`, which indexes the duration histograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionStatus {
    /// The client or the hub closed it, or its transport failed.
    NormalClosure,
    /// The client went silent, or did not reconnect in time.
    Timeout,
    /// The server shut down.
    AppShutdown,
}

impl ConnectionStatus {
    const ALL: [ConnectionStatus; 3] = [
        ConnectionStatus::NormalClosure,
        ConnectionStatus::Timeout,
        ConnectionStatus::AppShutdown,
    ];

    fn label(self) -> &'static str {
        match self {
            ConnectionStatus::NormalClosure => "normal_closure",
            ConnectionStatus::Timeout => "timeout",
            ConnectionStatus::AppShutdown => "app_shutdown",
        }
    }
}

/// `signalr.transport`'s value for a transport.
pub(crate) fn transport_label(transport: TransportType) -> &'static str {
    match transport {
        TransportType::WebSockets => "web_sockets",
        TransportType::ServerSentEvents => "server_sent_events",
        TransportType::LongPolling => "long_polling",
    }
}

fn transport_index(transport: TransportType) -> usize {
    match transport {
        TransportType::WebSockets => 0,
        TransportType::ServerSentEvents => 1,
        TransportType::LongPolling => 2,
    }
}

/// How an invocation ended, the `outcome` of `hubs.invocations` (in the order of a method's
/// counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned a value (or its stream ended without error).
    Ok,
    /// It failed: the method's error, arguments that did not bind, or no authorization.
    Error,
    /// The client cancelled it, or the connection ended first.
    Cancelled,
}

/// One method's instruments and its span's name.
pub(crate) struct MethodInstruments {
    /// `{Hub}/{Method}`, the invocation span's name.
    pub(crate) span_name: Box<str>,
    /// The method's name.
    pub(crate) name: Box<str>,
    invocations: [Counter; 3],
    duration: Histogram,
}

/// Running totals kept for the stats view (only when it is served: they cost an atomic each).
#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) invocations: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
}

/// What one hub records.
pub(crate) struct HubMetrics {
    /// The hub's name in spans (`rpc.service`).
    pub(crate) service: Box<str>,
    active: [Gauge; 3],
    /// By status, then transport.
    durations: [[Histogram; 3]; 3],
    messages_received: Counter,
    messages_sent: Counter,
    bytes_received: Counter,
    bytes_sent: Counter,
    queue_high_water: Gauge,
    high_water: AtomicUsize,
    slow_consumer_closes: Counter,
    broadcasts: Counter,
    client_result_timeouts: Counter,
    methods: Vec<MethodInstruments>,
    pub(crate) totals: Option<Totals>,
}

impl HubMetrics {
    /// Registers the instruments of the hub at `path` named `service`; `totals` keeps running
    /// totals for the stats view.
    pub(crate) fn new(
        path: &str,
        service: &str,
        methods: &[MethodDescriptor],
        totals: bool,
    ) -> Self {
        describe();
        let hub = path.to_owned();
        let active = TransportType::ALL.map(|transport| {
            gauge!(names::ACTIVE_CONNECTIONS, "signalr.transport" => transport_label(transport), "hub" => hub.clone())
        });
        let durations = ConnectionStatus::ALL.map(|status| {
            TransportType::ALL.map(|transport| {
                histogram!(
                    names::CONNECTION_DURATION,
                    "signalr.connection.status" => status.label(),
                    "signalr.transport" => transport_label(transport),
                    "hub" => hub.clone()
                )
            })
        });
        let methods = methods
            .iter()
            .map(|method| {
                let name = method.name.clone();
                let outcome = |outcome: &'static str| {
                    counter!(names::INVOCATIONS, "hub" => hub.clone(), "method" => name.clone(), "outcome" => outcome)
                };
                MethodInstruments {
                    span_name: format!("{service}/{name}").into(),
                    invocations: [outcome("ok"), outcome("error"), outcome("cancelled")],
                    duration: histogram!(names::INVOCATION_DURATION, "hub" => hub.clone(), "method" => name.clone()),
                    name: name.into(),
                }
            })
            .collect();
        HubMetrics {
            service: service.into(),
            active,
            durations,
            messages_received: counter!(names::MESSAGES_RECEIVED, "hub" => hub.clone()),
            messages_sent: counter!(names::MESSAGES_SENT, "hub" => hub.clone()),
            bytes_received: counter!(names::BYTES_RECEIVED, "hub" => hub.clone()),
            bytes_sent: counter!(names::BYTES_SENT, "hub" => hub.clone()),
            queue_high_water: gauge!(names::QUEUE_HIGH_WATER, "hub" => hub.clone()),
            high_water: AtomicUsize::new(0),
            slow_consumer_closes: counter!(names::SLOW_CONSUMER_CLOSES, "hub" => hub.clone()),
            broadcasts: counter!(names::BROADCASTS, "hub" => hub.clone()),
            client_result_timeouts: counter!(names::CLIENT_RESULT_TIMEOUTS, "hub" => hub),
            methods,
            totals: totals.then(Totals::default),
        }
    }

    /// Instruments for unit tests of the layers below the endpoint.
    #[cfg(test)]
    pub(crate) fn for_tests() -> std::sync::Arc<Self> {
        std::sync::Arc::new(HubMetrics::new("/test", "test", &[], false))
    }

    /// The instruments of method `index` of the hub's descriptor table.
    pub(crate) fn method(&self, index: usize) -> Option<&MethodInstruments> {
        self.methods.get(index)
    }

    /// A connection completed its handshake.
    pub(crate) fn connection_started(&self, transport: TransportType) {
        self.active[transport_index(transport)].increment(1.0);
    }

    /// A connection that started has ended.
    pub(crate) fn connection_ended(
        &self,
        transport: TransportType,
        status: ConnectionStatus,
        lifetime: Duration,
    ) {
        let transport = transport_index(transport);
        self.active[transport].decrement(1.0);
        self.durations[status as usize][transport].record(lifetime.as_secs_f64());
    }

    /// An invocation of method `index` ended.
    pub(crate) fn invocation(&self, index: usize, outcome: Outcome, elapsed: Duration) {
        if let Some(method) = self.methods.get(index) {
            method.invocations[outcome as usize].increment(1);
            method.duration.record(elapsed.as_secs_f64());
        }
        if let Some(totals) = &self.totals {
            totals.invocations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A message of `bytes` arrived from a client (bytes counted as read, per chunk).
    pub(crate) fn received(&self, messages: u64, bytes: u64) {
        if messages > 0 {
            self.messages_received.increment(messages);
        }
        if bytes > 0 {
            self.bytes_received.increment(bytes);
        }
        if let Some(totals) = &self.totals {
            totals
                .messages_received
                .fetch_add(messages, Ordering::Relaxed);
            totals.bytes_received.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// A frame of `bytes` (one message) was queued for a client.
    pub(crate) fn sent(&self, bytes: usize) {
        self.messages_sent.increment(1);
        self.bytes_sent.increment(bytes as u64);
        if let Some(totals) = &self.totals {
            totals.messages_sent.fetch_add(1, Ordering::Relaxed);
            totals.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// A connection's outbound queue (with its overflow) held `depth` frames.
    pub(crate) fn queue_depth(&self, depth: usize) {
        if depth > self.high_water.fetch_max(depth, Ordering::Relaxed) {
            self.queue_high_water.set(depth as f64);
        }
    }

    /// A client that did not keep up was closed.
    pub(crate) fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.increment(1);
    }

    /// Hub code sent one message to many connections (a group, a user, everyone…).
    pub(crate) fn broadcast(&self) {
        self.broadcasts.increment(1);
    }

    /// A client result was not answered in time.
    pub(crate) fn client_result_timed_out(&self) {
        self.client_result_timeouts.increment(1);
    }
}

/// Registers the descriptions and units of every instrument (once per recorder; repeating it is
/// harmless).
fn describe() {
    describe_histogram!(
        names::CONNECTION_DURATION,
        Unit::Seconds,
        "The duration of connections on the server."
    );
    describe_gauge!(
        names::ACTIVE_CONNECTIONS,
        Unit::Count,
        "Number of connections that are currently active on the server."
    );
    describe_counter!(
        names::INVOCATIONS,
        Unit::Count,
        "Hub method invocations that ended, by hub, method and outcome (ok, error, cancelled)."
    );
    describe_histogram!(
        names::INVOCATION_DURATION,
        Unit::Seconds,
        "How long hub method invocations ran (a stream: until its last item)."
    );
    describe_counter!(
        names::MESSAGES_RECEIVED,
        Unit::Count,
        "Hub protocol messages received from clients."
    );
    describe_counter!(
        names::MESSAGES_SENT,
        Unit::Count,
        "Hub protocol messages queued for clients."
    );
    describe_counter!(
        names::BYTES_RECEIVED,
        Unit::Bytes,
        "Bytes read from clients' transports."
    );
    describe_counter!(
        names::BYTES_SENT,
        Unit::Bytes,
        "Bytes of messages queued for clients."
    );
    describe_gauge!(
        names::QUEUE_HIGH_WATER,
        Unit::Count,
        "The most frames any connection's outbound queue (with its overflow) has held."
    );
    describe_counter!(
        names::SLOW_CONSUMER_CLOSES,
        Unit::Count,
        "Connections closed because their client did not read fast enough."
    );
    describe_counter!(
        names::BROADCASTS,
        Unit::Count,
        "Messages hub code sent to many connections (everyone, groups, users)."
    );
    describe_counter!(
        names::DELIVERIES,
        Unit::Count,
        "Messages queued for this server's connections by fan-out sends."
    );
    describe_counter!(
        names::CLIENT_RESULT_TIMEOUTS,
        Unit::Count,
        "Client results that were not answered within their timeout."
    );
}
