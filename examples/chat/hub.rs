//! The chat hub: nicknames, rooms, messages, private messages, presence, typing, history and a
//! live activity stream. The [`Chat`] trait is what browsers invoke; [`ChatClient`] is what the
//! server pushes to them. Both become the typed TypeScript client in `examples/chat/client/`.
//!
//! State lives in memory ([`ChatServer`]): nicknames by connection, each room's last
//! [`HISTORY`] messages and its activity channel. Room membership is the hub's groups (one group
//! per room), so presence is group introspection: `cx.groups().members(room)` mapped through the
//! nickname table.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{stream, Stream};
use hub_server::{hub, hub_client, Context, HubError, LifetimeError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// How many messages a room keeps and replays to whoever joins.
pub const HISTORY: usize = 50;
/// The longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// The longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 24;
/// The longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;
/// The rooms that exist when the server starts.
pub const DEFAULT_ROOMS: [&str; 3] = ["general", "rust", "random"];

/// A message posted to a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Increases with every message the server accepts (rooms and private messages share it).
    #[ts(type = "number")] // stays far below 2^53, so a JavaScript number holds it exactly
    pub id: u64,
    /// The room it was posted to.
    pub room: String,
    /// The sender's nickname.
    pub from: String,
    /// The text, 1 to 500 characters.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    #[ts(type = "number")]
    pub sent_at: u64,
}

/// A message from one user to another, seen only by the two of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct PrivateMessage {
    /// Increases with every message the server accepts.
    #[ts(type = "number")]
    pub id: u64,
    /// The sender's nickname.
    pub from: String,
    /// The recipient's nickname.
    pub to: String,
    /// The text, 1 to 500 characters.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    #[ts(type = "number")]
    pub sent_at: u64,
}

/// A room and how many people are in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    /// The room's name (lowercase letters, digits and `-`).
    pub name: String,
    /// How many connections have joined it.
    pub member_count: u32,
}

/// Who is in a room: the nicknames of its members, sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The room.
    pub room: String,
    /// Its members' nicknames, sorted case-insensitively.
    pub members: Vec<String>,
}

/// What joining a room gives you: who is there and what was said lately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct JoinedRoom {
    /// The room and its members (you included).
    pub presence: Presence,
    /// The room's last messages (at most 50), oldest first.
    pub history: Vec<ChatMessage>,
}

/// Who you are on this server, once your nickname is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Your nickname, as others see it.
    pub nickname: String,
    /// The transport your connection uses (`WebSockets`, `ServerSentEvents` or `LongPolling`).
    pub transport: String,
    /// The rooms that exist.
    pub rooms: Vec<RoomInfo>,
}

/// Something that happened in a room, as `RoomActivity` streams it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RoomEvent {
    /// Someone joined the room.
    Joined {
        /// Their nickname.
        nickname: String,
        /// When, in milliseconds since the Unix epoch.
        #[ts(type = "number")]
        at: u64,
    },
    /// Someone left the room (or disconnected).
    Left {
        /// Their nickname.
        nickname: String,
        /// When, in milliseconds since the Unix epoch.
        #[ts(type = "number")]
        at: u64,
        /// Why they left, when they did not leave on purpose (e.g. `disconnected`).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
    },
    /// A message was posted.
    Message {
        /// The message.
        message: ChatMessage,
    },
    /// Someone is typing.
    Typing {
        /// Their nickname.
        nickname: String,
    },
}

/// What the chat server calls on its clients.
#[hub_client]
pub trait ChatClient {
    /// A message was posted to a room you joined.
    async fn receive_message(&self, message: ChatMessage);
    /// Someone sent you a private message, or one you sent was delivered (you get a copy).
    async fn receive_private(&self, message: PrivateMessage);
    /// The members of a room you joined changed.
    async fn presence_changed(&self, presence: Presence);
    /// Someone in a room you joined is typing (sent at most every few seconds per person).
    async fn user_typing(&self, room: String, nickname: String);
    /// A room was created, or a room's member count changed.
    async fn rooms_changed(&self, rooms: Vec<RoomInfo>);
}

/// The context of a chat hub method, handing out typed callbacks.
pub type Cx = Context<ChatClientProxy>;

/// The chat hub: what browsers invoke. Set a nickname first; everything else needs one.
#[hub(route = "/chat", client = ChatClient)]
pub trait Chat {
    /// Sets your nickname (1–24 letters, digits, `_`, `-` or `.`; unique, ignoring case). Fails if
    /// you already have one or someone else has taken it.
    async fn set_nickname(&self, cx: Cx, nickname: String) -> Result<Session, HubError>;
    /// The rooms that exist, by name.
    async fn list_rooms(&self, cx: Cx) -> Result<Vec<RoomInfo>, HubError>;
    /// Creates a room (1–32 lowercase letters, digits or `-`) and returns it.
    async fn create_room(&self, cx: Cx, name: String) -> Result<RoomInfo, HubError>;
    /// Joins a room: you get its members and last 50 messages, and from now on its messages,
    /// presence and typing notices.
    async fn join_room(&self, cx: Cx, room: String) -> Result<JoinedRoom, HubError>;
    /// Leaves a room.
    async fn leave_room(&self, cx: Cx, room: String) -> Result<(), HubError>;
    /// Posts a message (1–500 characters) to a room you joined; returns it as stored.
    async fn send_message(
        &self,
        cx: Cx,
        room: String,
        text: String,
    ) -> Result<ChatMessage, HubError>;
    /// Sends a private message (1–500 characters) to the user with that nickname.
    async fn send_private(
        &self,
        cx: Cx,
        to: String,
        text: String,
    ) -> Result<PrivateMessage, HubError>;
    /// Tells the others in a room that you are typing.
    async fn typing(&self, cx: Cx, room: String) -> Result<(), HubError>;
    /// Who is in a room (nicknames, sorted).
    async fn members(&self, cx: Cx, room: String) -> Result<Presence, HubError>;
    /// Streams what happens in a room (joins, leaves, messages, typing) until you cancel.
    async fn room_activity(
        &self,
        cx: Cx,
        room: String,
    ) -> Result<impl Stream<Item = RoomEvent> + Send + 'static, HubError>;
    /// Forgets the connection's nickname and tells the rooms it was in.
    #[hub(on_disconnected)]
    async fn disconnected(&self, cx: Cx, error: Option<String>);
}

/// One room's memory.
struct Room {
    history: VecDeque<ChatMessage>,
    activity: broadcast::Sender<RoomEvent>,
}

impl Room {
    fn new() -> Self {
        Room {
            history: VecDeque::with_capacity(HISTORY),
            activity: broadcast::channel(64).0,
        }
    }

    fn publish(&self, event: RoomEvent) {
        // No subscriber is fine: nobody is watching this room's activity.
        let _ = self.activity.send(event);
    }
}

/// Everything the chat remembers.
#[derive(Default)]
struct State {
    rooms: BTreeMap<String, Room>,
    /// Nickname by connection id.
    nicknames: HashMap<String, String>,
    /// Connection id by lowercased nickname.
    connections: HashMap<String, String>,
    /// The rooms each connection joined (groups are gone by the time `disconnected` runs).
    joined: HashMap<String, BTreeSet<String>>,
    next_id: u64,
}

impl State {
    fn nickname(&self, connection_id: &str) -> Result<String, HubError> {
        self.nicknames
            .get(connection_id)
            .cloned()
            .ok_or_else(|| HubError::new("choose a nickname first"))
    }

    fn room(&self, name: &str) -> Result<&Room, HubError> {
        self.rooms.get(name).ok_or_else(|| unknown_room(name))
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The chat server's in-memory state; implements [`Chat`].
pub struct ChatServer {
    state: Mutex<State>,
}

impl Default for ChatServer {
    fn default() -> Self {
        let mut state = State::default();
        for room in DEFAULT_ROOMS {
            state.rooms.insert(room.to_owned(), Room::new());
        }
        ChatServer {
            state: Mutex::new(state),
        }
    }
}

impl ChatServer {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough maps; keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The room's members as nicknames, from the hub's group of the room.
    async fn presence(&self, cx: &Cx, room: &str) -> Result<Presence, LifetimeError> {
        let ids = cx.groups().members(room).await?;
        let state = self.state();
        let mut members: Vec<String> = ids
            .iter()
            .filter_map(|id| state.nicknames.get(id).cloned())
            .collect();
        members.sort_by_key(|name| name.to_lowercase());
        Ok(Presence {
            room: room.to_owned(),
            members,
        })
    }

    /// Every room with its member count.
    async fn rooms(&self, cx: &Cx) -> Result<Vec<RoomInfo>, LifetimeError> {
        let names: Vec<String> = self.state().rooms.keys().cloned().collect();
        let mut rooms = Vec::with_capacity(names.len());
        for name in names {
            let count = cx.groups().members(&name).await?.len();
            rooms.push(RoomInfo {
                name,
                member_count: u32::try_from(count).unwrap_or(u32::MAX),
            });
        }
        Ok(rooms)
    }

    /// Tells a room's members who is there, and everyone the new member counts.
    async fn announce_presence(&self, cx: &Cx, room: &str) -> Result<(), LifetimeError> {
        let presence = self.presence(cx, room).await?;
        cx.hub()
            .clients()
            .group(room)
            .presence_changed(&presence)
            .await;
        let rooms = self.rooms(cx).await?;
        cx.hub().clients().all().rooms_changed(&rooms).await;
        Ok(())
    }
}

impl Chat for ChatServer {
    async fn set_nickname(&self, cx: Cx, nickname: String) -> Result<Session, HubError> {
        let nickname = nickname.trim().to_owned();
        validate_nickname(&nickname)?;
        {
            let mut state = self.state();
            if let Some(current) = state.nicknames.get(cx.connection_id()) {
                return Err(HubError::new(format!(
                    "you are already `{current}`; reconnect to change your nickname"
                )));
            }
            let key = nickname.to_lowercase();
            if state.connections.contains_key(&key) {
                return Err(HubError::new(format!(
                    "the nickname `{nickname}` is taken; pick another"
                )));
            }
            state.connections.insert(key, cx.connection_id().to_owned());
            state
                .nicknames
                .insert(cx.connection_id().to_owned(), nickname.clone());
        }
        Ok(Session {
            nickname,
            transport: format!("{:?}", cx.transport()),
            rooms: self.rooms(&cx).await?,
        })
    }

    async fn list_rooms(&self, cx: Cx) -> Result<Vec<RoomInfo>, HubError> {
        Ok(self.rooms(&cx).await?)
    }

    async fn create_room(&self, cx: Cx, name: String) -> Result<RoomInfo, HubError> {
        let name = name.trim().trim_start_matches('#').to_owned();
        validate_room_name(&name)?;
        {
            let mut state = self.state();
            state.nickname(cx.connection_id())?;
            if state.rooms.contains_key(&name) {
                return Err(HubError::new(format!("the room `{name}` already exists")));
            }
            state.rooms.insert(name.clone(), Room::new());
        }
        let rooms = self.rooms(&cx).await?;
        cx.hub().clients().all().rooms_changed(&rooms).await;
        Ok(RoomInfo {
            name,
            member_count: 0,
        })
    }

    async fn join_room(&self, cx: Cx, room: String) -> Result<JoinedRoom, HubError> {
        let (nickname, history) = {
            let state = self.state();
            let nickname = state.nickname(cx.connection_id())?;
            let history = state.room(&room)?.history.iter().cloned().collect();
            (nickname, history)
        };
        // Join the group first: a message posted from now on reaches this connection, and the
        // history above already holds everything before (at worst a message shows twice, which
        // the page drops by id).
        cx.groups().add(cx.connection_id(), &room).await?;
        let newly = {
            let mut state = self.state();
            let newly = state
                .joined
                .entry(cx.connection_id().to_owned())
                .or_default()
                .insert(room.clone());
            if newly {
                if let Some(activity) = state.rooms.get(&room) {
                    activity.publish(RoomEvent::Joined {
                        nickname,
                        at: now_ms(),
                    });
                }
            }
            newly
        };
        if newly {
            self.announce_presence(&cx, &room).await?;
        }
        Ok(JoinedRoom {
            presence: self.presence(&cx, &room).await?,
            history,
        })
    }

    async fn leave_room(&self, cx: Cx, room: String) -> Result<(), HubError> {
        {
            let mut state = self.state();
            let nickname = state.nickname(cx.connection_id())?;
            state.room(&room)?;
            let was_in = state
                .joined
                .get_mut(cx.connection_id())
                .is_some_and(|rooms| rooms.remove(&room));
            if !was_in {
                return Err(HubError::new(format!("you are not in #{room}")));
            }
            if let Some(activity) = state.rooms.get(&room) {
                activity.publish(RoomEvent::Left {
                    nickname,
                    at: now_ms(),
                    reason: None,
                });
            }
        }
        cx.groups().remove(cx.connection_id(), &room).await?;
        self.announce_presence(&cx, &room).await?;
        Ok(())
    }

    async fn send_message(
        &self,
        cx: Cx,
        room: String,
        text: String,
    ) -> Result<ChatMessage, HubError> {
        let message = {
            let mut state = self.state();
            let from = state.nickname(cx.connection_id())?;
            state.room(&room)?;
            let member = state
                .joined
                .get(cx.connection_id())
                .is_some_and(|rooms| rooms.contains(&room));
            if !member {
                return Err(HubError::new(format!("join #{room} before posting to it")));
            }
            let text = validate_text(text)?;
            let message = ChatMessage {
                id: state.next_id(),
                room: room.clone(),
                from,
                text,
                sent_at: now_ms(),
            };
            if let Some(stored) = state.rooms.get_mut(&room) {
                if stored.history.len() == HISTORY {
                    stored.history.pop_front();
                }
                stored.history.push_back(message.clone());
                stored.publish(RoomEvent::Message {
                    message: message.clone(),
                });
            }
            message
        };
        cx.clients().group(&room).receive_message(&message).await;
        Ok(message)
    }

    async fn send_private(
        &self,
        cx: Cx,
        to: String,
        text: String,
    ) -> Result<PrivateMessage, HubError> {
        let (message, recipient) = {
            let mut state = self.state();
            let from = state.nickname(cx.connection_id())?;
            let to = to.trim().trim_start_matches('@');
            let Some(recipient) = state.connections.get(&to.to_lowercase()).cloned() else {
                return Err(HubError::new(format!("nobody called `{to}` is online")));
            };
            let text = validate_text(text)?;
            let message = PrivateMessage {
                id: state.next_id(),
                from,
                to: state.nicknames.get(&recipient).cloned().unwrap_or_default(),
                text,
                sent_at: now_ms(),
            };
            (message, recipient)
        };
        cx.clients()
            .client(recipient)
            .receive_private(&message)
            .await;
        Ok(message)
    }

    async fn typing(&self, cx: Cx, room: String) -> Result<(), HubError> {
        let nickname = {
            let state = self.state();
            let nickname = state.nickname(cx.connection_id())?;
            let room_state = state.room(&room)?;
            room_state.publish(RoomEvent::Typing {
                nickname: nickname.clone(),
            });
            nickname
        };
        cx.clients()
            .others_in_group(&room)
            .user_typing(&room, &nickname)
            .await;
        Ok(())
    }

    async fn members(&self, cx: Cx, room: String) -> Result<Presence, HubError> {
        self.state().room(&room)?;
        Ok(self.presence(&cx, &room).await?)
    }

    async fn room_activity(
        &self,
        cx: Cx,
        room: String,
    ) -> Result<impl Stream<Item = RoomEvent> + Send + 'static, HubError> {
        let receiver = {
            let state = self.state();
            state.nickname(cx.connection_id())?;
            state.room(&room)?.activity.subscribe()
        };
        // Ends when the client cancels (the hub drops the stream) or the room's channel closes.
        Ok(stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }

    async fn disconnected(&self, cx: Cx, error: Option<String>) {
        let rooms = {
            let mut state = self.state();
            let Some(nickname) = state.nicknames.remove(cx.connection_id()) else {
                return;
            };
            state.connections.remove(&nickname.to_lowercase());
            let rooms = state.joined.remove(cx.connection_id()).unwrap_or_default();
            for room in &rooms {
                if let Some(activity) = state.rooms.get(room) {
                    activity.publish(RoomEvent::Left {
                        nickname: nickname.clone(),
                        at: now_ms(),
                        reason: Some(match &error {
                            Some(error) => format!("disconnected: {error}"),
                            None => "disconnected".to_owned(),
                        }),
                    });
                }
            }
            rooms
        };
        for room in rooms {
            if let Err(error) = self.announce_presence(&cx, &room).await {
                tracing::warn!(%error, %room, "the room's presence could not be announced");
            }
        }
    }
}

fn unknown_room(name: &str) -> HubError {
    HubError::new(format!("there is no room called #{name}"))
}

fn validate_nickname(nickname: &str) -> Result<(), HubError> {
    let count = nickname.chars().count();
    if count == 0 {
        return Err(HubError::new("a nickname needs at least one character"));
    }
    if count > MAX_NICKNAME_CHARS {
        return Err(HubError::new(format!(
            "nicknames are at most {MAX_NICKNAME_CHARS} characters"
        )));
    }
    if !nickname
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(HubError::new(
            "nicknames may use letters, digits, `_`, `-` and `.` only",
        ));
    }
    Ok(())
}

fn validate_room_name(name: &str) -> Result<(), HubError> {
    if name.is_empty() || name.len() > MAX_ROOM_CHARS {
        return Err(HubError::new(format!(
            "room names are 1 to {MAX_ROOM_CHARS} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(HubError::new(
            "room names may use lowercase letters, digits and `-` only",
        ));
    }
    Ok(())
}

/// Trims trailing whitespace and checks the length.
fn validate_text(text: String) -> Result<String, HubError> {
    let text = text.trim_end().to_owned();
    if text.trim().is_empty() {
        return Err(HubError::new("a message needs some text"));
    }
    let count = text.chars().count();
    if count > MAX_MESSAGE_CHARS {
        return Err(HubError::new(format!(
            "messages are at most {MAX_MESSAGE_CHARS} characters (this one has {count})"
        )));
    }
    Ok(text)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
