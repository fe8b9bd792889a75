//! Per-hub settings: timers, limits, protocols, transports, CORS, errors, with ASP.NET Core's
//! defaults, set through methods and validated when the server is built.

use std::time::Duration;

use hub_core::negotiate::TransportType;
use hub_core::protocol::{Protocol, DEFAULT_MAX_MESSAGE_SIZE};

mod cors;

pub use cors::CorsConfig;

/// The default [`HubConfig::websocket_read_buffer_size`]: 4 KiB.
pub const DEFAULT_WEBSOCKET_READ_BUFFER_SIZE: usize = 4 * 1024;

/// How a hub endpoint behaves. Every timer and limit is configurable with a method of the same
/// name; the defaults are ASP.NET Core's. Values that would panic or hang a connection (a zero
/// queue, a zero keep-alive interval, …) are refused when the server is built
/// ([`HubConfig::validate`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Send a Ping when nothing was written for this long (15 s).
    pub(crate) keep_alive_interval: Duration,
    /// Close a connection that sent nothing for this long, counted from its first Ping (30 s).
    pub(crate) client_timeout: Duration,
    /// Close a connection whose handshake has not arrived after this long (15 s).
    pub(crate) handshake_timeout: Duration,
    /// Dispose a negotiated connection no transport attached to after this long (15 s).
    pub(crate) disconnect_timeout: Duration,
    /// Give up on a transport write that takes this long and close the connection (10 s).
    pub(crate) send_timeout: Duration,
    /// The largest message a client may send, handshake included (32 KiB).
    pub(crate) max_message_size: usize,
    /// How many invocations of one connection run at the same time (1: in order).
    pub(crate) max_parallel_invocations: usize,
    /// How many outgoing messages may wait for one connection's transport (1024). A client that
    /// falls further behind (as many again wait in its overflow) or frees no room for the send
    /// timeout is closed with an error: memory stays bounded, and senders and other clients
    /// never wait for it.
    pub(crate) outbound_queue_capacity: usize,
    /// Send the details of unexpected method errors to clients (off: they get a generic text).
    pub(crate) detailed_errors: bool,
    /// What to do with a generated client whose contract hash differs from the hub's (log).
    pub(crate) contract_check: ContractCheck,
    /// The hub protocols clients may pick in the handshake.
    pub(crate) protocols: Vec<Protocol>,
    /// The lowest negotiate version accepted (0).
    pub(crate) min_negotiate_version: u32,
    /// On shutdown, how long running invocations may take to finish before they are cancelled
    /// (5 s).
    pub(crate) shutdown_timeout: Duration,
    /// How many items of one upload stream may wait for the hub method (10). A client that sends
    /// faster than the method reads waits: its connection stops reading until there is room.
    pub(crate) stream_buffer_capacity: usize,
    /// How long a server-to-client invocation (a client result) waits for the client's answer
    /// (30 s).
    pub(crate) client_result_timeout: Duration,
    /// The transports offered (all three by default). Negotiate lists the enabled ones in the
    /// order WebSockets, Server-Sent Events, long polling whatever the order here; a request for a
    /// disabled transport gets 404.
    pub(crate) transports: Vec<TransportType>,
    /// How long a long poll waits for data before it is answered with an empty 200 and the client
    /// polls again (90 s).
    pub(crate) long_polling_timeout: Duration,
    /// The largest request body accepted by the send endpoint (`POST {hub}?id=…`, used by
    /// Server-Sent Events and long polling); larger bodies get 413 and are dropped. A body may hold
    /// several messages; each one is still limited by
    /// [`max_message_size`](Self::max_message_size). `None` (the default): 8 ×
    /// `max_message_size`, at least 1 MiB, the same bound as one WebSocket message.
    pub(crate) max_request_body_size: Option<usize>,
    /// Cross-origin requests from browsers (off: no CORS headers, preflights get 405).
    pub(crate) cors: Option<CorsConfig>,
    /// Grant stateful reconnect to WebSocket clients that ask for it in negotiate (on): a
    /// dropped socket then keeps its connection for [`disconnect_timeout`](Self::disconnect_timeout),
    /// and the client resumes it without losing messages.
    pub(crate) stateful_reconnect: bool,
    /// With stateful reconnect, how many bytes of sent messages may wait for the client's
    /// acknowledgement before further sends wait (100 000).
    pub(crate) stateful_reconnect_buffer_size: usize,
    /// The read buffer of each WebSocket (4 KiB). A message larger than the buffer still arrives
    /// whole (the buffer grows for it, up to the WebSocket message limit); a small buffer keeps an
    /// idle connection's memory low. tungstenite's own default, 128 KiB, costs ~128 KiB resident
    /// per connection and a 128 KiB `memset` per read.
    pub(crate) websocket_read_buffer_size: usize,
    /// Refuse transport requests (WebSocket upgrades, event streams, polls, sends) whose `Origin`
    /// is neither this server's own nor allowed by [`cors`](Self::cors) (on).
    pub(crate) check_origin: bool,
    /// Close a connection when its principal's [`expires_at`](crate::Principal::expires_at)
    /// passes (on).
    pub(crate) close_on_authentication_expiration: bool,
    /// Serve `POST {hub}/refresh`, where a client renews its connection's authentication
    /// without reconnecting, and report `tokenLifetimeSeconds` in negotiate (off).
    pub(crate) authentication_refresh: bool,
}

/// What a hub does with a generated client built from other hub traits than its own
/// ([`HubConfig::contract_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractCheck {
    /// Accept it silently.
    Accept,
    /// Accept it, with a warning in the log naming both contracts.
    Log,
    /// Refuse it: the client gets a Close message (no reconnect) that says to regenerate it.
    Refuse,
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
            contract_check: ContractCheck::Log,
            protocols: Protocol::ALL.to_vec(),
            min_negotiate_version: 0,
            shutdown_timeout: Duration::from_secs(5),
            stream_buffer_capacity: 10,
            client_result_timeout: Duration::from_secs(30),
            transports: TransportType::ALL.to_vec(),
            long_polling_timeout: Duration::from_secs(90),
            max_request_body_size: None,
            cors: None,
            stateful_reconnect: true,
            stateful_reconnect_buffer_size: 100_000,
            websocket_read_buffer_size: DEFAULT_WEBSOCKET_READ_BUFFER_SIZE,
            check_origin: true,
            close_on_authentication_expiration: true,
            authentication_refresh: false,
        }
    }
}

impl HubConfig {
    /// The defaults.
    pub fn new() -> Self {
        HubConfig::default()
    }

    /// Send a Ping when nothing was written for this long (15 s).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// Close a connection that sent nothing for this long, counted from its first Ping (30 s).
    pub fn client_timeout(mut self, timeout: Duration) -> Self {
        self.client_timeout = timeout;
        self
    }

    /// Close a connection whose handshake has not arrived after this long (15 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Dispose a negotiated connection no transport attached to after this long (15 s).
    pub fn disconnect_timeout(mut self, timeout: Duration) -> Self {
        self.disconnect_timeout = timeout;
        self
    }

    /// Give up on a transport write that takes this long and close the connection (10 s).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// The largest message a client may send, handshake included (32 KiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many invocations of one connection run at the same time (1: in order).
    pub fn max_parallel_invocations(mut self, count: usize) -> Self {
        self.max_parallel_invocations = count;
        self
    }

    /// How many outgoing messages may wait for one connection's transport (1024). A client that
    /// falls further behind (as many again wait in its overflow) or frees no room for the send
    /// timeout is closed with an error: memory stays bounded, and senders and other clients
    /// never wait for it.
    pub fn outbound_queue_capacity(mut self, messages: usize) -> Self {
        self.outbound_queue_capacity = messages;
        self
    }

    /// What to do when a generated TypeScript client presents a contract hash other than the
    /// hub's (it was generated from another version of the hub's traits): accept it, log a
    /// warning and accept it (the default), or refuse it — the client gets a Close message whose
    /// error says to regenerate it. Clients that present none (the official ones) are always
    /// accepted.
    pub fn contract_check(mut self, check: ContractCheck) -> Self {
        self.contract_check = check;
        self
    }

    /// Send the details of unexpected method errors to clients (off: they get a generic text).
    pub fn detailed_errors(mut self, enabled: bool) -> Self {
        self.detailed_errors = enabled;
        self
    }

    /// On shutdown, how long running invocations may take to finish before they are cancelled
    /// (5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How many items of one upload stream may wait for the hub method (10). A client that sends
    /// faster than the method reads waits: its connection stops reading until there is room.
    pub fn stream_buffer_capacity(mut self, items: usize) -> Self {
        self.stream_buffer_capacity = items;
        self
    }

    /// How long a server-to-client invocation (a client result) waits for the client's answer
    /// (30 s).
    pub fn client_result_timeout(mut self, timeout: Duration) -> Self {
        self.client_result_timeout = timeout;
        self
    }

    /// The hub protocols clients may pick in the handshake.
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }

    /// The transports offered (all three by default). Negotiate lists the enabled ones in the
    /// order WebSockets, Server-Sent Events, long polling whatever the order here; a request for a
    /// disabled transport gets 404.
    pub fn transports(mut self, transports: impl IntoIterator<Item = TransportType>) -> Self {
        self.transports = transports.into_iter().collect();
        self
    }

    /// How long a long poll waits for data before it is answered with an empty 200 and the client
    /// polls again (90 s).
    pub fn long_polling_timeout(mut self, timeout: Duration) -> Self {
        self.long_polling_timeout = timeout;
        self
    }

    /// The largest request body accepted by the send endpoint (`POST {hub}?id=…`, used by
    /// Server-Sent Events and long polling); larger bodies get 413 and are dropped. A body may hold
    /// several messages; each one is still limited by
    /// [`max_message_size`](Self::max_message_size). `None` (the default): 8 ×
    /// `max_message_size`, at least 1 MiB, the same bound as one WebSocket message.
    pub fn max_request_body_size(mut self, bytes: usize) -> Self {
        self.max_request_body_size = Some(bytes);
        self
    }

    /// Cross-origin requests from browsers (off: no CORS headers, preflights get 405).
    pub fn cors(mut self, cors: CorsConfig) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Grant stateful reconnect to WebSocket clients that ask for it in negotiate (on): a
    /// dropped socket then keeps its connection for [`disconnect_timeout`](Self::disconnect_timeout),
    /// and the client resumes it without losing messages.
    pub fn stateful_reconnect(mut self, enabled: bool) -> Self {
        self.stateful_reconnect = enabled;
        self
    }

    /// With stateful reconnect, how many bytes of sent messages may wait for the client's
    /// acknowledgement before further sends wait (100 000).
    pub fn stateful_reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.stateful_reconnect_buffer_size = bytes;
        self
    }

    /// The read buffer of each WebSocket (4 KiB). A message larger than the buffer still arrives
    /// whole (the buffer grows for it, up to the WebSocket message limit); a small buffer keeps an
    /// idle connection's memory low. tungstenite's own default, 128 KiB, costs ~128 KiB resident
    /// per connection and a 128 KiB `memset` per read.
    pub fn websocket_read_buffer_size(mut self, bytes: usize) -> Self {
        self.websocket_read_buffer_size = bytes;
        self
    }

    /// Refuse transport requests — WebSocket upgrades, event streams, polls, sends, DELETE — that
    /// carry an `Origin` other than this server's own (the `Host` the request was sent to) or one
    /// [`cors`](Self::cors) allows, with 403 (on). Browsers do not apply CORS to WebSockets, so
    /// without it any site could open a connection with its visitor's cookies (cross-site
    /// WebSocket hijacking). Requests without `Origin` (non-browser clients) are not affected.
    /// Turn it off only when no credential travels automatically (no cookie authentication).
    pub fn check_origin(mut self, enabled: bool) -> Self {
        self.check_origin = enabled;
        self
    }

    /// Close a connection when the authentication it was opened with expires (on): when its
    /// principal's [`expires_at`](crate::Principal::expires_at) passes, the client gets a Close
    /// message that allows it to reconnect (as ASP.NET Core's
    /// `CloseOnAuthenticationExpiration`, within a second of the expiry), and reconnecting
    /// authenticates it afresh. A connection whose principal has no expiry never closes for
    /// this. Unlike ASP.NET Core it is on by default: an authenticator that sets an expiry means
    /// it.
    pub fn close_on_authentication_expiration(mut self, enabled: bool) -> Self {
        self.close_on_authentication_expiration = enabled;
        self
    }

    /// Let clients renew a connection's authentication without reconnecting (off; ASP.NET Core
    /// 11's `EnableAuthenticationRefresh`). Negotiate then reports how many seconds the
    /// principal's authentication has left (`tokenLifetimeSeconds`), and `POST {hub}/refresh`
    /// (the connection token in `X-SignalR-Connection-Token` or `?id=`) authenticates the request
    /// again: the same user (by its [`UserIdProvider`](crate::UserIdProvider) id) still allowed
    /// by the hub's `#[authorize]` requirements replaces the connection's principal and expiry;
    /// anyone else is refused and the connection goes on unchanged. The official JavaScript
    /// client's `withAuthenticationRefresh()` and ours schedule it before the expiry.
    pub fn authentication_refresh(mut self, enabled: bool) -> Self {
        self.authentication_refresh = enabled;
        self
    }

    /// The lowest negotiate version accepted (0).
    pub fn min_negotiate_version(mut self, version: u32) -> Self {
        self.min_negotiate_version = version;
        self
    }

    /// Checks the settings; the server builder does it for every hub, so a value that would
    /// panic or hang a connection is an error when the server is built, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = [
            (
                "max_parallel_invocations",
                self.max_parallel_invocations,
                "no invocation could ever run",
            ),
            (
                "outbound_queue_capacity",
                self.outbound_queue_capacity,
                "no message could ever be queued for a client",
            ),
            (
                "stream_buffer_capacity",
                self.stream_buffer_capacity,
                "no upload stream item could ever be handed to a method",
            ),
            (
                "stateful_reconnect_buffer_size",
                self.stateful_reconnect_buffer_size,
                "no message could be sent while unacknowledged",
            ),
            (
                "websocket_read_buffer_size",
                self.websocket_read_buffer_size,
                "a WebSocket could not read",
            ),
            (
                "max_message_size",
                self.max_message_size,
                "no message, not even the handshake, would fit",
            ),
        ];
        for (field, value, consequence) in at_least_one {
            if value == 0 {
                return Err(ConfigError {
                    field,
                    reason: format!("must be at least 1 (it is 0): {consequence}"),
                });
            }
        }
        let non_zero = [
            (
                "keep_alive_interval",
                self.keep_alive_interval,
                "pings would be sent without pause",
            ),
            (
                "long_polling_timeout",
                self.long_polling_timeout,
                "clients would poll without pause",
            ),
            (
                "client_timeout",
                self.client_timeout,
                "every connection would time out at once",
            ),
            (
                "handshake_timeout",
                self.handshake_timeout,
                "every handshake would time out",
            ),
        ];
        for (field, value, consequence) in non_zero {
            if value.is_zero() {
                return Err(ConfigError {
                    field,
                    reason: format!("must be longer than zero: {consequence}"),
                });
            }
        }
        if self.protocols.is_empty() {
            return Err(ConfigError {
                field: "protocols",
                reason: "needs at least one hub protocol: no client could complete a handshake"
                    .into(),
            });
        }
        if self.transports.is_empty() {
            return Err(ConfigError {
                field: "transports",
                reason: "needs at least one transport: no client could connect".into(),
            });
        }
        Ok(())
    }

    /// Whether `transport` is offered.
    pub(crate) fn allows(&self, transport: TransportType) -> bool {
        self.transports.contains(&transport)
    }

    /// The effective [`max_request_body_size`](Self::max_request_body_size).
    pub(crate) fn request_body_limit(&self) -> usize {
        self.max_request_body_size
            .unwrap_or_else(|| self.max_message_size.saturating_mul(8).max(1 << 20))
    }
}

/// A [`HubConfig`] setting that would break the hub, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HubConfig::{field} {reason}")]
pub struct ConfigError {
    /// The setting, as its method is named (e.g. `outbound_queue_capacity`).
    pub field: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}
