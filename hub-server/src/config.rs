//! Per-hub settings: timers, limits, protocols, errors. Plain data with ASP.NET Core's defaults.

use std::time::Duration;

use hub_core::protocol::{Protocol, DEFAULT_MAX_MESSAGE_SIZE};

/// How a hub endpoint behaves. Every timer and limit is configurable; the defaults are ASP.NET
/// Core's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Send a Ping when nothing was written for this long (15 s).
    pub keep_alive_interval: Duration,
    /// Close a connection that sent nothing for this long, counted from its first Ping (30 s).
    pub client_timeout: Duration,
    /// Close a connection whose handshake has not arrived after this long (15 s).
    pub handshake_timeout: Duration,
    /// Dispose a negotiated connection no transport attached to after this long (15 s).
    pub disconnect_timeout: Duration,
    /// Give up on a transport write that takes this long and close the connection (10 s).
    pub send_timeout: Duration,
    /// The largest message a client may send, handshake included (32 KiB).
    pub max_message_size: usize,
    /// How many invocations of one connection run at the same time (1: in order).
    pub max_parallel_invocations: usize,
    /// How many outgoing messages may wait for one connection's transport (1024). A client that
    /// lets its queue fill up is closed with an error: memory stays bounded and other clients are
    /// not slowed.
    pub outbound_queue_capacity: usize,
    /// Send the details of unexpected method errors to clients (off: they get a generic text).
    pub detailed_errors: bool,
    /// The hub protocols clients may pick in the handshake.
    pub protocols: Vec<Protocol>,
    /// The lowest negotiate version accepted (0).
    pub min_negotiate_version: u32,
    /// On shutdown, how long running invocations may take to finish before they are cancelled
    /// (5 s).
    pub shutdown_timeout: Duration,
    /// How many items of one upload stream may wait for the hub method (10). A client that sends
    /// faster than the method reads waits: its connection stops reading until there is room.
    pub stream_buffer_capacity: usize,
    /// How long a server-to-client invocation (a client result) waits for the client's answer
    /// (30 s).
    pub client_result_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            keep_alive_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            disconnect_timeout: Duration::from_secs(15),
            send_timeout: Duration::from_secs(10),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_parallel_invocations: 1,
            outbound_queue_capacity: 1024,
            detailed_errors: false,
            protocols: Protocol::ALL.to_vec(),
            min_negotiate_version: 0,
            shutdown_timeout: Duration::from_secs(5),
            stream_buffer_capacity: 10,
            client_result_timeout: Duration::from_secs(30),
        }
    }
}

impl HubConfig {
    /// The defaults.
    pub fn new() -> Self {
        HubConfig::default()
    }

    /// Sets [`keep_alive_interval`](Self::keep_alive_interval).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// Sets [`client_timeout`](Self::client_timeout).
    pub fn client_timeout(mut self, timeout: Duration) -> Self {
        self.client_timeout = timeout;
        self
    }

    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`disconnect_timeout`](Self::disconnect_timeout).
    pub fn disconnect_timeout(mut self, timeout: Duration) -> Self {
        self.disconnect_timeout = timeout;
        self
    }

    /// Sets [`send_timeout`](Self::send_timeout).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`max_parallel_invocations`](Self::max_parallel_invocations) (at least 1).
    pub fn max_parallel_invocations(mut self, count: usize) -> Self {
        self.max_parallel_invocations = count.max(1);
        self
    }

    /// Sets [`outbound_queue_capacity`](Self::outbound_queue_capacity) (at least 1).
    pub fn outbound_queue_capacity(mut self, messages: usize) -> Self {
        self.outbound_queue_capacity = messages.max(1);
        self
    }

    /// Sets [`detailed_errors`](Self::detailed_errors).
    pub fn detailed_errors(mut self, enabled: bool) -> Self {
        self.detailed_errors = enabled;
        self
    }

    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets [`stream_buffer_capacity`](Self::stream_buffer_capacity) (at least 1).
    pub fn stream_buffer_capacity(mut self, items: usize) -> Self {
        self.stream_buffer_capacity = items.max(1);
        self
    }

    /// Sets [`client_result_timeout`](Self::client_result_timeout).
    pub fn client_result_timeout(mut self, timeout: Duration) -> Self {
        self.client_result_timeout = timeout;
        self
    }

    /// Sets [`protocols`](Self::protocols).
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }
}
