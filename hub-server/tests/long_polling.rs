//! Long polling end to end over raw HTTP: the immediate first poll, held polls, the poll timeout,
//! superseded polls, DELETE, MessagePack bodies, the end of a connection, no pings, disposal of a
//! client that stopped polling, and the statuses and headers of every case.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{
    header_str, http, http_within, negotiate_token, result, test_hub, HttpHub, TestServer, PATH,
};
use http::{HeaderMap, Method, StatusCode};
use hub_server::protocol::{HubMessage, Invocation, Protocol};
use hub_server::HubConfig;

fn assert_no_cache(headers: &HeaderMap) {
    assert_eq!(header_str(headers, "cache-control"), "no-cache, no-store");
    assert_eq!(header_str(headers, "pragma"), "no-cache");
    assert_eq!(
        header_str(headers, "expires"),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
}

fn short_polls() -> HubConfig {
    HubConfig::new().long_polling_timeout(Duration::from_millis(400))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_poll_returns_at_once_empty_and_starts_the_connection() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = negotiate_token(server.addr, PATH).await;
    let started = tokio::time::Instant::now();
    let (status, headers, body) = http(
        server.addr,
        Method::GET,
        &format!("{PATH}?id={token}&_=123"),
        &[],
        b"",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header_str(&headers, "content-length"), "0");
    assert!(body.is_empty());
    assert_no_cache(&headers);
    // The connection is started: it answers the handshake on the next poll.
    let url = format!("{PATH}?id={token}");
    let (status, _, _) = http(
        server.addr,
        Method::POST,
        &url,
        &[],
        b"{\"protocol\":\"json\",\"version\":1}\x1e",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = http(server.addr, Method::GET, &url, &[], b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"{}\x1e");
    assert_eq!(
        header_str(&headers, "content-type"),
        "application/octet-stream"
    );
    assert_no_cache(&headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_before_the_first_poll_starts_the_connection_and_is_delivered() {
    // signalrcore POSTs its handshake before its first poll (on one thread). ASP.NET Core
    // buffers such a send; before, it got 404 "No Connection with that ID" and the client could
    // never connect over long polling.
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = negotiate_token(server.addr, PATH).await;
    let url = format!("{PATH}?id={token}");
    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &url,
        &[],
        b"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"early\"]}\x1e",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    // The first poll gets the handshake reply and the Completion.
    let mut received = Vec::new();
    while !received.ends_with(b"\"result\":\"early\"}\x1e") {
        let (status, _, body) = http(server.addr, Method::GET, &url, &[], b"").await;
        assert_eq!(status, StatusCode::OK);
        received.extend_from_slice(&body);
    }
    assert_eq!(
        String::from_utf8_lossy(&received),
        "{}\x1e{\"type\":3,\"invocationId\":\"1\",\"result\":\"early\"}\x1e"
    );
    server.wait_for_connection_count(1).await;
    // The connection is long polling: an event stream for it is refused.
    let (status, _, _) = http(
        server.addr,
        Method::GET,
        &url,
        &[("accept", "text/event-stream")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_holds_until_data_arrives() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    let (addr, url) = (hub.addr, hub.url());
    let poll = tokio::spawn(async move {
        http_within(addr, Method::GET, &url, &[], b"", Duration::from_secs(10)).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll did not wait");
    hub.invoke("1", "Echo", ("held",)).await;
    let (status, headers, body) = poll.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        &body[..],
        b"{\"type\":3,\"invocationId\":\"1\",\"result\":\"held\"}\x1e"
    );
    assert_no_cache(&headers);
    hub.echo_works("again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_with_nothing_to_send_gets_an_empty_200_after_the_poll_timeout() {
    let server = TestServer::start(test_hub(), short_polls()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    let started = tokio::time::Instant::now();
    let (status, headers, body) = hub.poll().await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header_str(&headers, "content-length"), "0");
    assert_no_cache(&headers);
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    hub.echo_works("still connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_poll_supersedes_the_waiting_one_which_gets_204() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    let (addr, url) = (hub.addr, hub.url());
    let older = tokio::spawn(async move {
        http_within(addr, Method::GET, &url, &[], b"", Duration::from_secs(10)).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (addr, url) = (hub.addr, hub.url());
    let newer = tokio::spawn(async move {
        http_within(addr, Method::GET, &url, &[], b"", Duration::from_secs(10)).await
    });
    let (status, headers, body) = older.await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    assert_no_cache(&headers);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!newer.is_finished(), "the newer poll must keep waiting");
    hub.invoke("1", "Echo", ("to the newer poll",)).await;
    let (status, _, body) = newer.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.ends_with(b"\"result\":\"to the newer poll\"}\x1e"));
    hub.echo_works("after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_answers_202_ends_the_connection_and_the_waiting_poll_gets_204() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    hub.echo_works("x").await;
    server.wait_for_connection_count(1).await;
    let (addr, url) = (hub.addr, hub.url());
    let poll = tokio::spawn(async move {
        http_within(addr, Method::GET, &url, &[], b"", Duration::from_secs(10)).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, headers, body) = http(server.addr, Method::DELETE, &hub.url(), &[], b"").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.is_empty());
    assert_eq!(header_str(&headers, "content-type"), "text/plain");
    let (status, _, body) = poll.await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    server.wait_for_connection_count(0).await;
    // The token is gone.
    let (status, _, body) = hub.poll().await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"No Connection with that ID");
    assert_eq!(hub.delete().await, StatusCode::NOT_FOUND);
    assert_eq!(hub.post(b"{\"type\":6}\x1e").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_refused_on_other_transports_and_without_a_connection() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = negotiate_token(server.addr, PATH).await;
    let mut ws = common::WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    ws.handshake(Protocol::Json).await;
    let (status, _, body) = http(
        server.addr,
        Method::DELETE,
        &format!("{PATH}?id={token}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        &body[..],
        b"Cannot terminate this connection using the DELETE endpoint."
    );
    ws.echo_works("unaffected").await;

    let mut sse = HttpHub::sse(server.addr).await;
    assert_eq!(sse.delete().await, StatusCode::BAD_REQUEST);
    sse.echo_works("unaffected").await;

    let (status, _, body) = http(server.addr, Method::DELETE, PATH, &[], b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], b"Connection ID required");
    let (status, _, _) = http(
        server.addr,
        Method::DELETE,
        &format!("{PATH}?id=x"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_without_id_or_with_an_unknown_one_are_refused_with_no_cache_headers() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, headers, body) = http(server.addr, Method::GET, PATH, &[], b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], b"Connection ID required");
    assert_no_cache(&headers);
    let (status, headers, body) = http(
        server.addr,
        Method::GET,
        &format!("{PATH}?id=nope"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"No Connection with that ID");
    assert_no_cache(&headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messagepack_works_with_binary_bodies() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::MessagePack).await;
    // Two framed invocations in one binary POST.
    let mut body = hub
        .encode(&Invocation::new("Echo", ("bin",)).with_id("1"))
        .to_vec();
    body.extend_from_slice(&hub.encode(&Invocation::new("Void", ()).with_id("2")));
    hub.post_ok(&body).await;
    let first = hub.recv_skip_pings().await;
    assert!(first.binary);
    match &first.message {
        HubMessage::Completion(c) => assert_eq!(result::<String>(c), "bin"),
        other => panic!("{other:?}"),
    }
    // The void result: [3, {}, "2", 3, nil], framed.
    let second = hub.recv_skip_pings().await;
    assert_eq!(&second.raw[..], &[0x95, 0x03, 0x80, 0xA1, b'2', 0x03, 0xC0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pings_are_sent_and_an_idle_client_is_not_timed_out() {
    let config = short_polls()
        .keep_alive_interval(Duration::from_millis(100))
        .client_timeout(Duration::from_millis(300));
    let server = TestServer::start(test_hub(), config).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    // The client pings once (as a WebSocket client would), then stays silent while polling.
    hub.post_ok(b"{\"type\":6}\x1e").await;
    for _ in 0..3 {
        let (status, _, body) = hub.poll().await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_empty(), "{body:?}");
    }
    hub.echo_works("alive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_connection_is_delivered_then_204_then_404() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    hub.echo_works("x").await;
    hub.post_ok(b"{\"type\":7}\x1e").await;
    // Pending data (the Close message) first…
    let (status, _, body) = hub.poll().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"{\"type\":7}\x1e");
    // …then 204: the connection is over…
    let (status, headers, body) = hub.poll().await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    assert_no_cache(&headers);
    // …and the token is gone.
    server.wait_for_connection_count(0).await;
    let (status, _, _) = hub.poll().await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_polling_is_disposed_after_the_disconnect_timeout() {
    let config = HubConfig::new().disconnect_timeout(Duration::from_millis(1000));
    let server = TestServer::start(test_hub(), config).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    hub.echo_works("x").await;
    server.wait_for_connection_count(1).await;
    // No poll from now on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.hub.connection_count().await.unwrap(),
        1,
        "disposed too early"
    );
    server.wait_for_connection_count(0).await;
    let (status, _, _) = hub.poll().await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(hub.post(b"{\"type\":6}\x1e").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_poll_keeps_the_connection_alive_past_the_disconnect_timeout() {
    let config = HubConfig::new()
        .disconnect_timeout(Duration::from_millis(300))
        .long_polling_timeout(Duration::from_millis(1500));
    let server = TestServer::start(test_hub(), config).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    let (status, _, body) = hub.poll().await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    hub.echo_works("still here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_delivers_close_to_the_waiting_poll() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    hub.echo_works("x").await;
    let (addr, url) = (hub.addr, hub.url());
    let poll = tokio::spawn(async move {
        http_within(addr, Method::GET, &url, &[], b"", Duration::from_secs(10)).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shutdown.shutdown();
    let (status, _, body) = poll.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"{\"type\":7,\"allowReconnect\":true}\x1e");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handshake_is_delivered_on_the_next_poll() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let hub = HttpHub::open_long_polling(server.addr, PATH).await;
    hub.post_ok(b"{\"protocol\":\"xml\",\"version\":1}\x1e")
        .await;
    let (status, _, body) = hub.poll().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        &body[..],
        b"{\"error\":\"The protocol 'xml' is not supported.\"}\x1e"
    );
    let (status, _, _) = hub.poll().await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pushes_are_batched_into_polls_of_whole_messages() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    hub.invoke("1", "Push", (2000,)).await;
    for i in 0..2000u32 {
        let received = hub.recv_skip_pings().await;
        assert_eq!(common::invocation_args::<(u32,)>(&received, "Item"), (i,));
    }
    assert_eq!(result::<u32>(&hub.expect_completion("1").await), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_drops_its_waiting_poll_is_disposed_after_the_disconnect_timeout() {
    let config = HubConfig::new()
        .disconnect_timeout(Duration::from_millis(400))
        .long_polling_timeout(Duration::from_secs(30));
    let server = TestServer::start(test_hub(), config).await;
    let mut hub = HttpHub::long_polling(server.addr, Protocol::Json).await;
    hub.echo_works("x").await;
    server.wait_for_connection_count(1).await;
    // A poll that waits, then the client goes away without an answer.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        hub.url(),
        server.addr
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        server.hub.connection_count().await.unwrap(),
        1,
        "a waiting poll keeps the connection"
    );
    drop(stream);
    server.wait_for_connection_count(0).await;
}
