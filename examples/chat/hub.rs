//! The chat hub: nicknames, rooms, messages, private messages, presence, typing, history and a
//! live activity stream. The [`Chat`] trait is what browsers invoke; [`ChatClient`] is what the
//! server pushes to them. Both become the typed TypeScript client in `examples/chat/client/`.
//!
//! [`ChatServer`] keeps what every server must see alike (rooms, each room's last [`HISTORY`]
//! messages, message ids, nicknames) in a [`ChatStore`]: in memory for one server, in Redis for
//! several (with the hub on the Redis backplane, see `main.rs`). Room membership is the hub's
//! groups (one group per room), so presence is group introspection — cluster-wide on the
//! backplane: `cx.groups().members(room)` mapped through the store's nicknames.
//!
//! `set_nickname` and `create_room` refuse with a typed [`ChatError`] (a `ClientError`): every
//! client reads its text, the generated one its value too (`isChatError`), which the page uses to
//! offer a free nickname or to join a room that exists.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{future, stream, Stream};
use hub_server::core::hub::HubErrorKind;
use hub_server::{hub, hub_client, ClientError, Context, HubError, LifetimeError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::store::{ChatStore, Claim};

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

/// Why the chat refused a nickname or a room. The page receives it typed (`isChatError(error)`,
/// then `error.error.kind`); every other client reads its text (a `HubException` message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind")]
pub enum ChatError {
    /// Someone else has this nickname (nicknames are unique, ignoring case).
    NicknameTaken {
        /// The nickname asked for.
        nickname: String,
        /// A variant of it that nobody had when the server answered (the nickname with a
        /// number), or `null` when every such variant is taken.
        suggestion: Option<String>,
    },
    /// The nickname breaks the rules (1–24 letters, digits, `_`, `-` or `.`).
    NicknameInvalid {
        /// What is wrong with it.
        reason: String,
    },
    /// This connection already has a nickname (a new connection may pick another).
    NicknameAlreadySet {
        /// The nickname it has.
        nickname: String,
    },
    /// The call needs a nickname: set one first.
    NicknameRequired,
    /// The room name breaks the rules (1–32 lowercase letters, digits or `-`).
    RoomNameInvalid {
        /// What is wrong with it.
        reason: String,
    },
    /// A room by this name exists already (join it instead).
    RoomExists {
        /// The room.
        room: String,
    },
    /// The server could not do it just now (e.g. its shared store is unreachable); try again.
    Unavailable {
        /// What failed, as the caller may read it.
        reason: String,
    },
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::NicknameTaken { nickname, .. } => {
                write!(f, "the nickname `{nickname}` is taken; pick another")
            }
            ChatError::NicknameInvalid { reason }
            | ChatError::RoomNameInvalid { reason }
            | ChatError::Unavailable { reason } => f.write_str(reason),
            ChatError::NicknameAlreadySet { nickname } => write!(
                f,
                "you are already `{nickname}`; reconnect to change your nickname"
            ),
            ChatError::NicknameRequired => f.write_str("choose a nickname first"),
            ChatError::RoomExists { room } => write!(f, "the room `{room}` already exists"),
        }
    }
}

impl ClientError for ChatError {}

impl From<HubError> for ChatError {
    /// A failure on the way (the store, the hub's groups or sends): a hub error's text is for
    /// the caller; an internal error's details go to the log only.
    fn from(error: HubError) -> Self {
        let reason = match error.kind() {
            HubErrorKind::Hub => error.message().to_owned(),
            HubErrorKind::Internal => {
                tracing::warn!(%error, "a chat call failed");
                "the chat server could not do that just now; try again in a moment".to_owned()
            }
        };
        ChatError::Unavailable { reason }
    }
}

impl From<LifetimeError> for ChatError {
    fn from(error: LifetimeError) -> Self {
        HubError::from(error).into()
    }
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
    /// you already have one or someone else has taken it (`NicknameTaken`, with a free variant
    /// to suggest).
    async fn set_nickname(&self, cx: Cx, nickname: String) -> Result<Session, ChatError>;
    /// The rooms that exist, by name.
    async fn list_rooms(&self, cx: Cx) -> Result<Vec<RoomInfo>, HubError>;
    /// Creates a room (1–32 lowercase letters, digits or `-`) and returns it. Fails with
    /// `RoomExists` when there is one by that name.
    async fn create_room(&self, cx: Cx, name: String) -> Result<RoomInfo, ChatError>;
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

/// The group every connection with a nickname is in. Its members are the connections that are
/// alive (on any server): a nickname whose owner is not in it belongs to a connection that ended
/// without forgetting it (its server crashed), and may be taken over. Room names cannot start
/// with `~`, so it is no room.
const NICKNAMED: &str = "~nicknamed";

/// What this server knows of its own connections.
#[derive(Default)]
struct Local {
    /// Nickname by connection id (the store has them too; this is the connection's own server's
    /// copy, read on every call).
    nicknames: HashMap<String, String>,
    /// The rooms each connection joined (groups are gone by the time `disconnected` runs).
    joined: HashMap<String, BTreeSet<String>>,
}

impl Local {
    fn nickname(&self, connection_id: &str) -> Result<String, HubError> {
        self.nicknames
            .get(connection_id)
            .cloned()
            .ok_or_else(|| HubError::new("choose a nickname first"))
    }

    fn has_joined(&self, connection_id: &str, room: &str) -> bool {
        self.joined
            .get(connection_id)
            .is_some_and(|rooms| rooms.contains(room))
    }
}

/// The chat server; implements [`Chat`]. What every server must see alike (rooms, history,
/// message ids, nicknames) is in its [`ChatStore`]: in memory by default, in Redis for several
/// servers. Room activity streams are fed by the store too.
pub struct ChatServer {
    store: ChatStore,
    local: Mutex<Local>,
}

impl Default for ChatServer {
    /// One server, its state in memory.
    fn default() -> Self {
        ChatServer::new(ChatStore::memory())
    }
}

impl ChatServer {
    /// A chat server keeping its shared state in `store`.
    pub fn new(store: ChatStore) -> Self {
        ChatServer {
            store,
            local: Mutex::default(),
        }
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        // A panic while holding the lock leaves consistent-enough maps; keep serving.
        self.local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fails unless the room exists.
    async fn check_room(&self, room: &str) -> Result<(), HubError> {
        if self.store.room_exists(room).await? {
            Ok(())
        } else {
            Err(unknown_room(room))
        }
    }

    /// Whether a connection is alive, on any server, with a nickname.
    async fn is_nicknamed(&self, cx: &Cx, connection_id: &str) -> Result<bool, HubError> {
        let groups = cx.groups().of(connection_id).await?;
        Ok(groups.iter().any(|group| group == NICKNAMED))
    }

    /// Gives the nickname to this connection, taking it over from a connection that ended
    /// without giving it back.
    async fn claim_nickname(&self, cx: &Cx, nickname: &str) -> Result<(), ChatError> {
        let id = cx.connection_id();
        let owner = match self.store.claim_nickname(id, nickname, None).await? {
            Claim::Claimed => return Ok(()),
            Claim::Taken { owner } => owner,
        };
        if self.is_nicknamed(cx, &owner).await? {
            return Err(self.taken(nickname).await);
        }
        tracing::info!(%nickname, %owner, "taking over the nickname of a connection that ended");
        match self
            .store
            .claim_nickname(id, nickname, Some(&owner))
            .await?
        {
            Claim::Claimed => Ok(()),
            Claim::Taken { .. } => Err(self.taken(nickname).await),
        }
    }

    /// The nickname is someone else's: says so, with a variant the store says nobody has.
    async fn taken(&self, nickname: &str) -> ChatError {
        let variants = nickname_variants(nickname);
        let suggestion = match self.store.first_free_nickname(&variants).await {
            Ok(free) => free,
            Err(error) => {
                // A courtesy: the answer is still that the nickname is taken.
                tracing::debug!(%error, %nickname, "no nickname to suggest");
                None
            }
        };
        ChatError::NicknameTaken {
            nickname: nickname.to_owned(),
            suggestion,
        }
    }

    /// The room's members as nicknames, from the hub's group of the room.
    async fn presence(&self, cx: &Cx, room: &str) -> Result<Presence, HubError> {
        let ids = cx.groups().members(room).await?;
        let mut members: Vec<String> = self
            .store
            .nicknames(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect();
        members.sort_by_key(|name| name.to_lowercase());
        Ok(Presence {
            room: room.to_owned(),
            members,
        })
    }

    /// Every room with its member count.
    async fn rooms(&self, cx: &Cx) -> Result<Vec<RoomInfo>, HubError> {
        let names = self.store.rooms().await?;
        let counts =
            future::try_join_all(names.iter().map(|name| cx.groups().members(name))).await?;
        Ok(names
            .into_iter()
            .zip(counts)
            .map(|(name, members)| RoomInfo {
                name,
                member_count: u32::try_from(members.len()).unwrap_or(u32::MAX),
            })
            .collect())
    }

    /// Tells a room's members who is there, and everyone the new member counts.
    async fn announce_presence(&self, cx: &Cx, room: &str) -> Result<(), HubError> {
        let presence = self.presence(cx, room).await?;
        cx.hub()
            .clients()
            .group(room)
            .presence_changed(&presence)
            .await?;
        let rooms = self.rooms(cx).await?;
        cx.hub().clients().all().rooms_changed(&rooms).await?;
        Ok(())
    }
}

impl Chat for ChatServer {
    async fn set_nickname(&self, cx: Cx, nickname: String) -> Result<Session, ChatError> {
        let nickname = nickname.trim().to_owned();
        validate_nickname(&nickname)?;
        let id = cx.connection_id().to_owned();
        let already = |current: &str| ChatError::NicknameAlreadySet {
            nickname: current.to_owned(),
        };
        if let Some(current) = self.local().nicknames.get(&id) {
            return Err(already(current));
        }
        // In the group first: while the store says the nickname is this connection's, the
        // connection is in it (see `NICKNAMED`).
        cx.groups().add(&id, NICKNAMED).await?;
        if let Err(error) = self.claim_nickname(&cx, &nickname).await {
            if !self.local().nicknames.contains_key(&id) {
                if let Err(error) = cx.groups().remove(&id, NICKNAMED).await {
                    // Harmless: a connection without a nickname owns none to protect.
                    tracing::debug!(%error, "could not leave the nicknamed group");
                }
            }
            return Err(error);
        }
        let earlier = {
            let mut local = self.local();
            match local.nicknames.get(&id) {
                Some(current) => Some(current.clone()),
                None => {
                    local.nicknames.insert(id.clone(), nickname.clone());
                    None
                }
            }
        };
        if let Some(current) = earlier {
            // Another SetNickname of this connection won meanwhile.
            self.store.release_nickname(&id, &nickname).await?;
            return Err(already(&current));
        }
        Ok(Session {
            nickname,
            transport: format!("{:?}", cx.transport()),
            rooms: self.rooms(&cx).await?,
        })
    }

    async fn list_rooms(&self, cx: Cx) -> Result<Vec<RoomInfo>, HubError> {
        self.rooms(&cx).await
    }

    async fn create_room(&self, cx: Cx, name: String) -> Result<RoomInfo, ChatError> {
        let name = name.trim().trim_start_matches('#').to_owned();
        validate_room_name(&name)?;
        if !self.local().nicknames.contains_key(cx.connection_id()) {
            return Err(ChatError::NicknameRequired);
        }
        if !self.store.create_room(&name).await? {
            return Err(ChatError::RoomExists { room: name });
        }
        let rooms = self.rooms(&cx).await?;
        cx.hub().clients().all().rooms_changed(&rooms).await?;
        Ok(RoomInfo {
            name,
            member_count: 0,
        })
    }

    async fn join_room(&self, cx: Cx, room: String) -> Result<JoinedRoom, HubError> {
        let nickname = self.local().nickname(cx.connection_id())?;
        let history = self
            .store
            .history(&room)
            .await?
            .ok_or_else(|| unknown_room(&room))?;
        // Join the group first: a message posted from now on reaches this connection, and the
        // history above already holds everything before (at worst a message shows twice, which
        // the page drops by id).
        cx.groups().add(cx.connection_id(), &room).await?;
        let newly = self
            .local()
            .joined
            .entry(cx.connection_id().to_owned())
            .or_default()
            .insert(room.clone());
        if newly {
            self.store
                .publish(
                    &room,
                    RoomEvent::Joined {
                        nickname,
                        at: now_ms(),
                    },
                )
                .await;
            self.announce_presence(&cx, &room).await?;
        }
        Ok(JoinedRoom {
            presence: self.presence(&cx, &room).await?,
            history,
        })
    }

    async fn leave_room(&self, cx: Cx, room: String) -> Result<(), HubError> {
        let nickname = self.local().nickname(cx.connection_id())?;
        self.check_room(&room).await?;
        let was_in = self
            .local()
            .joined
            .get_mut(cx.connection_id())
            .is_some_and(|rooms| rooms.remove(&room));
        if !was_in {
            return Err(HubError::new(format!("you are not in #{room}")));
        }
        self.store
            .publish(
                &room,
                RoomEvent::Left {
                    nickname,
                    at: now_ms(),
                    reason: None,
                },
            )
            .await;
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
        let (from, member) = {
            let local = self.local();
            let from = local.nickname(cx.connection_id())?;
            (from, local.has_joined(cx.connection_id(), &room))
        };
        if !member {
            self.check_room(&room).await?;
            return Err(HubError::new(format!("join #{room} before posting to it")));
        }
        let text = validate_text(text)?;
        let message = ChatMessage {
            id: self.store.next_id().await?,
            room: room.clone(),
            from,
            text,
            sent_at: now_ms(),
        };
        self.store.append(&message).await?;
        cx.clients().group(&room).receive_message(&message).await?;
        Ok(message)
    }

    async fn send_private(
        &self,
        cx: Cx,
        to: String,
        text: String,
    ) -> Result<PrivateMessage, HubError> {
        let from = self.local().nickname(cx.connection_id())?;
        let to = to.trim().trim_start_matches('@');
        let offline = || HubError::new(format!("nobody called `{to}` is online"));
        let (recipient, to) = self.store.owner(to).await?.ok_or_else(offline)?;
        // A nickname left behind by a server that crashed has nobody to reach.
        if !self.is_nicknamed(&cx, &recipient).await? {
            return Err(offline());
        }
        let text = validate_text(text)?;
        let message = PrivateMessage {
            id: self.store.next_id().await?,
            from,
            to,
            text,
            sent_at: now_ms(),
        };
        cx.clients()
            .client(recipient)
            .receive_private(&message)
            .await?;
        Ok(message)
    }

    async fn typing(&self, cx: Cx, room: String) -> Result<(), HubError> {
        let (nickname, member) = {
            let local = self.local();
            let nickname = local.nickname(cx.connection_id())?;
            (nickname, local.has_joined(cx.connection_id(), &room))
        };
        if !member {
            self.check_room(&room).await?;
        }
        self.store
            .publish(
                &room,
                RoomEvent::Typing {
                    nickname: nickname.clone(),
                },
            )
            .await;
        cx.clients()
            .others_in_group(&room)
            .user_typing(&room, &nickname)
            .await?;
        Ok(())
    }

    async fn members(&self, cx: Cx, room: String) -> Result<Presence, HubError> {
        self.check_room(&room).await?;
        self.presence(&cx, &room).await
    }

    async fn room_activity(
        &self,
        cx: Cx,
        room: String,
    ) -> Result<impl Stream<Item = RoomEvent> + Send + 'static, HubError> {
        self.local().nickname(cx.connection_id())?;
        self.check_room(&room).await?;
        let receiver = self.store.subscribe(&room);
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
        let id = cx.connection_id();
        let (nickname, rooms) = {
            let mut local = self.local();
            let Some(nickname) = local.nicknames.remove(id) else {
                return;
            };
            (nickname, local.joined.remove(id).unwrap_or_default())
        };
        if let Err(error) = self.store.release_nickname(id, &nickname).await {
            // Another server can still take it over: this connection is in no group any more.
            tracing::warn!(%error, %nickname, "the nickname could not be released");
        }
        let reason = match &error {
            Some(error) => format!("disconnected: {error}"),
            None => "disconnected".to_owned(),
        };
        for room in &rooms {
            self.store
                .publish(
                    room,
                    RoomEvent::Left {
                        nickname: nickname.clone(),
                        at: now_ms(),
                        reason: Some(reason.clone()),
                    },
                )
                .await;
        }
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

fn validate_nickname(nickname: &str) -> Result<(), ChatError> {
    let invalid = |reason: String| Err(ChatError::NicknameInvalid { reason });
    let count = nickname.chars().count();
    if count == 0 {
        return invalid("a nickname needs at least one character".to_owned());
    }
    if count > MAX_NICKNAME_CHARS {
        return invalid(format!(
            "nicknames are at most {MAX_NICKNAME_CHARS} characters"
        ));
    }
    if !nickname
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return invalid("nicknames may use letters, digits, `_`, `-` and `.` only".to_owned());
    }
    Ok(())
}

/// What to suggest instead of a taken nickname, best first: the nickname with 2, 3, … 99 in
/// place of the number it ends with (`ida` → `ida2`, `ida7` → `ida2`, `ida3`, …), cut to fit
/// [`MAX_NICKNAME_CHARS`]; never the nickname itself. Each is a valid nickname when `nickname`
/// is one.
pub fn nickname_variants(nickname: &str) -> Vec<String> {
    let stem = nickname.trim_end_matches(|c: char| c.is_ascii_digit());
    let stem = if stem.is_empty() { nickname } else { stem };
    let taken = nickname.to_lowercase();
    let mut variants: Vec<String> = Vec::new();
    for number in 2..100u32 {
        let number = number.to_string();
        let keep = MAX_NICKNAME_CHARS.saturating_sub(number.len());
        let variant: String = stem.chars().take(keep).chain(number.chars()).collect();
        let key = variant.to_lowercase();
        if key != taken && !variants.iter().any(|seen| seen.to_lowercase() == key) {
            variants.push(variant);
        }
    }
    variants
}

fn validate_room_name(name: &str) -> Result<(), ChatError> {
    let invalid = |reason: String| Err(ChatError::RoomNameInvalid { reason });
    if name.is_empty() || name.len() > MAX_ROOM_CHARS {
        return invalid(format!("room names are 1 to {MAX_ROOM_CHARS} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return invalid("room names may use lowercase letters, digits and `-` only".to_owned());
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
