//! The dashboard hub: a live metrics stream, notifications to one user or to a topic, an
//! admin-only broadcast and a count of who is online. The [`Dashboard`] trait is what browsers
//! invoke; [`DashboardClient`] is what the server pushes to them. Both become the typed
//! TypeScript client in `examples/dashboard/client/`.
//!
//! Every connection is authenticated (see [`crate::auth`]): `cx.user_id()` is the demo user the
//! bearer token names and the principal's `role` claim says whether they are an admin. Topics are
//! the hub's groups (one group per topic); a user's notifications go to `clients.user(..)`, i.e.
//! to every connection of that user. Presence is kept in [`DashboardServer`]: connections per
//! user, updated by the `on_connected` / `on_disconnected` hooks, which push the new count to
//! everyone.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{stream, Stream};
use hub_server::{hub, hub_client, Context, HubError, LifetimeError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::auth::{self, Role};

/// The topics one can subscribe to and publish on.
pub const TOPICS: [&str; 3] = ["deploys", "incidents", "billing"];
/// The longest notification or announcement, in characters.
pub const MAX_TEXT_CHARS: usize = 280;
/// The shortest interval between two metrics samples, in milliseconds.
pub const MIN_INTERVAL_MS: u32 = 50;
/// The longest interval between two metrics samples, in milliseconds.
pub const MAX_INTERVAL_MS: u32 = 10_000;

/// One sample of the (simulated) server's health, as the `Metrics` stream sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSample {
    /// 1 for the stream's first sample, then one more for each.
    #[ts(type = "number")] // a stream would run for millions of years before reaching 2^53
    pub seq: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    #[ts(type = "number")]
    pub at: u64,
    /// CPU use, 0–100 %.
    #[ts(type = "number")] // always finite: clamped to 0..=100
    pub cpu_percent: f64,
    /// Memory in use, in MiB.
    #[ts(type = "number")] // always finite: clamped to 256..=16384
    pub memory_mb: f64,
    /// Requests served per second.
    #[ts(type = "number")] // always finite: clamped to 0..=5000
    pub requests_per_second: f64,
    /// Connections to this hub right now (real, not simulated).
    pub connections: u32,
}

/// Whom a notification was sent to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NotificationTarget {
    /// Every connection of one user.
    User {
        /// The user.
        user: String,
    },
    /// Everyone subscribed to a topic.
    Topic {
        /// The topic.
        topic: String,
    },
}

/// A notification, to one user or to a topic's subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Increases with every notification and announcement the server accepts.
    #[ts(type = "number")] // stays far below 2^53
    pub id: u64,
    /// The user who sent it.
    pub from: String,
    /// Whom it was sent to.
    pub to: NotificationTarget,
    /// The text, 1 to 280 characters.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    #[ts(type = "number")]
    pub sent_at: u64,
}

/// What `NotifyUser` did: the notification, and how many connections of the user it reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The notification as sent.
    pub notification: Notification,
    /// The user's connections it went to (0 when they are offline: it is not kept).
    pub connections: u32,
}

/// An admin's message to everyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Announcement {
    /// Increases with every notification and announcement the server accepts.
    #[ts(type = "number")]
    pub id: u64,
    /// The admin who sent it.
    pub from: String,
    /// The text, 1 to 280 characters.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    #[ts(type = "number")]
    pub sent_at: u64,
}

/// Who is online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The users with at least one connection, sorted.
    pub users: Vec<String>,
    /// How many connections they have in all.
    pub connections: u32,
    /// Increases with every change: pushes may overtake each other, keep the highest.
    #[ts(type = "number")]
    pub version: u64,
}

/// Who you are, as the hub sees your connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Your user name.
    pub user: String,
    /// `admin` or `user`.
    pub role: String,
    /// The transport your connection uses (`WebSockets`, `ServerSentEvents` or `LongPolling`).
    pub transport: String,
    /// The topics that exist.
    pub topics: Vec<String>,
    /// The topics this connection is subscribed to (none on a new connection).
    pub subscribed: Vec<String>,
    /// Who is online.
    pub presence: Presence,
}

/// What the dashboard server calls on its clients.
#[hub_client]
pub trait DashboardClient {
    /// A notification for you, or for a topic you subscribed to.
    async fn notification(&self, notification: Notification);
    /// An admin's announcement to everyone.
    async fn announcement(&self, announcement: Announcement);
    /// Someone connected or disconnected.
    async fn presence_changed(&self, presence: Presence);
}

/// The context of a dashboard hub method, handing out typed callbacks.
pub type Cx = Context<DashboardClientProxy>;

/// The dashboard hub: what browsers invoke. Every connection is signed in (a bearer token from
/// `POST /api/login`).
#[hub(route = "/dashboard", client = DashboardClient)]
pub trait Dashboard {
    /// Who you are, your transport, the topics and who is online.
    async fn session(&self, cx: Cx) -> Result<Session, HubError>;
    /// Streams the server's health, a sample every interval (50–10 000 ms), the first at once.
    /// A limit ends it after that many samples; without one (`null`) it runs until you cancel.
    async fn metrics(
        &self,
        cx: Cx,
        interval_ms: u32,
        limit: Option<u32>,
    ) -> Result<impl Stream<Item = MetricsSample> + Send + 'static, HubError>;
    /// Subscribes this connection to a topic; returns its topics.
    async fn subscribe(&self, cx: Cx, topic: String) -> Result<Vec<String>, HubError>;
    /// Unsubscribes this connection from a topic; returns its topics.
    async fn unsubscribe(&self, cx: Cx, topic: String) -> Result<Vec<String>, HubError>;
    /// Sends a notification (1–280 characters) to everyone subscribed to a topic.
    async fn publish(&self, cx: Cx, topic: String, text: String) -> Result<Notification, HubError>;
    /// Sends a notification (1–280 characters) to every connection of one user.
    async fn notify_user(&self, cx: Cx, user: String, text: String) -> Result<Delivery, HubError>;
    /// Announces something (1–280 characters) to everyone.
    #[authorize(role = "admin")]
    async fn broadcast(&self, cx: Cx, text: String) -> Result<Announcement, HubError>;
    /// Counts the connection in and tells everyone who is online.
    #[hub(on_connected)]
    async fn connected(&self, cx: Cx) -> Result<(), HubError>;
    /// Counts the connection out and tells everyone who is online.
    #[hub(on_disconnected)]
    async fn disconnected(&self, cx: Cx, error: Option<String>);
}

/// The simulated machine the metrics describe: a mean-reverting random walk, advanced by the
/// clock (one step per 100 ms), shared by every stream so that all pages see the same machine.
struct Simulator {
    /// xorshift64* state (never 0).
    rng: u64,
    cpu: f64,
    memory: f64,
    rps: f64,
    stepped: Instant,
}

impl Simulator {
    const STEP: Duration = Duration::from_millis(100);

    fn new() -> Self {
        // std's RandomState is seeded from the OS's random source: plenty for a simulation.
        let seed = RandomState::new().build_hasher().finish() | 1;
        Simulator {
            rng: seed,
            cpu: 35.0,
            memory: 2048.0,
            rps: 250.0,
            stepped: Instant::now(),
        }
    }

    /// A uniform number in [-0.5, 0.5).
    fn noise(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        // 53 random bits → [0, 1): exact in an f64.
        (bits as f64) / ((1u64 << 53) as f64) - 0.5
    }

    fn step(&mut self) {
        let noise = self.noise();
        self.cpu = (self.cpu + (35.0 - self.cpu) * 0.08 + noise * 9.0).clamp(0.0, 100.0);
        let noise = self.noise();
        self.memory =
            (self.memory + (2048.0 - self.memory) * 0.03 + noise * 48.0).clamp(256.0, 16384.0);
        let noise = self.noise();
        self.rps = (self.rps + (250.0 - self.rps) * 0.08 + noise * 50.0).clamp(0.0, 5000.0);
    }

    /// The machine now: steps the walk up to the clock (at most 50 steps at a time).
    fn read(&mut self) -> (f64, f64, f64) {
        let mut steps = 0;
        while self.stepped.elapsed() >= Self::STEP && steps < 50 {
            self.step();
            self.stepped += Self::STEP;
            steps += 1;
        }
        if steps == 50 {
            self.stepped = Instant::now();
        }
        (round1(self.cpu), round1(self.memory), round1(self.rps))
    }
}

/// Rounds to one decimal (finite in, finite out).
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// What the dashboard remembers.
struct State {
    /// Connections per online user.
    online: BTreeMap<String, u32>,
    presence_version: u64,
    next_id: u64,
}

/// What the metrics streams share with the hub (they outlive the call that started them).
struct Shared {
    simulator: Mutex<Simulator>,
    streams: AtomicUsize,
    /// Becomes `true` when the server stops: every stream ends.
    stopping: watch::Sender<bool>,
}

/// Counts a running metrics stream while it lives: the hub drops the stream when the client
/// cancels it (or disconnects), and this with it.
struct StreamGuard(Arc<Shared>);

impl StreamGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(shared)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The dashboard's in-memory state; implements [`Dashboard`].
pub struct DashboardServer {
    state: Mutex<State>,
    shared: Arc<Shared>,
}

impl Default for DashboardServer {
    fn default() -> Self {
        DashboardServer {
            state: Mutex::new(State {
                online: BTreeMap::new(),
                presence_version: 0,
                next_id: 0,
            }),
            shared: Arc::new(Shared {
                simulator: Mutex::new(Simulator::new()),
                streams: AtomicUsize::new(0),
                stopping: watch::channel(false).0,
            }),
        }
    }
}

impl DashboardServer {
    /// How many metrics streams are running (they stop when their client cancels them).
    pub fn running_streams(&self) -> usize {
        self.shared.streams.load(Ordering::Relaxed)
    }

    /// Ends every metrics stream, now and from now on. Call it before shutting the hubs down:
    /// a graceful shutdown waits for running invocations (streams included) for the hub's
    /// shutdown timeout, and these streams would otherwise never end by themselves.
    pub fn stop_streams(&self) {
        self.shared.stopping.send_replace(true);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough maps; keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_id(&self) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        state.next_id
    }

    /// The presence as it is now.
    fn presence(&self) -> Presence {
        let state = self.state();
        Presence {
            users: state.online.keys().cloned().collect(),
            connections: state.online.values().sum(),
            version: state.presence_version,
        }
    }

    /// Changes a user's connection count by `delta` and returns the new presence.
    fn count(&self, user: &str, delta: i32) -> Presence {
        {
            let mut state = self.state();
            let count = state.online.entry(user.to_owned()).or_insert(0);
            *count = count.saturating_add_signed(delta);
            if *count == 0 {
                state.online.remove(user);
            }
            state.presence_version += 1;
        }
        self.presence()
    }
}

impl Dashboard for DashboardServer {
    async fn session(&self, cx: Cx) -> Result<Session, HubError> {
        let user = signed_in(&cx)?;
        let mut subscribed = cx.groups().of(cx.connection_id()).await?;
        subscribed.sort();
        Ok(Session {
            user: user.to_owned(),
            role: role(&cx).as_str().to_owned(),
            transport: format!("{:?}", cx.transport()),
            topics: TOPICS.iter().map(|topic| (*topic).to_owned()).collect(),
            subscribed,
            presence: self.presence(),
        })
    }

    async fn metrics(
        &self,
        cx: Cx,
        interval_ms: u32,
        limit: Option<u32>,
    ) -> Result<impl Stream<Item = MetricsSample> + Send + 'static, HubError> {
        signed_in(&cx)?;
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms) {
            return Err(HubError::new(format!(
                "the interval is {MIN_INTERVAL_MS} to {MAX_INTERVAL_MS} ms, not {interval_ms}"
            )));
        }
        let mut ticker = tokio::time::interval(Duration::from_millis(u64::from(interval_ms)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let guard = StreamGuard::new(self.shared.clone());
        let stopping = self.shared.stopping.subscribe();
        let hub = cx.hub().clone();
        let limit = limit.map(u64::from);
        // Ends after `limit` samples or when the server stops; otherwise the hub drops it when
        // the client cancels.
        Ok(stream::unfold(
            (ticker, stopping, guard, 0_u64),
            move |(mut ticker, mut stopping, guard, seq)| {
                let hub = hub.clone();
                async move {
                    if limit.is_some_and(|limit| seq >= limit) {
                        return None;
                    }
                    tokio::select! {
                        _ = ticker.tick() => {}
                        _ = stopping.wait_for(|stopping| *stopping) => return None,
                    }
                    let connections = hub
                        .connection_count()
                        .await
                        .map_or(0, |count| u32::try_from(count).unwrap_or(u32::MAX));
                    let (cpu_percent, memory_mb, requests_per_second) = guard
                        .0
                        .simulator
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .read();
                    let sample = MetricsSample {
                        seq: seq + 1,
                        at: now_ms(),
                        cpu_percent,
                        memory_mb,
                        requests_per_second,
                        connections,
                    };
                    Some((sample, (ticker, stopping, guard, seq + 1)))
                }
            },
        ))
    }

    async fn subscribe(&self, cx: Cx, topic: String) -> Result<Vec<String>, HubError> {
        signed_in(&cx)?;
        let topic = known_topic(&topic)?;
        cx.groups().add(cx.connection_id(), topic).await?;
        Ok(self.topics_of(&cx).await?)
    }

    async fn unsubscribe(&self, cx: Cx, topic: String) -> Result<Vec<String>, HubError> {
        signed_in(&cx)?;
        let topic = known_topic(&topic)?;
        cx.groups().remove(cx.connection_id(), topic).await?;
        Ok(self.topics_of(&cx).await?)
    }

    async fn publish(&self, cx: Cx, topic: String, text: String) -> Result<Notification, HubError> {
        let from = signed_in(&cx)?.to_owned();
        let topic = known_topic(&topic)?;
        let text = validate_text(&text)?;
        let notification = Notification {
            id: self.next_id(),
            from,
            to: NotificationTarget::Topic {
                topic: topic.to_owned(),
            },
            text,
            sent_at: now_ms(),
        };
        cx.clients()
            .group(topic)
            .notification(&notification)
            .await?;
        Ok(notification)
    }

    async fn notify_user(&self, cx: Cx, user: String, text: String) -> Result<Delivery, HubError> {
        let from = signed_in(&cx)?.to_owned();
        let user = user.trim().to_lowercase();
        if auth::user(&user).is_none() {
            return Err(HubError::new(format!(
                "there is no user called `{user}`; the users are {}",
                auth::user_names().join(", ")
            )));
        }
        let text = validate_text(&text)?;
        let notification = Notification {
            id: self.next_id(),
            from,
            to: NotificationTarget::User { user: user.clone() },
            text,
            sent_at: now_ms(),
        };
        let connections = cx.hub().user_connections(&user).await?.len();
        cx.clients().user(&user).notification(&notification).await?;
        Ok(Delivery {
            notification,
            connections: u32::try_from(connections).unwrap_or(u32::MAX),
        })
    }

    async fn broadcast(&self, cx: Cx, text: String) -> Result<Announcement, HubError> {
        // Admins only: `#[authorize(role = "admin")]` refused everyone else before this ran.
        let from = signed_in(&cx)?.to_owned();
        let text = validate_text(&text)?;
        let announcement = Announcement {
            id: self.next_id(),
            from,
            text,
            sent_at: now_ms(),
        };
        cx.clients().all().announcement(&announcement).await?;
        Ok(announcement)
    }

    async fn connected(&self, cx: Cx) -> Result<(), HubError> {
        // The authenticator refuses requests without a valid token, so this is a second lock on
        // the door: a connection without a user (e.g. an anonymous test client) is closed.
        let user = signed_in(&cx)?;
        let presence = self.count(user, 1);
        cx.hub().clients().all().presence_changed(&presence).await?;
        Ok(())
    }

    async fn disconnected(&self, cx: Cx, _error: Option<String>) {
        let Some(user) = cx.user_id() else {
            return;
        };
        let presence = self.count(user, -1);
        if let Err(error) = cx.hub().clients().all().presence_changed(&presence).await {
            tracing::warn!(%error, "presence could not be announced");
        }
    }
}

impl DashboardServer {
    /// The topics the caller's connection is subscribed to, sorted.
    async fn topics_of(&self, cx: &Cx) -> Result<Vec<String>, LifetimeError> {
        let mut topics = cx.groups().of(cx.connection_id()).await?;
        topics.sort();
        Ok(topics)
    }
}

/// The caller's user name; every connection has one unless something let an anonymous one in.
fn signed_in(cx: &Cx) -> Result<&str, HubError> {
    cx.user_id()
        .ok_or_else(|| HubError::new("sign in first: this hub needs a bearer token"))
}

/// The caller's role, from the principal's `role` claim.
fn role(cx: &Cx) -> Role {
    Role::from_claims(&cx.principal().claims)
}

fn known_topic(topic: &str) -> Result<&'static str, HubError> {
    let wanted = topic.trim();
    TOPICS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(wanted))
        .copied()
        .ok_or_else(|| {
            HubError::new(format!(
                "there is no topic called `{wanted}`; the topics are {}",
                TOPICS.join(", ")
            ))
        })
}

/// Trims the text and checks its length.
fn validate_text(text: &str) -> Result<String, HubError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(HubError::new("a notification needs some text"));
    }
    let count = text.chars().count();
    if count > MAX_TEXT_CHARS {
        return Err(HubError::new(format!(
            "notifications are at most {MAX_TEXT_CHARS} characters (this one has {count})"
        )));
    }
    Ok(text.to_owned())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
