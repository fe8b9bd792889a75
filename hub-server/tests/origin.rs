//! Transport requests from another origin are refused (cross-site WebSocket hijacking): browsers
//! do not apply CORS to WebSockets, and a page on evil.test could otherwise open a connection with
//! its visitor's cookies. The server's own origin, origins CORS allows, and requests without
//! `Origin` (non-browser clients) go on; `HubConfig::check_origin(false)` turns the check off.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{http, negotiate_token, test_hub, EventStream, TestServer, WsClient, PATH};
use http::{Method, StatusCode};
use hub_server::protocol::Protocol;
use hub_server::{CorsConfig, HubConfig};

const EVIL: &str = "http://evil.test";

async fn upgrade(server: &TestServer, origin: Option<&str>) -> Result<WsClient, StatusCode> {
    let token = negotiate_token(server.addr, PATH).await;
    let headers: Vec<(&str, &str)> = origin.iter().map(|origin| ("origin", *origin)).collect();
    WsClient::try_connect(server.addr, &format!("{PATH}?id={token}"), &headers)
        .await
        .map_err(|(status, _)| status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_from_another_origin_is_refused_and_the_own_origin_is_not() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    assert_eq!(
        upgrade(&server, Some(EVIL)).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    assert_eq!(
        upgrade(&server, Some("null")).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    // The page the server itself serves, and clients that send no Origin.
    let own = format!("http://{}", server.addr);
    for origin in [Some(own.as_str()), None] {
        let mut client = upgrade(&server, origin).await.expect("connects");
        client.handshake(Protocol::Json).await;
        client.echo_works("ok").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_cors_allows_connect_and_others_do_not() {
    let config = HubConfig::new().cors(CorsConfig::allow_origins(["http://app.test"]));
    let server = TestServer::start(test_hub(), config).await;
    let mut client = upgrade(&server, Some("http://app.test"))
        .await
        .expect("allowed origin");
    client.handshake(Protocol::Json).await;
    assert_eq!(
        upgrade(&server, Some(EVIL)).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_polls_and_sends_from_another_origin_are_refused() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = negotiate_token(server.addr, PATH).await;
    let url = format!("{PATH}?id={token}");
    let refused = EventStream::open(server.addr, &url, &[("origin", EVIL)]).await;
    assert_eq!(
        refused.err().map(|(status, _, _)| status),
        Some(StatusCode::FORBIDDEN)
    );
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let (status, _, body) =
            http(server.addr, method.clone(), &url, &[("origin", EVIL)], b"").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
        assert_eq!(&body[..], b"Origin not allowed");
    }
    // Nothing was started: the token is still unused and opens for a client without Origin.
    let (status, _, _) = http(server.addr, Method::GET, &url, &[], b"").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_can_be_turned_off() {
    let server = TestServer::start(test_hub(), HubConfig::new().check_origin(false)).await;
    let mut client = upgrade(&server, Some(EVIL)).await.expect("unchecked");
    client.handshake(Protocol::Json).await;
}
