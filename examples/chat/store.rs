//! Where the chat keeps what every server of a deployment must see alike: the rooms, each room's
//! last [`HISTORY`] messages, the message ids, and who has which nickname. [`ChatStore::memory`]
//! keeps it in this process (one server, the default); [`ChatStore::redis`] keeps it in Redis, so
//! that several chat servers on one Redis (and one Redis backplane) serve one chat.
//!
//! What only concerns this server's own connections (a connection's nickname as seen by its own
//! server, the rooms it joined) stays in [`ChatServer`](crate::hub::ChatServer).
//!
//! Redis keys, under the prefix given to [`ChatStore::redis`] (`chat`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `chat:state:rooms` | set | the room names |
//! | `chat:state:history:{room}` | list | the room's last messages as JSON, oldest first |
//! | `chat:state:next-id` | string | the last message id handed out (`INCR`) |
//! | `chat:state:nicknames` | hash | connection id → nickname |
//! | `chat:state:owners` | hash | lowercased nickname → connection id |
//! | `chat:state:activity` | channel | room events, for every server's `RoomActivity` streams |
//!
//! Nothing expires. A server that crashes leaves its connections' nicknames behind; the hub takes
//! such a nickname over when someone asks for it and its owner is no longer connected anywhere
//! (see [`ChatStore::claim_nickname`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use hub_server::HubError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::hub::{ChatMessage, RoomEvent, DEFAULT_ROOMS, HISTORY};

/// How long a Redis command may take before the invocation that needed it fails.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the activity subscriber waits before reconnecting after losing Redis.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// The outcome of [`ChatStore::claim_nickname`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The nickname is now the connection's.
    Claimed,
    /// Another connection has it.
    Taken {
        /// The connection that has it (it may have ended with a server that crashed).
        owner: String,
    },
}

/// The chat's shared state: in this process, or in Redis for several servers.
pub enum ChatStore {
    /// One server: everything in this process.
    Memory(MemoryStore),
    /// Several servers on one Redis.
    Redis(RedisStore),
}

impl ChatStore {
    /// A store in this process, holding the [`DEFAULT_ROOMS`].
    pub fn memory() -> Self {
        ChatStore::Memory(MemoryStore::default())
    }

    /// A store in the Redis at `url`, its keys under `{prefix}:state:`. Creates the
    /// [`DEFAULT_ROOMS`] if they are missing and subscribes to the room activity of every server
    /// (reconnecting by itself after an outage). Must be called inside a Tokio runtime.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(ChatStore::Redis(RedisStore::connect(url, prefix).await?))
    }

    /// Which kind of store this is, for the server's first lines.
    pub fn describe(&self) -> &'static str {
        match self {
            ChatStore::Memory(_) => "in memory, one server",
            ChatStore::Redis(_) => "in Redis, shared by every chat server on it",
        }
    }

    /// The room names, sorted.
    pub async fn rooms(&self) -> Result<Vec<String>, HubError> {
        match self {
            ChatStore::Memory(store) => Ok(store.lock().rooms.keys().cloned().collect()),
            ChatStore::Redis(store) => {
                let mut rooms: Vec<String> = store
                    .connection()
                    .smembers(store.key("rooms"))
                    .await
                    .map_err(unavailable)?;
                rooms.sort();
                Ok(rooms)
            }
        }
    }

    /// Whether the room exists.
    pub async fn room_exists(&self, room: &str) -> Result<bool, HubError> {
        match self {
            ChatStore::Memory(store) => Ok(store.lock().rooms.contains_key(room)),
            ChatStore::Redis(store) => store
                .connection()
                .sismember(store.key("rooms"), room)
                .await
                .map_err(unavailable),
        }
    }

    /// Creates a room; `false` when it already exists.
    pub async fn create_room(&self, room: &str) -> Result<bool, HubError> {
        match self {
            ChatStore::Memory(store) => {
                let mut memory = store.lock();
                if memory.rooms.contains_key(room) {
                    return Ok(false);
                }
                memory
                    .rooms
                    .insert(room.to_owned(), VecDeque::with_capacity(HISTORY));
                Ok(true)
            }
            ChatStore::Redis(store) => {
                let added: usize = store
                    .connection()
                    .sadd(store.key("rooms"), room)
                    .await
                    .map_err(unavailable)?;
                Ok(added == 1)
            }
        }
    }

    /// The room's last [`HISTORY`] messages, oldest first; `None` when there is no such room.
    pub async fn history(&self, room: &str) -> Result<Option<Vec<ChatMessage>>, HubError> {
        match self {
            ChatStore::Memory(store) => Ok(store
                .lock()
                .rooms
                .get(room)
                .map(|history| history.iter().cloned().collect())),
            ChatStore::Redis(store) => {
                let (exists, entries): (bool, Vec<String>) = redis::pipe()
                    .sismember(store.key("rooms"), room)
                    .lrange(store.history_key(room), 0, -1)
                    .query_async(&mut store.connection())
                    .await
                    .map_err(unavailable)?;
                if !exists {
                    return Ok(None);
                }
                let history = entries
                    .iter()
                    .filter_map(|entry| match serde_json::from_str(entry) {
                        Ok(message) => Some(message),
                        Err(error) => {
                            tracing::warn!(%error, %room, "skipped a stored message that is not one");
                            None
                        }
                    })
                    .collect();
                Ok(Some(history))
            }
        }
    }

    /// A new message id, greater than every one handed out before (by any server).
    pub async fn next_id(&self) -> Result<u64, HubError> {
        match self {
            ChatStore::Memory(store) => {
                let mut memory = store.lock();
                memory.next_id += 1;
                Ok(memory.next_id)
            }
            ChatStore::Redis(store) => store
                .connection()
                .incr(store.key("next-id"), 1u64)
                .await
                .map_err(unavailable),
        }
    }

    /// Adds a message to its room's history (which keeps the last [`HISTORY`]) and publishes it
    /// to the room's activity streams.
    pub async fn append(&self, message: &ChatMessage) -> Result<(), HubError> {
        let event = RoomEvent::Message {
            message: message.clone(),
        };
        match self {
            ChatStore::Memory(store) => {
                {
                    let mut memory = store.lock();
                    if let Some(history) = memory.rooms.get_mut(&message.room) {
                        if history.len() == HISTORY {
                            history.pop_front();
                        }
                        history.push_back(message.clone());
                    }
                }
                store.activity.deliver(&message.room, event);
                Ok(())
            }
            ChatStore::Redis(store) => {
                let stored = encode(message)?;
                let activity = store.activity_payload(&message.room, &event)?;
                let history = store.history_key(&message.room);
                let keep = isize::try_from(HISTORY).unwrap_or(isize::MAX);
                redis::pipe()
                    .atomic()
                    .rpush(&history, stored)
                    .ignore()
                    .ltrim(&history, -keep, -1)
                    .ignore()
                    .publish(&store.activity_channel, activity)
                    .ignore()
                    .query_async::<()>(&mut store.connection())
                    .await
                    .map_err(unavailable)
            }
        }
    }

    /// Tells the room's activity streams (on every server) what happened. A failure is logged
    /// and the event reaches this server's streams only: activity is a courtesy, not a record.
    pub async fn publish(&self, room: &str, event: RoomEvent) {
        match self {
            ChatStore::Memory(store) => store.activity.deliver(room, event),
            ChatStore::Redis(store) => {
                let published = match store.activity_payload(room, &event) {
                    Ok(payload) => store
                        .connection()
                        .publish::<_, _, ()>(&store.activity_channel, payload)
                        .await
                        .map_err(unavailable),
                    Err(error) => Err(error),
                };
                if let Err(error) = published {
                    tracing::warn!(%error, %room, "room activity reaches this server only");
                    store.activity.deliver(room, event);
                }
            }
        }
    }

    /// This server's receiver of the room's activity (from every server, when on Redis).
    pub fn subscribe(&self, room: &str) -> broadcast::Receiver<RoomEvent> {
        match self {
            ChatStore::Memory(store) => store.activity.subscribe(room),
            ChatStore::Redis(store) => store.activity.subscribe(room),
        }
    }

    /// Gives `nickname` to `connection_id` unless another connection has it (nicknames are
    /// unique ignoring case). With `stale_owner`, a nickname that connection has is taken over:
    /// the hub passes the owner it was told of once it made sure that connection has ended
    /// (its server crashed before forgetting it). Atomic on Redis (one script).
    pub async fn claim_nickname(
        &self,
        connection_id: &str,
        nickname: &str,
        stale_owner: Option<&str>,
    ) -> Result<Claim, HubError> {
        let key = nickname.to_lowercase();
        match self {
            ChatStore::Memory(store) => {
                let mut memory = store.lock();
                if let Some(owner) = memory.owners.get(&key).cloned() {
                    if Some(owner.as_str()) != stale_owner {
                        return Ok(Claim::Taken { owner });
                    }
                    memory.nicknames.remove(&owner);
                }
                memory.owners.insert(key, connection_id.to_owned());
                memory
                    .nicknames
                    .insert(connection_id.to_owned(), nickname.to_owned());
                Ok(Claim::Claimed)
            }
            ChatStore::Redis(store) => {
                let owner: String = store
                    .claim
                    .key(store.key("owners"))
                    .key(store.key("nicknames"))
                    .arg(&key)
                    .arg(connection_id)
                    .arg(nickname)
                    .arg(stale_owner.unwrap_or(""))
                    .invoke_async(&mut store.connection())
                    .await
                    .map_err(unavailable)?;
                Ok(if owner.is_empty() {
                    Claim::Claimed
                } else {
                    Claim::Taken { owner }
                })
            }
        }
    }

    /// Forgets the connection's nickname (if the nickname is still the connection's).
    pub async fn release_nickname(
        &self,
        connection_id: &str,
        nickname: &str,
    ) -> Result<(), HubError> {
        let key = nickname.to_lowercase();
        match self {
            ChatStore::Memory(store) => {
                let mut memory = store.lock();
                if memory.owners.get(&key).map(String::as_str) == Some(connection_id) {
                    memory.owners.remove(&key);
                }
                memory.nicknames.remove(connection_id);
                Ok(())
            }
            ChatStore::Redis(store) => store
                .release
                .key(store.key("owners"))
                .key(store.key("nicknames"))
                .arg(&key)
                .arg(connection_id)
                .invoke_async::<()>(&mut store.connection())
                .await
                .map_err(unavailable),
        }
    }

    /// The nicknames of these connections (`None` for a connection without one), in order.
    pub async fn nicknames(
        &self,
        connection_ids: &[String],
    ) -> Result<Vec<Option<String>>, HubError> {
        match self {
            ChatStore::Memory(store) => {
                let memory = store.lock();
                Ok(connection_ids
                    .iter()
                    .map(|id| memory.nicknames.get(id).cloned())
                    .collect())
            }
            ChatStore::Redis(_) if connection_ids.is_empty() => Ok(Vec::new()),
            ChatStore::Redis(store) => redis::cmd("HMGET")
                .arg(store.key("nicknames"))
                .arg(connection_ids)
                .query_async(&mut store.connection())
                .await
                .map_err(unavailable),
        }
    }

    /// The first of these nicknames that no connection has (ignoring case), if any: what the hub
    /// suggests instead of a taken one. Nothing is reserved, so it may be gone when asked for.
    /// One round trip on Redis.
    pub async fn first_free_nickname(
        &self,
        candidates: &[String],
    ) -> Result<Option<String>, HubError> {
        let keys: Vec<String> = candidates.iter().map(|name| name.to_lowercase()).collect();
        let owners: Vec<Option<String>> = match self {
            ChatStore::Memory(store) => {
                let memory = store.lock();
                keys.iter()
                    .map(|key| memory.owners.get(key).cloned())
                    .collect()
            }
            ChatStore::Redis(_) if keys.is_empty() => Vec::new(),
            ChatStore::Redis(store) => redis::cmd("HMGET")
                .arg(store.key("owners"))
                .arg(&keys)
                .query_async(&mut store.connection())
                .await
                .map_err(unavailable)?,
        };
        Ok(candidates
            .iter()
            .zip(owners)
            .find_map(|(candidate, owner)| owner.is_none().then(|| candidate.clone())))
    }

    /// The connection that has `nickname` (ignoring case), with the nickname as it was chosen.
    pub async fn owner(&self, nickname: &str) -> Result<Option<(String, String)>, HubError> {
        let key = nickname.to_lowercase();
        match self {
            ChatStore::Memory(store) => {
                let memory = store.lock();
                Ok(memory.owners.get(&key).map(|owner| {
                    let nickname = memory.nicknames.get(owner).cloned().unwrap_or_default();
                    (owner.clone(), nickname)
                }))
            }
            ChatStore::Redis(store) => {
                let mut connection = store.connection();
                let owner: Option<String> = connection
                    .hget(store.key("owners"), &key)
                    .await
                    .map_err(unavailable)?;
                let Some(owner) = owner else {
                    return Ok(None);
                };
                let chosen: Option<String> = connection
                    .hget(store.key("nicknames"), &owner)
                    .await
                    .map_err(unavailable)?;
                Ok(chosen.map(|chosen| (owner, chosen)))
            }
        }
    }
}

/// What [`ChatStore::memory`] holds.
struct Memory {
    /// Each room's last messages, oldest first.
    rooms: BTreeMap<String, VecDeque<ChatMessage>>,
    /// Nickname by connection id.
    nicknames: HashMap<String, String>,
    /// Connection id by lowercased nickname.
    owners: HashMap<String, String>,
    /// The last message id handed out.
    next_id: u64,
}

/// The chat's state in this process.
pub struct MemoryStore {
    memory: Mutex<Memory>,
    activity: Activity,
}

impl Default for MemoryStore {
    fn default() -> Self {
        let rooms = DEFAULT_ROOMS
            .iter()
            .map(|room| ((*room).to_owned(), VecDeque::with_capacity(HISTORY)))
            .collect();
        MemoryStore {
            memory: Mutex::new(Memory {
                rooms,
                nicknames: HashMap::new(),
                owners: HashMap::new(),
                next_id: 0,
            }),
            activity: Activity::default(),
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Memory> {
        // A panic while holding the lock leaves consistent-enough maps; keep serving.
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The chat's state in Redis (see the module's table of keys).
pub struct RedisStore {
    /// Commands; reconnects by itself.
    connection: ConnectionManager,
    /// `{prefix}:state:`
    base: String,
    /// `{prefix}:state:activity`
    activity_channel: String,
    /// This server's activity streams, fed by the subscriber task from the activity channel.
    activity: Activity,
    claim: Script,
    release: Script,
}

/// A room event on the activity channel.
#[derive(Serialize, Deserialize)]
struct ActivityMessage {
    room: String,
    event: RoomEvent,
}

impl RedisStore {
    async fn connect(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT))
                .set_number_of_retries(2),
        )
        .await?;
        let base = format!("{prefix}:state:");
        let store = RedisStore {
            connection,
            activity_channel: format!("{base}activity"),
            base,
            activity: Activity::default(),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
        };
        store
            .connection()
            .sadd::<_, _, ()>(store.key("rooms"), &DEFAULT_ROOMS[..])
            .await?;
        // Subscribed before the server serves: no event of its own connections is missed.
        let mut subscriber = client.get_async_pubsub().await?;
        subscriber.subscribe(&store.activity_channel).await?;
        tokio::spawn(forward_activity(
            client,
            subscriber,
            store.activity_channel.clone(),
            store.activity.clone(),
        ));
        Ok(store)
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    fn history_key(&self, room: &str) -> String {
        format!("{}history:{room}", self.base)
    }

    fn activity_payload(&self, room: &str, event: &RoomEvent) -> Result<String, HubError> {
        encode(&ActivityMessage {
            room: room.to_owned(),
            event: event.clone(),
        })
    }
}

/// Hands the activity channel's events to this server's streams, for as long as the process
/// runs; after losing Redis it subscribes again (events published meanwhile are lost: activity
/// is live only, the history is what is kept).
async fn forward_activity(
    client: redis::Client,
    mut subscriber: redis::aio::PubSub,
    channel: String,
    activity: Activity,
) {
    loop {
        {
            let mut messages = subscriber.on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<ActivityMessage>(&payload) {
                    Ok(ActivityMessage { room, event }) => activity.deliver(&room, event),
                    Err(error) => {
                        tracing::debug!(%error, "not a room event on the activity channel");
                    }
                }
            }
        }
        tracing::warn!("lost the room activity channel (Redis); subscribing again");
        subscriber = loop {
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            let subscribed = async {
                let mut subscriber = client.get_async_pubsub().await?;
                subscriber.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(subscriber)
            };
            match tokio::time::timeout(REDIS_TIMEOUT, subscribed).await {
                Ok(Ok(subscriber)) => {
                    tracing::info!("subscribed to the room activity channel again");
                    break subscriber;
                }
                Ok(Err(error)) => tracing::debug!(%error, "Redis is still unavailable"),
                Err(_) => tracing::debug!("Redis did not answer"),
            }
        };
    }
}

/// Gives the nickname (`ARGV[1]`, lowercased) to a connection (`ARGV[2]`) as it was chosen
/// (`ARGV[3]`) unless another connection has it; one that is `ARGV[4]` (a stale owner; `""` for
/// none) loses it. Returns the owner that keeps it, or `""` when claimed.
///
/// `KEYS[1]`: lowercased nickname → connection; `KEYS[2]`: connection → nickname.
const CLAIM: &str = r"
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[4] then
  return owner
end
if owner then
  redis.call('HDEL', KEYS[2], owner)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return ''
";

/// Forgets a connection's (`ARGV[2]`) nickname (`ARGV[1]`, lowercased), unless another connection
/// took it over meanwhile. `KEYS` as for [`CLAIM`].
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('HDEL', KEYS[2], ARGV[2])
return 0
";

/// This server's room activity channels: one per room someone here streams. The channels are
/// per process; on Redis, events from every server reach them through the activity channel.
#[derive(Clone, Default)]
struct Activity {
    rooms: Arc<Mutex<HashMap<String, broadcast::Sender<RoomEvent>>>>,
}

impl Activity {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<RoomEvent>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn subscribe(&self, room: &str) -> broadcast::Receiver<RoomEvent> {
        let mut rooms = self.lock();
        rooms.retain(|_, sender| sender.receiver_count() > 0);
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
    }

    fn deliver(&self, room: &str, event: RoomEvent) {
        if let Some(sender) = self.lock().get(room) {
            // No receiver is fine: nobody here is watching this room's activity.
            let _ = sender.send(event);
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, HubError> {
    serde_json::to_string(value).map_err(|error| HubError::internal(&error))
}

/// A Redis failure, as the caller reads it (the details go to the log).
fn unavailable(error: redis::RedisError) -> HubError {
    tracing::warn!(%error, "a Redis command of the chat store failed");
    HubError::new("the chat's shared store (Redis) is unavailable; try again in a moment")
}
