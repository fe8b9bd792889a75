//! Graceful shutdown: running invocations finish, every client gets Close with allowReconnect,
//! sockets close, and `serve()` returns.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{negotiate_token, result, test_hub, Frame, TestServer, WsClient, PATH, TIMEOUT};
use hub_server::protocol::{Close, HubMessage, Protocol};
use hub_server::{Context, HubConfig, HubError, HubMethods};
use tokio::sync::Notify;

/// The test hub plus `Work(ms)`, which signals `started` when it begins.
fn hub(started: Arc<Notify>) -> HubMethods<Context> {
    test_hub().method("Work", move |cx: Context, (ms,): (u64,)| {
        let started = started.clone();
        async move {
            started.notify_one();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(ms),
                () = cx.cancellation().cancelled() => Err(HubError::new("cancelled")),
            }
        }
    })
}

async fn serve_returns(server: &mut TestServer) {
    let outcome = tokio::time::timeout(TIMEOUT, &mut server.serve)
        .await
        .expect("serve() did not return after the shutdown");
    outcome.expect("the serve task").expect("serve() failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_invocation_finish_then_closes_everyone() {
    let started = Arc::new(Notify::new());
    let mut server = TestServer::start(hub(started.clone()), HubConfig::new()).await;
    let mut busy = server.json_client().await;
    let mut idle = server.client(Protocol::MessagePack).await;
    // A socket whose handshake never came.
    let token = negotiate_token(server.addr, PATH).await;
    let mut unshaken = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    server.wait_for_connection_count(2).await;

    busy.invoke("1", "Work", (300u64,)).await;
    tokio::time::timeout(TIMEOUT, started.notified())
        .await
        .expect("the invocation did not start");
    server.shutdown.shutdown();

    let (close, before) = busy.expect_close_message().await;
    assert_eq!(before.len(), 1, "{before:?}");
    match &before[0].message {
        HubMessage::Completion(completion) => {
            assert_eq!(&*completion.invocation_id, "1");
            assert_eq!(result::<u64>(completion), 300);
        }
        other => panic!("expected the Completion of the running call, got {other:?}"),
    }
    assert_eq!(close.text(), "{\"type\":7,\"allowReconnect\":true}");

    let (close, _) = idle.expect_close_message().await;
    assert_eq!(&close.raw[..], &[0x93, 0x07, 0xc0, 0xc3]);
    assert_eq!(
        close.message,
        HubMessage::Close(Close {
            error: None,
            allow_reconnect: true
        })
    );

    unshaken.expect_ws_closed().await;
    let addr = server.addr;
    serve_returns(&mut server).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the server still accepts connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_invocations_that_outlast_the_grace_period() {
    let started = Arc::new(Notify::new());
    let mut server = TestServer::start(
        hub(started.clone()),
        HubConfig::new().shutdown_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut client = server.json_client().await;
    client.invoke("1", "Work", (60_000u64,)).await;
    tokio::time::timeout(TIMEOUT, started.notified())
        .await
        .expect("the invocation did not start");
    server.shutdown.shutdown();
    let (close, before) = client.expect_close_message().await;
    assert_eq!(close.text(), "{\"type\":7,\"allowReconnect\":true}");
    // Whatever came before the Close, it is not a result of the cancelled call.
    for received in &before {
        if let HubMessage::Completion(completion) = &received.message {
            assert!(
                !matches!(
                    completion.outcome,
                    hub_server::protocol::CompletionOutcome::Result(_)
                ),
                "{received:?}"
            );
        }
    }
    serve_returns(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_no_connections_returns_at_once() {
    let mut server = TestServer::start(test_hub(), HubConfig::new()).await;
    server.shutdown.shutdown();
    serve_returns(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_without_handshake_is_closed_by_shutdown() {
    let mut server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = negotiate_token(server.addr, PATH).await;
    let mut socket = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    // Make sure the server is waiting for the handshake before shutting down.
    assert!(socket
        .recv_frame_within(Duration::from_millis(100))
        .await
        .is_none());
    server.shutdown.shutdown();
    match socket.recv_frame().await {
        Frame::Closed(_) | Frame::End => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
    serve_returns(&mut server).await;
}
