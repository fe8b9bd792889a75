//! Server-Sent Events end to end over raw HTTP: the event stream's headers and framing, the
//! handshake over it, sends (POST) with every status, ordering of one and of concurrent POSTs,
//! keep-alive, the end of a connection from either side, and which transports a hub offers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{
    header_str, http, invocation_args, negotiate_token, negotiate_v1, refused_upgrade, result,
    test_hub, EventStream, HttpHub, TestServer, PATH, TIMEOUT,
};
use http::{Method, StatusCode};
use hub_server::protocol::{HubMessage, Invocation, Protocol};
use hub_server::{HubConfig, TransportType};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_has_the_headers_and_opening_comment_of_asp_net() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = negotiate_token(server.addr, PATH).await;
    let mut events = EventStream::open(server.addr, &format!("{PATH}?id={token}"), &[])
        .await
        .expect("200");
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(
        header_str(&events.headers, "content-type"),
        "text/event-stream"
    );
    assert_eq!(
        header_str(&events.headers, "cache-control"),
        "no-cache,no-store"
    );
    assert_eq!(header_str(&events.headers, "pragma"), "no-cache");
    assert_eq!(header_str(&events.headers, "content-encoding"), "identity");
    assert!(events.headers.get("content-length").is_none());
    // The first write is the comment alone, before the client sends anything.
    let first = events.next_chunk_within(TIMEOUT).await.unwrap();
    assert_eq!(&first[..], b":\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_reply_and_messages_arrive_as_data_events() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::open_sse(server.addr, PATH).await;
    hub.post_ok(b"{\"protocol\":\"json\",\"version\":1}\x1e")
        .await;
    hub.post_ok(
        b"{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"hi\"]}\x1e",
    )
    .await;
    let common::Down::Sse(events) = &mut hub.down else {
        unreachable!()
    };
    let mut raw = Vec::new();
    while !raw.ends_with(b"\"result\":\"hi\"}\x1e\r\n\r\n") {
        raw.extend_from_slice(&events.next_chunk_within(TIMEOUT).await.unwrap());
    }
    // Each event: `data: <whole messages>\r\n\r\n`; never `id:` or `retry:`.
    let text = String::from_utf8(raw).unwrap();
    let events: Vec<&str> = text.split_terminator("\r\n\r\n").collect();
    assert_eq!(events[0], "data: {}\u{1e}", "{text:?}");
    assert_eq!(
        events.last().unwrap(),
        &"data: {\"type\":3,\"invocationId\":\"1\",\"result\":\"hi\"}\u{1e}",
        "{text:?}"
    );
    for event in &events {
        assert!(event.starts_with("data: "), "{text:?}");
        assert!(!event.contains('\n'), "one line per event here: {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_pushes_and_errors_work_over_sse() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::sse(server.addr).await;
    hub.echo_works("héllo 😀").await;
    hub.invoke("v", "Void", ()).await;
    assert_eq!(
        hub.recv_skip_pings().await.text(),
        "{\"type\":3,\"invocationId\":\"v\",\"result\":null}"
    );
    hub.invoke("p", "Push", (3,)).await;
    for i in 0..3u32 {
        let received = hub.recv_skip_pings().await;
        assert_eq!(invocation_args::<(u32,)>(&received, "Item"), (i,));
    }
    assert_eq!(result::<u32>(&hub.expect_completion("p").await), 3);
    hub.invoke("t", "Throw", ()).await;
    assert_eq!(
        common::error(&hub.expect_completion("t").await),
        "An unexpected error occurred invoking 'Throw' on the server."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_requests_without_id_or_with_an_unknown_one_are_refused() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, _, body) = EventStream::open(server.addr, PATH, &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], b"Connection ID required");
    let (status, _, body) = EventStream::open(server.addr, &format!("{PATH}?id=nope"), &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"No Connection with that ID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_event_stream_conflicts_and_another_transport_is_refused() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let hub = HttpHub::open_sse(server.addr, PATH).await;
    let (status, _, _) = EventStream::open(server.addr, &hub.url(), &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = refused_upgrade(server.addr, &hub.url()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], b"Cannot change transports mid-connection");
    let (status, _, body) = hub.poll().await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], b"Cannot change transports mid-connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_answers_200_400_404_and_405_on_websockets() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let hub = HttpHub::sse(server.addr).await;
    let (status, headers, body) = http(
        server.addr,
        Method::POST,
        &hub.url(),
        &[],
        b"{\"type\":6}\x1e",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header_str(&headers, "content-type"), "text/plain");

    let (status, _, body) = http(server.addr, Method::POST, PATH, &[], b"{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], b"Connection ID required");

    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}?id=nope"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"No Connection with that ID");

    let token = negotiate_token(server.addr, PATH).await;
    let mut ws = common::WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    ws.handshake(Protocol::Json).await;
    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}?id={token}"),
        &[],
        b"{\"type\":6}\x1e",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        &body[..],
        b"POST requests are not allowed for WebSocket connections."
    );
    ws.echo_works("still fine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_over_the_body_limit_gets_413_and_the_connection_goes_on() {
    let server = TestServer::start(test_hub(), HubConfig::new().max_request_body_size(256)).await;
    let mut hub = HttpHub::sse(server.addr).await;
    let big = hub.encode(&Invocation::new("Echo", ("x".repeat(300),)).with_id("1"));
    let (status, _) = hub.post(&big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    hub.echo_works("small").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_messages_in_one_post_are_processed_in_order() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::sse(server.addr).await;
    let mut body = Vec::new();
    for (id, text) in [("1", "a"), ("2", "b"), ("3", "c")] {
        body.extend_from_slice(&hub.encode(&Invocation::new("Echo", (text,)).with_id(id)));
    }
    hub.post_ok(&body).await;
    for (id, text) in [("1", "a"), ("2", "b"), ("3", "c")] {
        assert_eq!(result::<String>(&hub.expect_completion(id).await), text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_queue_and_are_processed_in_arrival_order() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::sse(server.addr).await;
    let first = hub.encode(&Invocation::new("Echo", ("first",)).with_id("1"));
    let second = hub.encode(&Invocation::new("Echo", ("second",)).with_id("2"));

    // The first POST arrives, but its body trickles in: it holds the connection's send lock.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        hub.url(),
        server.addr,
        first.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&first[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The second POST queues behind it instead of failing.
    let (addr, url, second_body) = (server.addr, hub.url(), second.clone());
    let queued =
        tokio::spawn(async move { http(addr, Method::POST, &url, &[], &second_body).await.0 });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!queued.is_finished(), "the second POST did not wait");

    slow.write_all(&first[5..]).await.unwrap();
    let mut reply = vec![0u8; 1024];
    let n = tokio::time::timeout(
        TIMEOUT,
        tokio::io::AsyncReadExt::read(&mut slow, &mut reply),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        reply[..n].starts_with(b"HTTP/1.1 200 OK"),
        "{:?}",
        String::from_utf8_lossy(&reply[..n])
    );
    assert_eq!(queued.await.unwrap(), StatusCode::OK);
    assert_eq!(result::<String>(&hub.expect_completion("1").await), "first");
    assert_eq!(
        result::<String>(&hub.expect_completion("2").await),
        "second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messagepack_over_sse_is_refused_with_the_transfer_format_error() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::open_sse(server.addr, PATH).await;
    hub.post_ok(b"{\"protocol\":\"messagepack\",\"version\":1}\x1e")
        .await;
    let common::Down::Sse(events) = &mut hub.down else {
        unreachable!()
    };
    assert_eq!(
        String::from_utf8(events.next_event().await).unwrap(),
        "{\"error\":\"Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format.\"}\u{1e}"
    );
    events.expect_end().await;
    let (status, _) = hub.post(b"{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_pings_are_sent_over_sse() {
    let config = HubConfig::new().keep_alive_interval(Duration::from_millis(200));
    let server = TestServer::start(test_hub(), config).await;
    let mut hub = HttpHub::sse(server.addr).await;
    let started = tokio::time::Instant::now();
    let received = hub.recv().await;
    assert!(matches!(received.message, HubMessage::Ping));
    assert_eq!(received.text(), "{\"type\":6}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_message_ends_the_connection_and_the_response() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::sse(server.addr).await;
    hub.echo_works("x").await;
    server.wait_for_connection_count(1).await;
    hub.post_ok(b"{\"type\":7}\x1e").await;
    let close = hub.recv_skip_pings().await;
    assert_eq!(close.text(), "{\"type\":7}");
    assert!(hub.try_recv().await.is_none(), "the event stream must end");
    server.wait_for_connection_count(0).await;
    let (status, _) = hub.post(b"{\"type\":6}\x1e").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_event_stream_ends_the_connection() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::sse(server.addr).await;
    hub.echo_works("x").await;
    server.wait_for_connection_count(1).await;
    drop(hub.down);
    server.wait_for_connection_count(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_sends_close_and_finishes_the_stream() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::sse(server.addr).await;
    hub.echo_works("x").await;
    server.shutdown.shutdown();
    let close = hub.recv_skip_pings().await;
    assert_eq!(close.text(), "{\"type\":7,\"allowReconnect\":true}");
    assert!(hub.try_recv().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_reach_sse_long_polling_and_websocket_clients_alike() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut sse = HttpHub::sse(server.addr).await;
    let mut lp = HttpHub::long_polling(server.addr, Protocol::MessagePack).await;
    let mut ws = server.json_client().await;
    sse.invoke("1", "JoinGroup", ("g",)).await;
    sse.expect_completion("1").await;
    lp.invoke("1", "JoinGroup", ("g",)).await;
    lp.expect_completion("1").await;
    server.wait_for_connection_count(3).await;
    server
        .hub
        .clients()
        .group("g")
        .send("Item", (7,))
        .await
        .unwrap();
    server.hub.clients().all().send("Item", (8,)).await.unwrap();
    for client in [&mut sse, &mut lp] {
        assert_eq!(
            invocation_args::<(u32,)>(&client.recv_skip_pings().await, "Item"),
            (7,)
        );
        assert_eq!(
            invocation_args::<(u32,)>(&client.recv_skip_pings().await, "Item"),
            (8,)
        );
    }
    assert_eq!(
        invocation_args::<(u32,)>(&ws.recv_skip_pings().await, "Item"),
        (8,)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_lists_the_enabled_transports_in_order() {
    let all = TestServer::start(test_hub(), HubConfig::new()).await;
    let json = negotiate_v1(all.addr, PATH).await;
    assert_eq!(
        json["availableTransports"],
        serde_json::json!([
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
            {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
            {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
        ])
    );

    // The configured order does not matter.
    let config =
        HubConfig::new().transports([TransportType::LongPolling, TransportType::ServerSentEvents]);
    let some = TestServer::start(test_hub(), config).await;
    let json = negotiate_v1(some.addr, PATH).await;
    assert_eq!(
        json["availableTransports"],
        serde_json::json!([
            {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
            {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
        ])
    );
    // WebSockets is refused, with a token and without one (skipNegotiation).
    let token = negotiate_token(some.addr, PATH).await;
    let (status, body) = refused_upgrade(some.addr, &format!("{PATH}?id={token}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        &body[..],
        b"WebSockets transport not supported by this end point type"
    );
    let (status, _) = refused_upgrade(some.addr, PATH).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The token was not used up: another transport still attaches.
    let mut events = EventStream::open(some.addr, &format!("{PATH}?id={token}"), &[])
        .await
        .expect("SSE after a refused upgrade");
    events.next_chunk_within(TIMEOUT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_transport_gets_404() {
    let config = HubConfig::new().transports([TransportType::WebSockets]);
    let server = TestServer::start(test_hub(), config).await;
    let token = negotiate_token(server.addr, PATH).await;
    let url = format!("{PATH}?id={token}");
    let (status, _, body) = EventStream::open(server.addr, &url, &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        &body[..],
        b"ServerSentEvents transport not supported by this end point type"
    );
    let (status, _, body) = http(server.addr, Method::GET, &url, &[], b"").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        &body[..],
        b"LongPolling transport not supported by this end point type"
    );
    // Still usable over WebSockets.
    let mut ws = common::WsClient::connect(server.addr, &url).await;
    ws.handshake(Protocol::Json).await;
    ws.echo_works("ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_body_trickles_in_ends_with_its_connection() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let hub = HttpHub::sse(server.addr).await;
    server.wait_for_connection_count(1).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n{{\"type\"",
        hub.url(),
        server.addr
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(hub.down);
    server.wait_for_connection_count(0).await;
    let mut reply = vec![0u8; 1024];
    let n = tokio::time::timeout(
        TIMEOUT,
        tokio::io::AsyncReadExt::read(&mut slow, &mut reply),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        reply[..n].starts_with(b"HTTP/1.1 404"),
        "{:?}",
        String::from_utf8_lossy(&reply[..n])
    );
}
