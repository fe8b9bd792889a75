//! The chat hub in process (`hub_server::testing`), and the committed client's drift check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hub_server::testing::{Callback, TestClient, TestHub};

use crate::hub::{
    ChatClientProxy, ChatMessage, ChatServer, JoinedRoom, Presence, PrivateMessage, RoomEvent,
    ServeChat, Session, HISTORY,
};

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
