//! The handshake over WebSockets: error texts, timeout, size limit, framing, and frame types.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{negotiate_token, result, test_hub, Frame, TestServer, WsClient, PATH};
use hub_server::protocol::Protocol;
use hub_server::HubConfig;
use tokio_tungstenite::tungstenite::Message;

/// A MessagePack payload under its (one byte) length prefix.
fn framed(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 128);
    let mut out = vec![payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

/// A negotiated WebSocket on which no handshake was sent yet.
async fn fresh_socket(server: &TestServer) -> WsClient {
    let token = negotiate_token(server.addr, PATH).await;
    WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_message_before_the_handshake_is_a_handshake_error() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    client
        .send_text(
            "{\"type\":1,\"target\":\"Echo\",\"arguments\":[\"x\"],\"invocationId\":\"1\"}\u{1e}",
        )
        .await;
    client
        .expect_handshake_error("An unexpected error occurred during connection handshake.")
        .await;
    assert_eq!(server.hub.connection_count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_handshakes_are_rejected() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    for handshake in [
        "{nope\u{1e}",
        "{\"protocol\":\"json\"}\u{1e}",
        "{\"version\":1}\u{1e}",
        "[]\u{1e}",
    ] {
        let mut client = fresh_socket(&server).await;
        client.send_text(handshake).await;
        client
            .expect_handshake_error("An unexpected error occurred during connection handshake.")
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_protocol_is_rejected() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    client
        .send_text("{\"protocol\":\"xml\",\"version\":1}\u{1e}")
        .await;
    client
        .expect_handshake_error("The protocol 'xml' is not supported.")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_version_is_rejected() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    client
        .send_text("{\"protocol\":\"json\",\"version\":3}\u{1e}")
        .await;
    client
        .expect_handshake_error("The server does not support version 3 of the 'json' protocol.")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_0_to_2_are_accepted() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    for version in 0..=2 {
        let mut client = fresh_socket(&server).await;
        client
            .send_text(&format!(
                "{{\"protocol\":\"json\",\"version\":{version}}}\u{1e}"
            ))
            .await;
        client.expect_handshake_accepted(Protocol::Json).await;
        client.echo_works("ok").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_handshake_times_out() {
    let server = TestServer::start(
        test_hub(),
        HubConfig::new().handshake_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut client = fresh_socket(&server).await;
    client
        .expect_handshake_error("Handshake was canceled.")
        .await;

    // An unfinished handshake (no separator yet) times out too.
    let mut client = fresh_socket(&server).await;
    client.send_text("{\"protocol\":\"json\",").await;
    client
        .expect_handshake_error("Handshake was canceled.")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_over_the_max_message_size_is_canceled() {
    let server = TestServer::start(test_hub(), HubConfig::new().max_message_size(1024)).await;
    let padding = "x".repeat(2000);
    let mut client = fresh_socket(&server).await;
    client
        .send_text(&format!(
            "{{\"protocol\":\"json\",\"version\":1,\"padding\":\"{padding}\"}}\u{1e}"
        ))
        .await;
    client
        .expect_handshake_error("Handshake was canceled.")
        .await;

    // Without a separator: rejected as soon as the limit is passed, not at the timeout.
    let mut client = fresh_socket(&server).await;
    client
        .send_text(&format!("{{\"protocol\":\"json\",\"padding\":\"{padding}"))
        .await;
    client
        .expect_handshake_error("Handshake was canceled.")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_split_across_three_frames_works() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    client.send_text("{\"protoc").await;
    client.send_text("ol\":\"json\",\"vers").await;
    client.send_text("ion\":1}\u{1e}").await;
    client.expect_handshake_accepted(Protocol::Json).await;
    client.echo_works("split").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_followed_by_an_invocation_in_the_same_frame_works() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    client
        .send_text(concat!(
            "{\"protocol\":\"json\",\"version\":1}\u{1e}",
            "{\"type\":1,\"target\":\"Echo\",\"arguments\":[\"same frame\"],\"invocationId\":\"1\"}\u{1e}",
        ))
        .await;
    client.expect_handshake_accepted(Protocol::Json).await;
    let completion = client.expect_completion("1").await;
    assert_eq!(result::<String>(&completion), "same frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_msgpack_handshake_followed_by_an_invocation_in_the_same_frame_works() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    let mut frame = b"{\"protocol\":\"messagepack\",\"version\":1}\x1e".to_vec();
    // [1, {}, "1", "Echo", ["mp"]] (JS's 5 elements)
    frame.extend_from_slice(&framed(&[
        0x95, 0x01, 0x80, 0xa1, b'1', 0xa4, b'E', b'c', b'h', b'o', 0x91, 0xa2, b'm', b'p',
    ]));
    client.send_binary(&frame).await;
    client
        .expect_handshake_accepted(Protocol::MessagePack)
        .await;
    let completion = client.expect_completion("1").await;
    assert_eq!(result::<String>(&completion), "mp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_msgpack_handshake_server_frames_are_binary() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    // As the JS client does: the msgpack handshake goes in a text frame.
    client
        .send_text("{\"protocol\":\"messagepack\",\"version\":1}\u{1e}")
        .await;
    match client.recv_frame().await {
        Frame::Data { binary, bytes } => {
            assert!(binary, "the handshake reply came as text");
            assert_eq!(&bytes[..], b"{}\x1e");
        }
        other => panic!("expected the handshake reply, got {other:?}"),
    }
    client
        .send_frame(Message::binary(framed(&[
            0x96, 0x01, 0x80, 0xa1, b'1', 0xa4, b'E', b'c', b'h', b'o', 0x91, 0xa2, b'm', b'p',
            0x90,
        ])))
        .await;
    match client.recv_frame().await {
        Frame::Data { binary, bytes } => {
            assert!(binary, "a msgpack Completion came as text");
            // [3, {}, "1", 3, "mp"]
            assert_eq!(
                &bytes[..],
                &[0x09, 0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0xa2, b'm', b'p']
            );
        }
        other => panic!("expected the Completion, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_json_handshake_server_frames_are_text_whatever_the_client_sends() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let mut client = fresh_socket(&server).await;
    // Incoming frame types are ignored: a JSON handshake in a binary frame.
    client
        .send_binary(b"{\"protocol\":\"json\",\"version\":1}\x1e")
        .await;
    match client.recv_frame().await {
        Frame::Data { binary, bytes } => {
            assert!(!binary, "the JSON handshake reply came as binary");
            assert_eq!(&bytes[..], b"{}\x1e");
        }
        other => panic!("expected the handshake reply, got {other:?}"),
    }
    client
        .send_binary(
            b"{\"type\":1,\"target\":\"Echo\",\"arguments\":[\"t\"],\"invocationId\":\"1\"}\x1e",
        )
        .await;
    match client.recv_frame().await {
        Frame::Data { binary, bytes } => {
            assert!(!binary, "a JSON Completion came as binary");
            assert_eq!(
                &bytes[..],
                b"{\"type\":3,\"invocationId\":\"1\",\"result\":\"t\"}\x1e"
            );
        }
        other => panic!("expected the Completion, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_protocol_is_rejected() {
    let server = TestServer::start(test_hub(), HubConfig::new().protocols([Protocol::Json])).await;
    let mut client = fresh_socket(&server).await;
    client
        .send_text("{\"protocol\":\"messagepack\",\"version\":1}\u{1e}")
        .await;
    client
        .expect_handshake_error("The protocol 'messagepack' is not supported.")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_before_the_handshake_just_drops_the_connection() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = negotiate_token(server.addr, PATH).await;
    let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    client.send_frame(Message::Close(None)).await;
    // "Transport closed before a handshake: just drop it" (the server need not answer the close).
    match client.recv_frame().await {
        Frame::Closed(_) | Frame::End | Frame::Error(_) => {}
        data => panic!("expected the socket to end, got {data:?}"),
    }
    // The token is released (once the server saw the close): a new socket on it is unknown.
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    loop {
        let (status, body) =
            common::refused_upgrade(server.addr, &format!("{PATH}?id={token}")).await;
        if status == http::StatusCode::CONFLICT && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(status, http::StatusCode::NOT_FOUND);
        assert_eq!(&body[..], b"No Connection with that ID");
        break;
    }
}
