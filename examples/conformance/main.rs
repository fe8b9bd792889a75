//! The conformance hub: every server feature behind a method, for the real-client tests
//! (`tests/node/conformance/`, `tests/python/`). It prints `listening on <port>` once ready.
//!
//! The hub is written with `#[hub]` (the [`Conformance`] trait, served by `ServeConformance`) and
//! its callbacks with `#[hub_client]` (the [`ConformanceClient`] trait, called through the typed
//! `ConformanceClientProxy`). Wire names are the PascalCase of the Rust names (`echo_value` →
//! `EchoValue`); `hub-server/tests/common` keeps a hub written by hand with `HubMethods`.
//!
//! Settings come from the environment so tests can shorten timers:
//! `PORT` (0), `KEEP_ALIVE_MS`, `CLIENT_TIMEOUT_MS`, `HANDSHAKE_TIMEOUT_MS`,
//! `DISCONNECT_TIMEOUT_MS`, `SHUTDOWN_TIMEOUT_MS`, `MAX_MESSAGE_SIZE`, `OUTBOUND_QUEUE`,
//! `POLL_TIMEOUT_MS` (long polling), `LIFETIME_MANAGER` (`local`, or `counting`: every hub runs
//! on [`counting::CountingManager`], a lifetime manager written outside hub-server that wraps the
//! local one), `REDIS_URL` (every hub on the Redis backplane, `hub-redis`; `NODE_ID` names the
//! server and `REDIS_HEARTBEAT_MS` sets its heartbeat; `TLS_CERT` and `TLS_KEY` (PEM files) serve
//! https and wss instead of http and ws; `CONNECTION_TOKEN_KEY`, the same on every
//! server, lets any server serve any request of a connection: no sticky sessions).
//!
//! Hubs: `/hub` (default errors) and `/detailed` (detailed errors), offering every transport, and
//! `/no-ws` (the `/hub` methods over Server-Sent Events and long polling only), all three serving
//! one [`ConformanceHub`]; `/refreshing` (authentication refresh on) and `/refreshing-lenient`
//! (refresh on, connections not closed when their credentials expire) serve it too; and `/secure`
//! (only authenticated users may connect). A bearer token (header or `access_token`) becomes the
//! user id (`user#role1,role2` adds roles, `…@<ms since the epoch>` an expiry: the credentials
//! authenticate until then, and connections opened with them expire then); the token `reject`
//! gets 401. `/raw-echo` is a connection endpoint without the hub protocol (an echo, for the
//! official `HttpConnection`). The policy `even-name` accepts user ids of even length. Every hub allows cross-origin requests from [`CORS_ORIGIN`].

mod counting;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{Stream, StreamExt};
use hub_redis::{RedisBackplane, RedisConfig};
use hub_server::protocol::{Binary, RawValue, Timestamp};
use hub_server::{
    hub, hub_client, Authorization, CallerClients, Cancellation, Context, CorsConfig, Groups,
    HubConfig, HubContext, HubEndpoint, HubError, HubMethods, HubServer, Principal, RawConnection,
    RequestInfo, Requirement, ShutdownHandle, TransportType, Unauthorized, UploadStream,
    ROLE_CLAIM,
};
use serde_json::Value;

use crate::counting::{CallCounts, CountingManager};

/// The browser origin the hubs accept cross-origin requests from.
const CORS_ORIGIN: &str = "http://allowed.test";

/// The conformance hub's typed error: what `Bounded` refuses with.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[serde(tag = "kind")]
pub enum ConformanceError {
    /// The value is above the maximum.
    OutOfRange {
        /// What was asked.
        value: i32,
        /// The most allowed.
        max: i32,
    },
    /// The value is refused outright.
    Refused {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for ConformanceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConformanceError::OutOfRange { value, max } => write!(f, "{value} is above {max}"),
            ConformanceError::Refused { reason } => f.write_str(reason),
        }
    }
}

impl hub_server::ClientError for ConformanceError {}

/// What the conformance hub calls on its clients.
#[hub_client]
pub trait ConformanceClient {
    /// A push from one of the `SendTo…` methods or `SendLater`: `label` names the target kind
    /// (`caller`, `others`, `all`, `allExcept`, `connection`, `connections`, `group`, `groups`,
    /// `groupExcept`, `othersInGroup`, `user`, `users`, `later`).
    async fn receive(&self, label: String, text: String);
    /// One of `PushToCaller`'s numbered pushes.
    async fn item(&self, index: u32);
    /// A `Ticker` stream was cancelled.
    async fn ticker_cancelled(&self);
    /// A client result: the client's answer to `question`, any JSON value.
    async fn get_answer(&self, question: String) -> Value;
}

/// The context of a conformance hub method, handing out typed callbacks.
type Cx = Context<ConformanceClientProxy>;

/// Every server feature behind a method.
#[hub(route = "/hub", client = ConformanceClient)]
pub trait Conformance {
    /// Returns `text`.
    async fn echo(&self, text: String) -> String;
    /// Returns `text`, for callers with the `admin` role.
    #[authorize(role = "admin")]
    async fn admin_echo(&self, text: String) -> String;
    /// Returns `text`, for callers who meet the `even-name` policy (a user id of even length).
    #[authorize(policy = "even-name")]
    async fn even_echo(&self, text: String) -> String;
    /// Returns any JSON value as it came.
    async fn echo_value(&self, value: Value) -> Value;
    /// Returns the argument exactly as it arrived, in either protocol (MessagePack timestamps
    /// and `bin` stay what they are): a `RawValue` parameter and result.
    async fn echo_raw(&self, value: RawValue) -> RawValue;
    /// `when` plus one second: a `Timestamp`, ISO text in JSON and a timestamp (a `Date` in
    /// the official client) in MessagePack.
    async fn one_second_later(&self, when: Timestamp) -> Timestamp;
    /// The bytes reversed: `Binary`, base64 in JSON and `bin` (a `Uint8Array`) in MessagePack.
    async fn reversed(&self, blob: Binary) -> Binary;
    /// `a + b`.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Returns nothing (a null result).
    async fn void(&self);
    /// Fails with an internal error, whose text only detailed errors show.
    async fn throw(&self) -> Result<(), std::io::Error>;
    /// Fails with a hub error, whose text every client sees.
    async fn throw_hub(&self, message: String) -> Result<(), HubError>;
    /// `value` when it is at most `max`; else a typed error (`OutOfRange`), and `Refused` for
    /// negative values: the generated client narrows them with `isConformanceError`.
    async fn bounded(&self, value: i32, max: i32) -> Result<i32, ConformanceError>;
    /// The W3C trace context the client sent with this invocation (`traceparent`), if any.
    async fn trace_parent(&self, cx: Cx) -> Option<String>;
    /// The caller's connection id.
    async fn connection_id(&self, cx: Cx) -> String;
    /// The caller's user id, if authenticated.
    async fn user_id(&self, cx: Cx) -> Option<String>;
    /// A header of the request that opened the caller's transport.
    async fn header(&self, request: RequestInfo, name: String) -> Option<String>;
    /// A query parameter of the request that opened the caller's transport.
    async fn query(&self, request: RequestInfo, name: String) -> Option<String>;
    /// The caller's transport (`WebSockets`, `ServerSentEvents`, `LongPolling`).
    async fn transport(&self, cx: Cx) -> String;
    /// Waits `ms` and returns it, failing with `cancelled` when the invocation is cancelled.
    async fn sleep(&self, cancel: Cancellation, ms: u64) -> Result<u64, HubError>;
    /// Stores a string on the caller's connection.
    async fn set_state(&self, cx: Cx, value: String);
    /// The string stored on the caller's connection.
    async fn get_state(&self, cx: Cx) -> Option<String>;
    /// Adds the caller to a group.
    async fn join_group(&self, cx: Cx, groups: Groups, group: String) -> Result<(), HubError>;
    /// Removes the caller from a group.
    async fn leave_group(&self, cx: Cx, groups: Groups, group: String) -> Result<(), HubError>;
    /// Adds any connection (on any server) to a group.
    async fn add_to_group(
        &self,
        groups: Groups,
        connection_id: String,
        group: String,
    ) -> Result<(), HubError>;
    /// Removes any connection (on any server) from a group.
    async fn remove_from_group(
        &self,
        groups: Groups,
        connection_id: String,
        group: String,
    ) -> Result<(), HubError>;
    /// The connection ids in a group, sorted.
    async fn group_members(&self, groups: Groups, group: String) -> Result<Vec<String>, HubError>;
    /// The caller's groups, sorted.
    async fn my_groups(&self, cx: Cx, groups: Groups) -> Result<Vec<String>, HubError>;
    /// How many connections the hub has.
    async fn connection_count(&self, hub: HubContext) -> Result<usize, HubError>;
    /// The connection ids of a user, sorted.
    async fn user_connections(
        &self,
        hub: HubContext,
        user: String,
    ) -> Result<Vec<String>, HubError>;

    // Pushes: every target calls the client method `Receive` with (label, text).

    /// `Receive("caller", text)` to the caller.
    async fn send_to_caller(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("others", text)` to everyone but the caller.
    async fn send_to_others(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Item(i)` to the caller for i in 0..count, `delay_ms` apart (stateful reconnect); returns
    /// `count`.
    async fn push_to_caller(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        count: u32,
        delay_ms: u64,
    ) -> u32;
    /// `Receive("all", text)` to everyone.
    async fn send_to_all(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("allExcept", text)` to everyone but the connections `except`.
    async fn send_to_all_except(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        except: Vec<String>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("connection", text)` to one connection.
    async fn send_to_connection(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        id: String,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("connections", text)` to several connections.
    async fn send_to_connections(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        ids: Vec<String>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("group", text)` to a group.
    async fn send_to_group(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        group: String,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("groups", text)` to the members of any of `groups`, each once.
    async fn send_to_groups(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        groups: Vec<String>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("groupExcept", text)` to a group but the connections `except`.
    async fn send_to_group_except(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        group: String,
        except: Vec<String>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("othersInGroup", text)` to a group but the caller.
    async fn send_to_others_in_group(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        group: String,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("user", text)` to every connection of a user.
    async fn send_to_user(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        user: String,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("users", text)` to every connection of any of `users`.
    async fn send_to_users(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        users: Vec<String>,
        text: String,
    ) -> Result<(), HubError>;
    /// `Receive("later", text)` to the caller after `ms`, from outside the hub method, through the
    /// hub context.
    async fn send_later(&self, cx: Cx, ms: u64, text: String);

    // Server-to-client streams.

    /// `0, 1, …, count - 1`, one every `delay_ms`.
    async fn counter(
        &self,
        count: u32,
        delay_ms: u64,
    ) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static;
    /// `0, 1, …, after - 1`, then fails with `the stream broke`.
    async fn failing_stream(
        &self,
        after: u32,
    ) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static;
    /// `0, 1, …` every `delay_ms` until cancelled; then calls `TickerCancelled()` on the caller,
    /// for the tests to see the cancellation.
    async fn ticker(
        &self,
        cx: Cx,
        delay_ms: u64,
    ) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static;

    // Client-to-server streams.

    /// The sum of an uploaded stream of numbers.
    async fn sum(&self, numbers: UploadStream<i64>) -> Result<i64, HubError>;
    /// Each number of an uploaded stream, doubled, as a server stream.
    async fn double(
        &self,
        numbers: UploadStream<i64>,
    ) -> impl Stream<Item = Result<i64, HubError>> + Send + 'static;

    // Client results: the server asks a client and returns what it answered.

    /// Asks the caller `GetAnswer(question)` and returns its answer.
    async fn ask_caller(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        question: String,
    ) -> Result<Value, HubError>;
    /// Asks the connection `id` `GetAnswer(question)` and returns its answer.
    async fn ask_client(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        id: String,
        question: String,
    ) -> Result<Value, HubError>;

    // Connections and the server.

    /// Ends the caller's connection (the client gets a Close and does not reconnect).
    async fn abort(&self, cx: Cx);
    /// Ends the connection `id`; whether it was connected.
    async fn kick(&self, hub: HubContext, id: String) -> Result<bool, HubError>;
    /// Every `(connection id, error)` the on-disconnected hook has seen, in order.
    async fn disconnections(&self) -> Result<Vec<(String, Option<String>)>, HubError>;
    /// How often each lifetime-manager method was called, when the server runs on the counting
    /// manager (`LIFETIME_MANAGER=counting`); `null` otherwise.
    async fn manager_calls(&self) -> Option<BTreeMap<String, u64>>;
    /// Shuts the server down gracefully.
    async fn shutdown(&self);
    /// Records each disconnection for `Disconnections`.
    #[hub(on_disconnected)]
    async fn disconnected(&self, cx: Context, error: Option<String>);
}

/// The conformance hub's state, shared by its three endpoints.
#[derive(Default)]
pub struct ConformanceHub {
    /// What the on-disconnected hook saw: `(connection id, error)`, for the tests to read back.
    disconnections: Mutex<Vec<(String, Option<String>)>>,
    /// The server's shutdown handle, set once it is bound.
    shutdown: Mutex<Option<ShutdownHandle>>,
    /// The counts of the counting lifetime manager, when the hub runs on it.
    manager_calls: Option<Arc<CallCounts>>,
}

impl Conformance for ConformanceHub {
    async fn admin_echo(&self, text: String) -> String {
        text
    }

    async fn even_echo(&self, text: String) -> String {
        text
    }

    async fn echo(&self, text: String) -> String {
        text
    }

    async fn echo_value(&self, value: Value) -> Value {
        value
    }

    async fn echo_raw(&self, value: RawValue) -> RawValue {
        value
    }

    async fn one_second_later(&self, when: Timestamp) -> Timestamp {
        Timestamp {
            seconds: when.seconds.saturating_add(1),
            ..when
        }
    }

    async fn reversed(&self, blob: Binary) -> Binary {
        let mut bytes = blob.0.to_vec();
        bytes.reverse();
        Binary::from(bytes)
    }

    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn void(&self) {}

    async fn throw(&self) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("the database is down"))
    }

    async fn throw_hub(&self, message: String) -> Result<(), HubError> {
        Err(HubError::new(message))
    }

    async fn bounded(&self, value: i32, max: i32) -> Result<i32, ConformanceError> {
        if value < 0 {
            Err(ConformanceError::Refused {
                reason: "negative values are refused".to_owned(),
            })
        } else if value > max {
            Err(ConformanceError::OutOfRange { value, max })
        } else {
            Ok(value)
        }
    }

    async fn trace_parent(&self, cx: Cx) -> Option<String> {
        cx.trace_parent().map(|parent| parent.to_string())
    }

    async fn connection_id(&self, cx: Cx) -> String {
        cx.connection_id().to_owned()
    }

    async fn user_id(&self, cx: Cx) -> Option<String> {
        cx.user_id().map(str::to_owned)
    }

    async fn header(&self, request: RequestInfo, name: String) -> Option<String> {
        request
            .headers()
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    async fn query(&self, request: RequestInfo, name: String) -> Option<String> {
        request.query(&name)
    }

    async fn transport(&self, cx: Cx) -> String {
        format!("{:?}", cx.transport())
    }

    async fn sleep(&self, cancel: Cancellation, ms: u64) -> Result<u64, HubError> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(ms),
            () = cancel.cancelled() => Err(HubError::new("cancelled")),
        }
    }

    async fn set_state(&self, cx: Cx, value: String) {
        cx.insert_state(value);
    }

    async fn get_state(&self, cx: Cx) -> Option<String> {
        cx.state::<String>()
    }

    async fn join_group(&self, cx: Cx, groups: Groups, group: String) -> Result<(), HubError> {
        Ok(groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave_group(&self, cx: Cx, groups: Groups, group: String) -> Result<(), HubError> {
        Ok(groups.remove(cx.connection_id(), &group).await?)
    }

    async fn add_to_group(
        &self,
        groups: Groups,
        connection_id: String,
        group: String,
    ) -> Result<(), HubError> {
        Ok(groups.add(&connection_id, &group).await?)
    }

    async fn remove_from_group(
        &self,
        groups: Groups,
        connection_id: String,
        group: String,
    ) -> Result<(), HubError> {
        Ok(groups.remove(&connection_id, &group).await?)
    }

    async fn group_members(&self, groups: Groups, group: String) -> Result<Vec<String>, HubError> {
        Ok(groups.members(&group).await?)
    }

    async fn my_groups(&self, cx: Cx, groups: Groups) -> Result<Vec<String>, HubError> {
        Ok(groups.of(cx.connection_id()).await?)
    }

    async fn connection_count(&self, hub: HubContext) -> Result<usize, HubError> {
        Ok(hub.connection_count().await?)
    }

    async fn user_connections(
        &self,
        hub: HubContext,
        user: String,
    ) -> Result<Vec<String>, HubError> {
        Ok(hub.user_connections(&user).await?)
    }

    async fn send_to_caller(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        text: String,
    ) -> Result<(), HubError> {
        clients.caller().receive("caller", &text).await?;
        Ok(())
    }

    async fn send_to_others(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        text: String,
    ) -> Result<(), HubError> {
        clients.others().receive("others", &text).await?;
        Ok(())
    }

    async fn push_to_caller(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        count: u32,
        delay_ms: u64,
    ) -> u32 {
        let caller = clients.caller();
        for i in 0..count {
            if caller.item(i).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        count
    }

    async fn send_to_all(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        text: String,
    ) -> Result<(), HubError> {
        clients.all().receive("all", &text).await?;
        Ok(())
    }

    async fn send_to_all_except(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        except: Vec<String>,
        text: String,
    ) -> Result<(), HubError> {
        clients
            .all_except(except)
            .receive("allExcept", &text)
            .await?;
        Ok(())
    }

    async fn send_to_connection(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        id: String,
        text: String,
    ) -> Result<(), HubError> {
        clients.client(id).receive("connection", &text).await?;
        Ok(())
    }

    async fn send_to_connections(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        ids: Vec<String>,
        text: String,
    ) -> Result<(), HubError> {
        clients.clients(ids).receive("connections", &text).await?;
        Ok(())
    }

    async fn send_to_group(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        group: String,
        text: String,
    ) -> Result<(), HubError> {
        clients.group(group).receive("group", &text).await?;
        Ok(())
    }

    async fn send_to_groups(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        groups: Vec<String>,
        text: String,
    ) -> Result<(), HubError> {
        clients.groups(groups).receive("groups", &text).await?;
        Ok(())
    }

    async fn send_to_group_except(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        group: String,
        except: Vec<String>,
        text: String,
    ) -> Result<(), HubError> {
        clients
            .group_except(group, except)
            .receive("groupExcept", &text)
            .await?;
        Ok(())
    }

    async fn send_to_others_in_group(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        group: String,
        text: String,
    ) -> Result<(), HubError> {
        clients
            .others_in_group(group)
            .receive("othersInGroup", &text)
            .await?;
        Ok(())
    }

    async fn send_to_user(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        user: String,
        text: String,
    ) -> Result<(), HubError> {
        clients.user(user).receive("user", &text).await?;
        Ok(())
    }

    async fn send_to_users(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        users: Vec<String>,
        text: String,
    ) -> Result<(), HubError> {
        clients.users(users).receive("users", &text).await?;
        Ok(())
    }

    async fn send_later(&self, cx: Cx, ms: u64, text: String) {
        let hub = cx.hub().clone();
        let id = cx.connection_id().to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if let Err(error) = hub.clients().client(id).receive("later", &text).await {
                tracing::warn!(%error, "SendLater could not send");
            }
        });
    }

    async fn counter(
        &self,
        count: u32,
        delay_ms: u64,
    ) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static {
        ticks(count, delay_ms)
    }

    async fn failing_stream(
        &self,
        after: u32,
    ) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static {
        ticks(after, 0).chain(futures_util::stream::once(async {
            Err(HubError::new("the stream broke"))
        }))
    }

    async fn ticker(
        &self,
        cx: Cx,
        delay_ms: u64,
    ) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static {
        // Endless until cancelled; records the cancellation for the tests.
        let cancellation = cx.cancellation().clone();
        let id = cx.connection_id().to_owned();
        let hub = cx.hub().clone();
        tokio::spawn(async move {
            cancellation.cancelled().await;
            if let Err(error) = hub.clients().client(id).ticker_cancelled().await {
                tracing::warn!(%error, "the ticker's cancellation could not be reported");
            }
        });
        ticks(u32::MAX, delay_ms)
    }

    async fn sum(&self, mut numbers: UploadStream<i64>) -> Result<i64, HubError> {
        let mut total = 0i64;
        while let Some(number) = numbers.next().await {
            total += number?;
        }
        Ok(total)
    }

    async fn double(
        &self,
        numbers: UploadStream<i64>,
    ) -> impl Stream<Item = Result<i64, HubError>> + Send + 'static {
        numbers.map(|number| number.map(|n| n * 2))
    }

    async fn ask_caller(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        question: String,
    ) -> Result<Value, HubError> {
        Ok(clients.caller().get_answer(question).await?)
    }

    async fn ask_client(
        &self,
        clients: CallerClients<ConformanceClientProxy>,
        id: String,
        question: String,
    ) -> Result<Value, HubError> {
        Ok(clients.client(id).get_answer(question).await?)
    }

    async fn abort(&self, cx: Cx) {
        cx.abort();
    }

    async fn kick(&self, hub: HubContext, id: String) -> Result<bool, HubError> {
        Ok(hub.abort(&id).await?)
    }

    async fn manager_calls(&self) -> Option<BTreeMap<String, u64>> {
        self.manager_calls.as_ref().map(|counts| counts.snapshot())
    }

    async fn disconnections(&self) -> Result<Vec<(String, Option<String>)>, HubError> {
        let disconnections = self
            .disconnections
            .lock()
            .map_err(|_| HubError::new("log poisoned"))?;
        Ok(disconnections.clone())
    }

    async fn shutdown(&self) {
        if let Some(handle) = self.shutdown.lock().ok().and_then(|h| h.clone()) {
            handle.shutdown();
        }
    }

    async fn disconnected(&self, cx: Context, error: Option<String>) {
        if let Ok(mut disconnections) = self.disconnections.lock() {
            disconnections.push((cx.connection_id().to_owned(), error));
        }
    }
}

/// `count` items `0, 1, …`, one every `delay_ms`.
fn ticks(
    count: u32,
    delay_ms: u64,
) -> impl futures_util::Stream<Item = Result<u32, HubError>> + Send {
    futures_util::stream::unfold(0u32, move |i| async move {
        if i >= count {
            return None;
        }
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        Some((Ok(i), i + 1))
    })
}

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

fn config() -> HubConfig {
    let mut config = HubConfig::new().cors(CorsConfig::allow_origins([CORS_ORIGIN]));
    if let Some(d) = env_ms("KEEP_ALIVE_MS") {
        config = config.keep_alive_interval(d);
    }
    if let Some(d) = env_ms("CLIENT_TIMEOUT_MS") {
        config = config.client_timeout(d);
    }
    if let Some(d) = env_ms("HANDSHAKE_TIMEOUT_MS") {
        config = config.handshake_timeout(d);
    }
    if let Some(d) = env_ms("DISCONNECT_TIMEOUT_MS") {
        config = config.disconnect_timeout(d);
    }
    if let Some(d) = env_ms("SHUTDOWN_TIMEOUT_MS") {
        config = config.shutdown_timeout(d);
    }
    if let Some(d) = env_ms("POLL_TIMEOUT_MS") {
        config = config.long_polling_timeout(d);
    }
    if let Some(size) = std::env::var("MAX_MESSAGE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config = config.max_message_size(size);
    }
    if let Some(queue) = std::env::var("OUTBOUND_QUEUE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config = config.outbound_queue_capacity(queue);
    }
    config
}

/// The generated TypeScript client of the conformance hub (committed in `client/`, checked by the
/// test below and used by the Node and type tests).
fn client_package() -> hub_server::codegen::TypeScriptPackage {
    hub_server::codegen::TypeScriptPackage::new("conformance-client")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `conformance --emit-ts examples/conformance/client` regenerates the typed TypeScript client.
    if client_package().run_from_args()? {
        return Ok(());
    }
    // Opt-in observability: OTLP_ENDPOINT sends metrics and spans to that OTLP/HTTP collector;
    // PROMETHEUS=1 serves /metrics (and /stats) instead. Both install the process's recorder.
    let otlp = match std::env::var("OTLP_ENDPOINT") {
        Ok(endpoint) => Some(hub_server::observability::OtlpExport::install(
            hub_server::observability::OtlpConfig::new(endpoint)
                .service_name("conformance")
                .interval(Duration::from_millis(500)),
        )?),
        Err(_) => None,
    };
    let prometheus = match std::env::var("PROMETHEUS").as_deref() {
        Ok("1") => Some(hub_server::observability::PrometheusMetrics::install()?),
        _ => None,
    };
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::from_default_env())
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .with(
                otlp.as_ref().map(|otlp| {
                    tracing_opentelemetry::layer().with_tracer(otlp.tracer("conformance"))
                }),
            )
            .init();
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let counts = match std::env::var("LIFETIME_MANAGER").as_deref() {
        Ok("counting") => Some(Arc::new(CallCounts::default())),
        Ok("local") | Err(_) => None,
        Ok(other) => {
            return Err(format!("LIFETIME_MANAGER is `local` or `counting`, not `{other}`").into())
        }
    };
    let backplane = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let mut config = RedisConfig::new(url);
            if let Some(ms) = env_ms("REDIS_HEARTBEAT_MS") {
                config = config.heartbeat(ms);
            }
            Some(RedisBackplane::connect(config).await?)
        }
        Err(_) => None,
    };
    let hub = Arc::new(ConformanceHub {
        manager_calls: counts.clone(),
        ..ConformanceHub::default()
    });
    // Every hub on the local manager, or on the counting one that wraps it.
    let endpoint = |config: HubConfig| {
        let endpoint = HubEndpoint::new(ServeConformance::from_arc(hub.clone())).config(config);
        match (&counts, &backplane) {
            (Some(counts), _) => endpoint.lifetime_manager(CountingManager::new(counts.clone())),
            (None, Some(backplane)) => endpoint.lifetime_manager(backplane.manager()),
            (None, None) => endpoint,
        }
    };
    let config = config();
    let mut builder = HubServer::builder();
    if let Some(metrics) = prometheus {
        builder = builder
            .metrics_endpoint("/metrics", metrics, Authorization::anyone())
            .stats_endpoint("/stats", Authorization::all([Requirement::role(["admin"])]));
    }
    if let Ok(node_id) = std::env::var("NODE_ID") {
        builder = builder.node_id(node_id);
    }
    if let Ok(secret) = std::env::var("CONNECTION_TOKEN_KEY") {
        builder = builder.connection_token_key(secret);
    }
    if let (Ok(cert), Ok(key)) = (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        builder = builder.tls(hub_server::TlsConfig::from_pem_files(cert, key)?);
    }
    let server = builder
        .authenticator(|request: &RequestInfo| {
            let result = authenticate_sync(request);
            async move { result }
        })
        .endpoint("/hub", endpoint(config.clone()))
        .endpoint(
            "/no-ws",
            endpoint(
                config
                    .clone()
                    .transports([TransportType::ServerSentEvents, TransportType::LongPolling]),
            ),
        )
        .endpoint("/detailed", endpoint(config.clone().detailed_errors(true)))
        // Generated clients of another contract are refused here (logged elsewhere).
        .endpoint(
            "/strict-contract",
            endpoint(
                config
                    .clone()
                    .contract_check(hub_server::ContractCheck::Refuse),
            ),
        )
        .endpoint(
            "/refreshing",
            endpoint(config.clone().authentication_refresh(true)),
        )
        .endpoint(
            "/refreshing-lenient",
            endpoint(
                config
                    .clone()
                    .authentication_refresh(true)
                    .close_on_authentication_expiration(false),
            ),
        )
        .endpoint("/secure", HubEndpoint::new(secure_hub()).config(config))
        .policy("even-name", |principal: &Principal, _: &RequestInfo| {
            let even = principal
                .user_id
                .as_ref()
                .is_some_and(|id| id.chars().count() % 2 == 0);
            async move { even }
        })
        // Without the hub protocol: every chunk a client sends comes back; a chunk `binary`
        // switches WebSocket replies to binary frames, `bye` ends the connection from the server.
        .connection_handler("/raw-echo", |mut connection: RawConnection| async move {
            while let Some(bytes) = connection.recv().await {
                if &bytes[..] == b"bye" {
                    break;
                }
                if &bytes[..] == b"binary" && connection.use_binary_frames().await.is_err() {
                    break;
                }
                if connection.send(bytes).await.is_err() {
                    break;
                }
            }
        })
        .bind(("127.0.0.1", port))
        .await?;
    if let Ok(mut slot) = hub.shutdown.lock() {
        *slot = Some(server.shutdown_handle());
    }
    #[allow(clippy::print_stdout)]
    {
        println!("listening on {}", server.local_addr().port());
    }
    server.serve().await?;
    if let Some(otlp) = otlp {
        // What is still buffered goes out before the process ends.
        tokio::task::spawn_blocking(move || otlp.shutdown()).await??;
    }
    Ok(())
}

/// The bearer token is the user id; `user#role1,role2` also gives roles, and `…@<ms since the
/// epoch>` an expiry (after it, the token no longer authenticates).
fn authenticate_sync(request: &RequestInfo) -> Result<Principal, Unauthorized> {
    match request.bearer_token().as_deref() {
        Some("reject") => Err(Unauthorized),
        Some(token) => {
            let (token, expires_at) = match token.rsplit_once('@') {
                Some((token, ms)) => {
                    let ms = ms.parse::<u64>().map_err(|_| Unauthorized)?;
                    (token, Some(UNIX_EPOCH + Duration::from_millis(ms)))
                }
                None => (token, None),
            };
            if expires_at.is_some_and(|at| at <= SystemTime::now()) {
                return Err(Unauthorized);
            }
            let (user, roles) = token.split_once('#').unwrap_or((token, ""));
            let mut principal = Principal::user(user);
            principal.expires_at = expires_at;
            if !roles.is_empty() {
                principal
                    .claims
                    .insert(ROLE_CLAIM.to_owned(), roles.to_owned());
            }
            Ok(principal)
        }
        None => Ok(Principal::anonymous()),
    }
}

/// `/secure`: only authenticated users may connect.
fn secure_hub() -> HubMethods<Context> {
    HubMethods::new()
        .method("Echo", |_cx: Context, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .authorize_hub(Requirement::Authenticated)
}

#[cfg(test)]
mod tests {
    /// The committed client is what the generator writes from this hub today (as tonic checks its
    /// generated code).
    #[test]
    fn generated_client_is_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/client");
        if let Err(error) = super::client_package().verify(&dir) {
            panic!("{error}");
        }
    }
}
