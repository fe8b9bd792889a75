//! The chat hub in process (`hub_server::testing`), alone and as two servers on one real Redis
//! (`redis-server`), and the committed client's drift check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hub_redis::{RedisBackplane, RedisConfig};
use hub_server::testing::{Callback, TestClient, TestHub};
use hub_server::{HubConfig, HubError, HubServer, HubService};
use serde_json::{json, Value};

use crate::hub::{
    nickname_variants, ChatClientProxy, ChatError, ChatMessage, ChatServer, JoinedRoom, Presence,
    PrivateMessage, RoomEvent, ServeChat, Session, HISTORY, MAX_NICKNAME_CHARS,
};
use crate::store::ChatStore;

/// The committed client is what the generator writes from this hub today (as tonic checks its
/// generated code), and its types are exact (no lossy-shape warning).
#[test]
fn generated_client_is_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("chat/client");
    let package = super::client_package();
    if let Err(error) = package.verify(&dir) {
        panic!("{error}");
    }
    let generated = package.generate().unwrap();
    assert_eq!(generated.warnings, Vec::<String>::new());
}

/// Every code block the README marks `<!-- excerpt: path -->` stands, line for line, in that file
/// (the chat's hub, the quickstart project): what a reader copies is the code that is built and
/// tested.
#[test]
fn readme_excerpts_match_their_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for after in readme.split("<!-- excerpt: ").skip(1) {
        let (path, rest) = after.split_once(" -->").unwrap();
        let block = rest.split_once("```").unwrap().1;
        let block = block.split_once('\n').unwrap().1;
        let excerpt = block.split_once("```").unwrap().0;
        let file = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|error| panic!("README excerpt of {path}: {error}"));
        assert!(
            file.contains(excerpt),
            "this README excerpt is no longer in {path}; copy it again from there:\n{excerpt}"
        );
        *seen.entry(path.to_owned()).or_default() += 1;
    }
    assert!(
        seen.get("examples/chat/hub.rs").copied().unwrap_or(0) >= 4,
        "the README lost its chat excerpts"
    );
    for path in [
        "examples/quickstart/Cargo.toml",
        "examples/quickstart/src/main.rs",
        "examples/quickstart/web/src/main.ts",
    ] {
        assert!(
            seen.contains_key(path),
            "the README lost its excerpt of {path}"
        );
    }
}

type Client = TestClient<ChatClientProxy>;

fn chat() -> TestHub<ChatClientProxy> {
    TestHub::new(ServeChat::new(ChatServer::default()))
}

/// Connects and takes a nickname.
async fn join_as(hub: &TestHub<ChatClientProxy>, nickname: &str) -> Client {
    let mut client = hub.connect().await.unwrap();
    let session: Session = client.invoke("SetNickname", (nickname,)).await.unwrap();
    assert_eq!(session.nickname, nickname);
    client
}

/// The next callback named `target`, skipping the others (room counts, presence…).
async fn next(client: &mut Client, target: &str) -> Callback {
    loop {
        let callback = client.next_callback().await.unwrap();
        if callback.target == target {
            return callback;
        }
    }
}

/// The hub's error text for a failed call, without SignalR's prefix.
async fn error(
    client: &mut Client,
    method: &str,
    arguments: impl hub_server::protocol::EncodeArguments,
) -> String {
    let error = client
        .invoke::<serde_json::Value>(method, arguments)
        .await
        .unwrap_err()
        .to_string();
    match error.split_once("HubException: ") {
        Some((_, text)) => text.to_owned(),
        None => panic!("not a hub error: {error}"),
    }
}

#[tokio::test]
async fn messages_reach_the_room_and_history_replays_the_last_fifty() {
    let hub = chat();
    let mut alice = join_as(&hub, "alice").await;
    let _: JoinedRoom = alice.invoke("JoinRoom", ("rust",)).await.unwrap();
    for i in 0..HISTORY + 5 {
        let sent: ChatMessage = alice
            .invoke("SendMessage", ("rust", format!("message {i}")))
            .await
            .unwrap();
        assert_eq!(sent.from, "alice");
    }
    let mut bob = join_as(&hub, "bob").await;
    let joined: JoinedRoom = bob.invoke("JoinRoom", ("rust",)).await.unwrap();
    assert_eq!(joined.history.len(), HISTORY);
    assert_eq!(joined.history[0].text, "message 5");
    assert_eq!(
        joined.history[HISTORY - 1].text,
        format!("message {}", HISTORY + 4)
    );
    assert_eq!(joined.presence.members, ["alice", "bob"]);

    let _: ChatMessage = bob
        .invoke("SendMessage", ("rust", "hi alice"))
        .await
        .unwrap();
    loop {
        let message: ChatMessage = next(&mut alice, "ReceiveMessage")
            .await
            .argument(0)
            .unwrap();
        if message.from == "bob" {
            assert_eq!(message.text, "hi alice");
            break;
        }
    }
}

#[tokio::test]
async fn presence_follows_joins_leaves_and_disconnects() {
    let hub = chat();
    let mut alice = join_as(&hub, "alice").await;
    let mut bob = join_as(&hub, "Bob").await;
    let carol = join_as(&hub, "carol").await;
    for client in [&mut alice, &mut bob] {
        let _: JoinedRoom = client.invoke("JoinRoom", ("general",)).await.unwrap();
    }
    let mut carol = carol;
    let _: JoinedRoom = carol.invoke("JoinRoom", ("general",)).await.unwrap();
    let presence: Presence = alice.invoke("Members", ("general",)).await.unwrap();
    assert_eq!(presence.members, ["alice", "Bob", "carol"]);

    let () = bob.invoke("LeaveRoom", ("general",)).await.unwrap();
    loop {
        let presence: Presence = next(&mut alice, "PresenceChanged")
            .await
            .argument(0)
            .unwrap();
        if presence.members == ["alice", "carol"] {
            break;
        }
    }
    carol.close().await;
    loop {
        let presence: Presence = next(&mut alice, "PresenceChanged")
            .await
            .argument(0)
            .unwrap();
        if presence.members == ["alice"] {
            break;
        }
    }
    // The nickname is free again.
    let _carol_again = join_as(&hub, "Carol").await;
}

#[tokio::test]
async fn private_messages_reach_only_their_user() {
    let hub = chat();
    let mut alice = join_as(&hub, "alice").await;
    let mut bob = join_as(&hub, "bob").await;
    let mut carol = join_as(&hub, "carol").await;
    let sent: PrivateMessage = alice.invoke("SendPrivate", ("BOB", "psst")).await.unwrap();
    assert_eq!((sent.from.as_str(), sent.to.as_str()), ("alice", "bob"));
    let received: PrivateMessage = next(&mut bob, "ReceivePrivate").await.argument(0).unwrap();
    assert_eq!(received, sent);
    // A later call proves carol's queue holds everything sent before it.
    let _: serde_json::Value = carol.invoke("ListRooms", ()).await.unwrap();
    while let Some(callback) = carol.try_next_callback() {
        assert_ne!(callback.target, "ReceivePrivate");
    }
}

#[tokio::test]
async fn rejections_say_what_is_wrong() {
    let hub = chat();
    let mut anonymous = hub.connect().await.unwrap();
    assert_eq!(
        error(&mut anonymous, "JoinRoom", ("general",)).await,
        "choose a nickname first"
    );
    let mut alice = join_as(&hub, "alice").await;
    assert_eq!(
        error(&mut anonymous, "SetNickname", ("ALICE",)).await,
        "the nickname `ALICE` is taken; pick another"
    );
    assert_eq!(
        error(&mut alice, "JoinRoom", ("nowhere",)).await,
        "there is no room called #nowhere"
    );
    assert_eq!(
        error(&mut alice, "SendMessage", ("general", "hi")).await,
        "join #general before posting to it"
    );
    let _: JoinedRoom = alice.invoke("JoinRoom", ("general",)).await.unwrap();
    assert_eq!(
        error(&mut alice, "SendMessage", ("general", "   ")).await,
        "a message needs some text"
    );
    assert_eq!(
        error(&mut alice, "SendMessage", ("general", "x".repeat(501))).await,
        "messages are at most 500 characters (this one has 501)"
    );
    let _: ChatMessage = alice
        .invoke("SendMessage", ("general", "é".repeat(500)))
        .await
        .unwrap();
    assert_eq!(
        error(&mut alice, "SendPrivate", ("nobody", "hi")).await,
        "nobody called `nobody` is online"
    );
    assert_eq!(
        error(&mut alice, "CreateRoom", ("Bad Name",)).await,
        "room names may use lowercase letters, digits and `-` only"
    );
}

#[tokio::test]
async fn room_activity_needs_a_nickname_and_a_room() {
    let hub = chat();
    let mut anonymous = hub.connect().await.unwrap();
    let error = anonymous
        .stream::<RoomEvent>("RoomActivity", ("general",))
        .await
        .unwrap_err();
    assert!(error
        .to_string()
        .ends_with("HubException: choose a nickname first"));
    let mut alice = join_as(&hub, "alice").await;
    let error = alice
        .stream::<RoomEvent>("RoomActivity", ("nowhere",))
        .await
        .unwrap_err();
    assert!(error
        .to_string()
        .ends_with("HubException: there is no room called #nowhere"));
}

/// `set_nickname` and `create_room` refuse with a `ChatError`, the others with text: what the
/// generator reads to type the page's errors (`isChatError`, `@throws`).
#[test]
fn the_metadata_names_chat_error_for_nicknames_and_room_creation() {
    let methods = ServeChat::<()>::METADATA.methods;
    let typed: Vec<(&str, String)> = methods
        .iter()
        .filter_map(|method| (method.error)().map(|error| (method.name, error.rust.to_string())))
        .collect();
    assert_eq!(typed.len(), 2, "{typed:?}");
    for (name, (method, error)) in ["set_nickname", "create_room"].into_iter().zip(&typed) {
        assert_eq!(*method, name);
        assert!(error.ends_with("ChatError"), "{error}");
    }
}

#[test]
fn suggested_nicknames_are_valid_and_never_the_one_asked_for() {
    let variants = nickname_variants("ida");
    assert_eq!(&variants[..3], ["ida2", "ida3", "ida4"]);
    assert_eq!(variants.len(), 98);
    // A number at the end is replaced, not extended, and the nickname itself is skipped.
    let variants = nickname_variants("Ida3");
    assert_eq!(&variants[..3], ["Ida2", "Ida4", "Ida5"]);
    assert!(!variants.iter().any(|v| v.eq_ignore_ascii_case("ida3")));
    // Only digits: they are the stem.
    assert_eq!(nickname_variants("2024")[0], "20242");
    // The longest nickname is cut to make room for the number.
    let long = "é".repeat(MAX_NICKNAME_CHARS);
    for variant in nickname_variants(&long) {
        assert_eq!(variant.chars().count(), MAX_NICKNAME_CHARS, "{variant}");
        assert!(variant.starts_with('é'));
    }
}

#[test]
fn failures_on_the_way_become_unavailable_without_internal_details() {
    assert_eq!(
        ChatError::from(HubError::new(
            "the chat's shared store (Redis) is unavailable; try again in a moment"
        )),
        ChatError::Unavailable {
            reason: "the chat's shared store (Redis) is unavailable; try again in a moment".into()
        }
    );
    let internal = ChatError::from(HubError::internal("connection reset by peer 10.0.0.7"));
    assert_eq!(
        internal.to_string(),
        "the chat server could not do that just now; try again in a moment"
    );
}

/// The chat's hub as `main.rs` serves it (its HTTP service, in process).
fn chat_service() -> HubService {
    HubServer::builder()
        .hub("/chat", ServeChat::new(ChatServer::default()))
        .into_service()
        .unwrap()
}

/// Sends one HTTP request to the service; the response's body as text.
async fn http(service: &HubService, method: Method, uri: &str, body: &str) -> String {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), service.handle(request))
        .await
        .unwrap_or_else(|_| panic!("{uri} did not answer within 10 s"));
    assert!(
        response.status().is_success(),
        "{uri}: {}",
        response.status()
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// A raw SignalR client of the chat (long polling, JSON): it reads whole Completions, headers
/// included, as the generated client receives them.
struct RawClient {
    service: HubService,
    url: String,
    received: String,
    next_id: u32,
}

impl RawClient {
    /// Negotiates, sends the handshake and waits for its answer.
    async fn connect(service: &HubService) -> RawClient {
        let negotiated = http(
            service,
            Method::POST,
            "/chat/negotiate?negotiateVersion=1",
            "",
        )
        .await;
        let negotiated: Value = serde_json::from_str(&negotiated).unwrap();
        let token = negotiated["connectionToken"].as_str().unwrap();
        let mut client = RawClient {
            service: service.clone(),
            url: format!("/chat?id={token}"),
            received: String::new(),
            next_id: 0,
        };
        client
            .post("{\"protocol\":\"json\",\"version\":1}\u{1e}")
            .await;
        assert_eq!(client.next_frame().await, "{}");
        client
    }

    async fn post(&self, text: &str) {
        http(&self.service, Method::POST, &self.url, text).await;
    }

    /// The next frame the hub sent, polling for more when none is waiting.
    async fn next_frame(&mut self) -> String {
        loop {
            if let Some(end) = self.received.find('\u{1e}') {
                let frame = self.received[..end].to_owned();
                self.received.drain(..=end);
                return frame;
            }
            let polled = http(&self.service, Method::GET, &self.url, "").await;
            self.received.push_str(&polled);
        }
    }

    /// Invokes `target` and returns its Completion (skipping callbacks and pings).
    async fn invoke(&mut self, target: &str, arguments: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let invocation =
            json!({ "type": 1, "invocationId": id, "target": target, "arguments": arguments });
        self.post(&format!("{invocation}\u{1e}")).await;
        loop {
            let frame: Value = serde_json::from_str(&self.next_frame().await).unwrap();
            if frame["type"] == 3 && frame["invocationId"] == id.as_str() {
                return frame;
            }
        }
    }

    /// Invokes `target`, which must fail: the error text every client reads, and the typed
    /// error (the `hubs-error` header as JSON) when there is one.
    async fn refused(&mut self, target: &str, arguments: Value) -> (String, Option<Value>) {
        let completion = self.invoke(target, arguments).await;
        let text = completion["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{target} did not fail: {completion}"))
            .to_owned();
        let typed = completion["headers"]["hubs-error"]
            .as_str()
            .map(|header| serde_json::from_str(header).unwrap());
        (text, typed)
    }

    /// The typed `ChatError` a refused call carries (checking its text is the error's text).
    async fn chat_error(&mut self, target: &str, arguments: Value) -> ChatError {
        let (text, typed) = self.refused(target, arguments).await;
        let typed = typed.unwrap_or_else(|| panic!("{target}: no typed error with `{text}`"));
        assert_eq!(typed["type"], "ChatError");
        let error: ChatError = serde_json::from_value(typed["error"].clone()).unwrap();
        assert_eq!(
            text,
            format!("An unexpected error occurred invoking '{target}' on the server. HubException: {error}")
        );
        error
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_nicknames_and_rooms_arrive_typed() {
    let service = chat_service();
    let mut alice = RawClient::connect(&service).await;
    let session = alice.invoke("SetNickname", json!(["alice"])).await;
    assert_eq!(session["result"]["nickname"], "alice");

    // A taken nickname: the text every client reads, and the value with a free variant.
    let mut other = RawClient::connect(&service).await;
    let (text, typed) = other.refused("SetNickname", json!(["ALICE"])).await;
    assert_eq!(
        text,
        "An unexpected error occurred invoking 'SetNickname' on the server. HubException: the nickname `ALICE` is taken; pick another"
    );
    assert_eq!(
        typed,
        Some(json!({
            "type": "ChatError",
            "error": { "kind": "NicknameTaken", "nickname": "ALICE", "suggestion": "ALICE2" }
        }))
    );
    // The suggestion is one nobody has.
    let mut alice2 = RawClient::connect(&service).await;
    let session = alice2.invoke("SetNickname", json!(["Alice2"])).await;
    assert_eq!(session["result"]["nickname"], "Alice2");
    assert_eq!(
        other.chat_error("SetNickname", json!(["ALICE"])).await,
        ChatError::NicknameTaken {
            nickname: "ALICE".into(),
            suggestion: Some("ALICE3".into())
        }
    );
    assert_eq!(
        other.chat_error("SetNickname", json!(["bad name!"])).await,
        ChatError::NicknameInvalid {
            reason: "nicknames may use letters, digits, `_`, `-` and `.` only".into()
        }
    );
    // Rooms need a nickname.
    assert_eq!(
        other.chat_error("CreateRoom", json!(["fresh"])).await,
        ChatError::NicknameRequired
    );
    // Taking the suggestion works; a second nickname does not.
    let session = other.invoke("SetNickname", json!(["ALICE3"])).await;
    assert_eq!(session["result"]["nickname"], "ALICE3");
    assert_eq!(
        other.chat_error("SetNickname", json!(["zed"])).await,
        ChatError::NicknameAlreadySet {
            nickname: "ALICE3".into()
        }
    );

    // Rooms.
    assert_eq!(
        alice.chat_error("CreateRoom", json!(["#general"])).await,
        ChatError::RoomExists {
            room: "general".into()
        }
    );
    assert_eq!(
        alice.chat_error("CreateRoom", json!(["Bad Name"])).await,
        ChatError::RoomNameInvalid {
            reason: "room names may use lowercase letters, digits and `-` only".into()
        }
    );
    let created = alice.invoke("CreateRoom", json!(["fresh"])).await;
    assert_eq!(
        created["result"],
        json!({ "name": "fresh", "memberCount": 0 })
    );
    assert_eq!(
        other.chat_error("CreateRoom", json!(["fresh"])).await,
        ChatError::RoomExists {
            room: "fresh".into()
        }
    );

    // Methods with untyped errors answer text only.
    let (text, typed) = alice.refused("JoinRoom", json!(["nowhere"])).await;
    assert!(text.ends_with("HubException: there is no room called #nowhere"));
    assert_eq!(typed, None);
    service.shutdown().await;
}

/// A real Redis for the two-server tests: Debian's `redis-server` on a free loopback port, with a
/// generated configuration (no persistence), killed when dropped.
struct Redis {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        use std::io::{Read, Write};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("chat-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("redis.conf");
        std::fs::write(
            &config,
            format!(
                "bind 127.0.0.1\nport {port}\nsave \"\"\nappendonly no\ndir {}\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("redis-server")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("could not start redis-server ({error}): apt-get install redis-server")
            });
        let redis = Redis { child, dir, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let pong = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut stream| {
                let mut reply = [0u8; 7];
                stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
            });
            if pong {
                return redis;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One chat server on `redis`, as node `node_id`: the hub on the backplane, its state in the
/// Redis store, as `main.rs` builds it with `REDIS_URL`.
async fn chat_server(redis: &Redis, node_id: &str) -> TestHub<ChatClientProxy> {
    let backplane = RedisBackplane::connect(
        RedisConfig::new(redis.url())
            .prefix("chat")
            .heartbeat(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let store = ChatStore::redis(&redis.url(), "chat").await.unwrap();
    TestHub::on_node(
        ServeChat::new(ChatServer::new(store)),
        HubConfig::default(),
        backplane.manager(),
        node_id,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_serve_one_chat() {
    let redis = Redis::start();
    let one = chat_server(&redis, "one").await;
    let two = chat_server(&redis, "two").await;
    // The servers see each other at their first heartbeats.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut alice = join_as(&one, "alice").await;
    let mut bob = join_as(&two, "bob").await;
    // Nicknames are unique across servers, and what is suggested instead is free on both.
    let mut other = two.connect().await.unwrap();
    assert_eq!(
        error(&mut other, "SetNickname", ("ALICE",)).await,
        "the nickname `ALICE` is taken; pick another"
    );
    let _alice2 = join_as(&two, "alice2").await;
    let store = ChatStore::redis(&redis.url(), "chat").await.unwrap();
    assert_eq!(
        store
            .first_free_nickname(&nickname_variants("ALICE"))
            .await
            .unwrap()
            .as_deref(),
        Some("ALICE3")
    );

    // A room created on one server exists on the other.
    let _: serde_json::Value = alice.invoke("CreateRoom", ("across",)).await.unwrap();
    let _: JoinedRoom = alice.invoke("JoinRoom", ("across",)).await.unwrap();
    // What a third server's `RoomActivity` streams read.
    let watcher = ChatStore::redis(&redis.url(), "chat").await.unwrap();
    let mut activity = watcher.subscribe("across");
    let joined: JoinedRoom = bob.invoke("JoinRoom", ("across",)).await.unwrap();
    assert_eq!(joined.presence.members, ["alice", "bob"]);
    let presence: Presence = alice.invoke("Members", ("across",)).await.unwrap();
    assert_eq!(presence.members, ["alice", "bob"]);

    // Messages cross, and get ids from one sequence.
    let first: ChatMessage = alice
        .invoke("SendMessage", ("across", "hello from one"))
        .await
        .unwrap();
    let received: ChatMessage = next(&mut bob, "ReceiveMessage").await.argument(0).unwrap();
    assert_eq!(received, first);
    let second: ChatMessage = bob
        .invoke("SendMessage", ("across", "hello from two"))
        .await
        .unwrap();
    assert!(second.id > first.id);
    // The activity of the room reaches every server, whichever server it happened on.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), activity.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push(event);
    }
    assert!(matches!(&seen[0], RoomEvent::Joined { nickname, .. } if nickname == "bob"));
    assert!(matches!(&seen[1], RoomEvent::Message { message } if *message == first));
    assert!(matches!(&seen[2], RoomEvent::Message { message } if *message == second));

    // Private messages cross.
    let sent: PrivateMessage = bob.invoke("SendPrivate", ("Alice", "psst")).await.unwrap();
    assert_eq!((sent.from.as_str(), sent.to.as_str()), ("bob", "alice"));
    let received: PrivateMessage = next(&mut alice, "ReceivePrivate")
        .await
        .argument(0)
        .unwrap();
    assert_eq!(received, sent);

    // The history is shared: a later joiner on either server gets both messages.
    let carol = join_as(&one, "carol").await;
    let mut carol = carol;
    let joined: JoinedRoom = carol.invoke("JoinRoom", ("across",)).await.unwrap();
    let texts: Vec<&str> = joined.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hello from one", "hello from two"]);
    assert_eq!(joined.presence.members, ["alice", "bob", "carol"]);

    // Leaving on one server frees the nickname on the other.
    bob.close().await;
    loop {
        let presence: Presence = next(&mut alice, "PresenceChanged")
            .await
            .argument(0)
            .unwrap();
        if presence.members == ["alice", "carol"] {
            break;
        }
    }
    let _bob_again = join_as(&one, "Bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nickname_left_behind_by_a_crashed_server_can_be_taken() {
    let redis = Redis::start();
    let server = chat_server(&redis, "one").await;
    // What a server that crashed leaves: dave's nickname, owned by a connection nobody has.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for (nickname, owner) in [("dave", "gone-1"), ("erin", "gone-2")] {
        let () = redis::pipe()
            .hset("chat:state:owners", nickname, owner)
            .ignore()
            .hset("chat:state:nicknames", owner, nickname)
            .ignore()
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    let mut alice = join_as(&server, "alice").await;
    assert_eq!(
        error(&mut alice, "SendPrivate", ("erin", "are you there?")).await,
        "nobody called `erin` is online"
    );
    let _dave = join_as(&server, "Dave").await;
    let owners: std::collections::HashMap<String, String> =
        redis::AsyncCommands::hgetall(&mut connection, "chat:state:owners")
            .await
            .unwrap();
    assert_ne!(owners["dave"], "gone-1");
    let stale: Option<String> =
        redis::AsyncCommands::hget(&mut connection, "chat:state:nicknames", "gone-1")
            .await
            .unwrap();
    assert_eq!(stale, None);
}
