//! Stateful reconnect over WebSockets with a raw client: negotiate and handshake opt-in, Acks,
//! resuming a connection on a new socket (Sequence, replay, duplicates dropped both ways), the
//! disconnect window, and silence towards clients that did not ask.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{
    invocation_args, negotiate, negotiate_stateful_token, negotiate_token, refused_upgrade, result,
    test_hub, Received, TestServer, WsClient, PATH,
};
use http::StatusCode;
use hub_server::protocol::{Ack, HubMessage, Protocol, Sequence};
use hub_server::{Context, HubConfig, HubError, HubMethods, TransportType};

/// The test hub plus `PushSlowly(n, ms)`: pushes `Item(i)` for i in 0..n to the caller, `ms` apart.
fn hub() -> HubMethods<Context> {
    test_hub().method(
        "PushSlowly",
        |cx: Context, (n, ms): (u32, u64)| async move {
            for i in 0..n {
                cx.clients().caller().send("Item", (i,)).await?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok::<_, HubError>(n)
        },
    )
}

fn ack(sequence_id: u64) -> HubMessage<(), ()> {
    HubMessage::Ack(Ack { sequence_id })
}

fn sequence(sequence_id: u64) -> HubMessage<(), ()> {
    HubMessage::Sequence(Sequence { sequence_id })
}

/// Whether a message is numbered (types 1–5).
fn is_tracked(received: &Received) -> bool {
    matches!(
        received.message,
        HubMessage::Invocation(_)
            | HubMessage::StreamItem(_)
            | HubMessage::Completion(_)
            | HubMessage::StreamInvocation(_)
            | HubMessage::CancelInvocation(_)
    )
}

/// A stateful client: negotiated with `useStatefulReconnect=true`, handshake version 2.
async fn stateful_client(server: &TestServer) -> (WsClient, String) {
    let token = negotiate_stateful_token(server.addr, PATH).await;
    let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    client.handshake_version(Protocol::Json, 2).await;
    (client, token)
}

/// What the client keeps of the server's numbered messages, deduplicated as the JS client does.
#[derive(Default)]
struct Receiver {
    /// The id the next numbered message gets.
    next: u64,
    /// The highest id processed.
    latest: u64,
    /// Processed numbered messages, in order.
    kept: Vec<Received>,
}

impl Receiver {
    fn new() -> Self {
        Receiver {
            next: 1,
            ..Receiver::default()
        }
    }

    /// Takes one message; returns whether it was a new numbered one.
    fn take(&mut self, received: Received) -> bool {
        match received.message {
            HubMessage::Sequence(Sequence { sequence_id }) => {
                assert!(
                    sequence_id <= self.next,
                    "Sequence {sequence_id} > {}",
                    self.next
                );
                self.next = sequence_id;
                false
            }
            _ if is_tracked(&received) => {
                let id = self.next;
                self.next += 1;
                if id <= self.latest {
                    return false;
                }
                self.latest = id;
                self.kept.push(received);
                true
            }
            _ => false,
        }
    }
}

/// The next message of types 1–5 (Pings and Acks skipped).
async fn next_tracked(client: &mut WsClient) -> Received {
    loop {
        let received = client.recv().await;
        if is_tracked(&received) {
            return received;
        }
    }
}

/// Calls Echo and checks the answer, skipping Pings and Acks.
async fn echo(client: &mut WsClient, id: &str, text: &str) {
    client.invoke(id, "Echo", (text,)).await;
    let received = next_tracked(client).await;
    match &received.message {
        HubMessage::Completion(completion) => {
            assert_eq!(completion.invocation_id, id);
            assert_eq!(result::<String>(completion), text);
        }
        other => panic!("expected a Completion, got {other:?}"),
    }
}

fn completion_id(received: &Received) -> Option<&str> {
    match &received.message {
        HubMessage::Completion(completion) => Some(&completion.invocation_id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_grants_stateful_reconnect_only_when_asked() {
    let server = TestServer::start(hub(), HubConfig::new()).await;
    let (status, body) = negotiate(server.addr, PATH, "negotiateVersion=1").await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(!text.contains("useStatefulReconnect"), "{text}");

    // Query keys are case-insensitive; the field comes first, as ASP.NET writes it.
    let (_, body) = negotiate(
        server.addr,
        PATH,
        "negotiateVersion=1&UseStatefulReconnect=true",
    )
    .await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.starts_with(r#"{"useStatefulReconnect":true,"negotiateVersion":1,"#),
        "{text}"
    );

    // Switched off, or without WebSockets: not granted.
    for config in [
        HubConfig::new().stateful_reconnect(false),
        HubConfig::new().transports([TransportType::ServerSentEvents, TransportType::LongPolling]),
    ] {
        let server = TestServer::start(hub(), config).await;
        let (_, body) = negotiate(
            server.addr,
            PATH,
            "negotiateVersion=1&useStatefulReconnect=true",
        )
        .await;
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("useStatefulReconnect"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_arrive_at_most_once_a_second_and_only_for_new_messages() {
    let server = TestServer::start(hub(), HubConfig::new()).await;
    let (mut client, _) = stateful_client(&server).await;
    client.send_message(&HubMessage::<(), ()>::Ping).await;
    for i in 0..5 {
        client
            .invoke(&i.to_string(), "Echo", (i.to_string(),))
            .await;
    }
    let started = tokio::time::Instant::now();
    let mut acks = Vec::new();
    while started.elapsed() < Duration::from_millis(2500) {
        let Some(received) = client.try_recv_within(Duration::from_millis(100)).await else {
            continue;
        };
        if let HubMessage::Ack(Ack { sequence_id }) = received.message {
            acks.push((started.elapsed(), sequence_id));
        }
        assert!(!matches!(received.message, HubMessage::Sequence(_)));
    }
    // The five invocations (the Ping is not numbered) are acknowledged once.
    assert_eq!(
        acks.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        [5],
        "{acks:?}"
    );
    assert!(acks[0].0 <= Duration::from_millis(1500), "{acks:?}");

    // Something new: one more Ack.
    client.invoke("5", "Echo", ("5",)).await;
    let started = tokio::time::Instant::now();
    loop {
        let received = client.recv().await;
        if let HubMessage::Ack(Ack { sequence_id }) = received.message {
            assert_eq!(sequence_id, 6);
            break;
        }
    }
    assert!(started.elapsed() <= Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_resumes_with_sequence_then_replay_and_no_duplicates() {
    let server = TestServer::start(hub(), HubConfig::new()).await;
    let (mut client, token) = stateful_client(&server).await;
    let mut receiver = Receiver::new();

    // Client message 1.
    client.invoke("c1", "ConnectionId", ()).await;
    let first = next_tracked(&mut client).await;
    let id_before: String = match &first.message {
        HubMessage::Completion(completion) => result(completion),
        other => panic!("expected a Completion, got {other:?}"),
    };
    assert!(receiver.take(first));
    // Client message 2: 40 pushes, 15 ms apart.
    client.invoke("p", "PushSlowly", (40, 15)).await;
    while receiver.kept.len() < 6 {
        let received = client.recv().await;
        receiver.take(received);
    }
    // Acknowledge the server's first 6 messages (the Completion and 5 items); wait for it to land.
    client.send_message(&ack(6)).await;
    // Client message 3, possibly lost with the socket.
    client.invoke("e1", "Echo", ("hello",)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(client);
    // The server keeps pushing while no socket is attached.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.wait_for_connection_count(1).await;

    let mut client =
        WsClient::resume(server.addr, &format!("{PATH}?id={token}"), Protocol::Json).await;
    // The server's Sequence comes first: everything after what was acknowledged.
    let first = client.recv().await;
    assert!(
        matches!(
            first.message,
            HubMessage::Sequence(Sequence { sequence_id: 7 })
        ),
        "{first:?}"
    );
    receiver.take(first);
    // The client's side: Sequence 1, then everything again (all duplicates), then a new call.
    client.send_message(&sequence(1)).await;
    client.invoke("c1", "ConnectionId", ()).await;
    client.invoke("p", "PushSlowly", (40, 15)).await;
    client.invoke("e1", "Echo", ("hello",)).await;
    client.invoke("c2", "ConnectionId", ()).await;

    let mut replayed_first = None;
    while !receiver.kept.iter().any(|r| completion_id(r) == Some("c2"))
        || !receiver.kept.iter().any(|r| completion_id(r) == Some("p"))
    {
        let received = client.recv().await;
        let raw = received.text().to_owned();
        if receiver.take(received) && replayed_first.is_none() {
            replayed_first = Some(raw);
        }
    }
    assert_eq!(
        replayed_first.as_deref(),
        Some(r#"{"type":1,"target":"Item","arguments":[5]}"#),
        "the replay starts at the first unacknowledged message"
    );

    // Every push exactly once, in order; every call answered exactly once.
    let items: Vec<u32> = receiver
        .kept
        .iter()
        .filter(|r| matches!(&r.message, HubMessage::Invocation(_)))
        .map(|r| invocation_args::<(u32,)>(r, "Item").0)
        .collect();
    assert_eq!(items, (0..40).collect::<Vec<_>>());
    let completions: Vec<&str> = receiver.kept.iter().filter_map(completion_id).collect();
    let mut sorted = completions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["c1", "c2", "e1", "p"], "{completions:?}");
    let id_after: String = receiver
        .kept
        .iter()
        .find_map(|r| match &r.message {
            HubMessage::Completion(c) if c.invocation_id == "c2" => Some(result(c)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        id_after, id_before,
        "the connection id survives the reconnect"
    );
    // And nothing more: the duplicate calls were dropped.
    client
        .expect_silence_of_tracked(Duration::from_millis(300))
        .await;
    server.wait_for_connection_count(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_before_the_clients_sequence_are_dropped_and_a_bad_sequence_fails() {
    let server = TestServer::start(hub(), HubConfig::new()).await;
    let (mut client, token) = stateful_client(&server).await;
    echo(&mut client, "e", "one").await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut client =
        WsClient::resume(server.addr, &format!("{PATH}?id={token}"), Protocol::Json).await;
    let first = client.recv().await;
    assert!(
        matches!(
            first.message,
            HubMessage::Sequence(Sequence { sequence_id: 1 })
        ),
        "{first:?}"
    );
    // Nothing was acknowledged: the echo's Completion is replayed.
    let replayed = next_tracked(&mut client).await;
    assert_eq!(completion_id(&replayed), Some("e"), "{replayed:?}");
    // Before the client's Sequence: ignored.
    client.invoke("x", "Echo", ("ignored",)).await;
    client
        .expect_silence_of_tracked(Duration::from_millis(300))
        .await;
    // The server received one numbered message: Sequence 3 names one it never got.
    client.send_message(&sequence(3)).await;
    client.expect_close_with_error().await;
    server.wait_for_connection_count(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_after_the_disconnect_window_gets_404() {
    let server = TestServer::start(
        hub(),
        HubConfig::new().disconnect_timeout(Duration::from_millis(300)),
    )
    .await;
    let (mut client, token) = stateful_client(&server).await;
    echo(&mut client, "e", "one").await;
    // An attached stateful connection refuses a second socket.
    let (status, _) = refused_upgrade(server.addr, &format!("{PATH}?id={token}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    drop(client);
    server.wait_for_connection_count(1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.wait_for_connection_count(0).await;
    let (status, _) = refused_upgrade(server.addr, &format!("{PATH}?id={token}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_did_not_ask_never_get_ack_or_sequence() {
    let server = TestServer::start(hub(), HubConfig::new()).await;
    // Not negotiated (even with handshake version 2), and negotiated but handshake version 1.
    let plain = negotiate_token(server.addr, PATH).await;
    let stateful = negotiate_stateful_token(server.addr, PATH).await;
    for (token, version) in [(plain, 2), (stateful, 1)] {
        let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
        client.handshake_version(Protocol::Json, version).await;
        for i in 0..3 {
            client.echo_works(&format!("m{i}")).await;
        }
        let started = tokio::time::Instant::now();
        while started.elapsed() < Duration::from_millis(1300) {
            if let Some(received) = client.try_recv_within(Duration::from_millis(100)).await {
                assert!(
                    !matches!(
                        received.message,
                        HubMessage::Ack(_) | HubMessage::Sequence(_)
                    ),
                    "{received:?}"
                );
            }
        }
        // Not resumable: a second socket is refused and a dropped one ends the connection.
        let (status, _) = refused_upgrade(server.addr, &format!("{PATH}?id={token}")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        drop(client);
        server.wait_for_connection_count(0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_wait_while_the_replay_buffer_is_full() {
    // Each Item message is about 44 bytes: the third one fills a 100-byte buffer.
    let server =
        TestServer::start(hub(), HubConfig::new().stateful_reconnect_buffer_size(100)).await;
    let (mut client, _) = stateful_client(&server).await;
    client.invoke("p", "Push", (20,)).await;
    let mut receiver = Receiver::new();
    let mut acked = 0;
    while !receiver.kept.iter().any(|r| completion_id(r) == Some("p")) {
        // Whatever was sent before the buffer filled, then nothing until an Ack.
        let mut batch = 0;
        while let Some(received) = client.try_recv_within(Duration::from_millis(200)).await {
            if receiver.take(received) {
                batch += 1;
            }
        }
        assert!(
            (1..=3).contains(&batch),
            "{batch} messages arrived without an Ack"
        );
        acked += batch;
        client.send_message(&ack(acked)).await;
    }
    let items: Vec<u32> = receiver
        .kept
        .iter()
        .filter(|r| matches!(&r.message, HubMessage::Invocation(_)))
        .map(|r| invocation_args::<(u32,)>(r, "Item").0)
        .collect();
    assert_eq!(items, (0..20).collect::<Vec<_>>());
}
