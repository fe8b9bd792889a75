//! Negotiate and the connection tokens it hands out: versions, errors, expiry, conflicts, paths.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{
    http, negotiate, negotiate_v1, refused_upgrade, test_hub, TestServer, WsClient, PATH,
};
use http::{Method, StatusCode};
use hub_server::protocol::Protocol;
use hub_server::HubConfig;

fn is_url_safe_id(id: &str) -> bool {
    id.len() == 22 && is_url_safe(id)
}

fn is_url_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_gives_a_distinct_url_safe_id_and_token() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, body) = negotiate(server.addr, PATH, "negotiateVersion=1").await;
    assert_eq!(status, StatusCode::OK);
    let text = std::str::from_utf8(&body).unwrap();
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(json["negotiateVersion"], 1);
    let id = json["connectionId"].as_str().unwrap();
    let token = json["connectionToken"].as_str().unwrap();
    assert!(is_url_safe_id(id), "{id:?}");
    // Signed (any server of a deployment can check it), so longer than an id.
    assert!(is_url_safe(token) && token.len() > 22, "{token:?}");
    assert_ne!(id, token);
    assert!(json.get("useStatefulReconnect").is_none(), "{text}");
    assert!(json.get("ProtocolVersion").is_none(), "{text}");
    // The fields in ASP.NET's order; WebSockets offered with both formats.
    let version_at = text.find("\"negotiateVersion\"").unwrap();
    let id_at = text.find("\"connectionId\"").unwrap();
    let token_at = text.find("\"connectionToken\"").unwrap();
    let transports_at = text.find("\"availableTransports\"").unwrap();
    assert!(
        version_at < id_at && id_at < token_at && token_at < transports_at,
        "{text}"
    );
    let transports = json["availableTransports"].as_array().unwrap();
    assert_eq!(transports[0]["transport"], "WebSockets");
    assert_eq!(
        transports[0]["transferFormats"],
        serde_json::json!(["Text", "Binary"])
    );

    // Every negotiate gets new values.
    let again = negotiate_v1(server.addr, PATH).await;
    assert_ne!(again["connectionId"], json["connectionId"]);
    assert_ne!(again["connectionToken"], json["connectionToken"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_token_opens_the_connection() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let json = negotiate_v1(server.addr, PATH).await;
    let id = json["connectionId"].as_str().unwrap();
    let token = json["connectionToken"].as_str().unwrap();

    let (status, body) = refused_upgrade(server.addr, &format!("{PATH}?id={id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"No Connection with that ID");

    let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    client.handshake(Protocol::Json).await;
    client.invoke("1", "ConnectionId", ()).await;
    let completion = client.expect_completion("1").await;
    assert_eq!(common::result::<String>(&completion), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_socket_on_a_live_token_is_a_conflict() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = common::negotiate_token(server.addr, PATH).await;
    let mut first = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    // Refused before and after the first socket's handshake.
    let (status, _) = refused_upgrade(server.addr, &format!("{PATH}?id={token}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    first.handshake(Protocol::Json).await;
    match WsClient::try_connect(server.addr, &format!("{PATH}?id={token}"), &[]).await {
        Err((status, _)) => assert_eq!(status, StatusCode::CONFLICT),
        Ok(_) => panic!("a second socket attached to a live token"),
    }
    first.echo_works("first still works").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_not_found() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, body) =
        refused_upgrade(server.addr, &format!("{PATH}?id=AAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"No Connection with that ID");
    match WsClient::try_connect(server.addr, &format!("{PATH}?id=nope"), &[]).await {
        Err((status, _)) => assert_eq!(status, StatusCode::NOT_FOUND),
        Ok(_) => panic!("a socket attached to an unknown token"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_negotiated_connection_expires() {
    let server = TestServer::start(
        test_hub(),
        HubConfig::new().disconnect_timeout(Duration::from_millis(300)),
    )
    .await;
    let stale = common::negotiate_token(server.addr, PATH).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body) = refused_upgrade(server.addr, &format!("{PATH}?id={stale}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"No Connection with that ID");
    // A fresh one works, and an attached connection outlives the disconnect timeout.
    let mut client = server.json_client().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    client
        .echo_works("attached connections do not expire")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_on_negotiate_is_not_allowed() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, _, _) = http(
        server.addr,
        Method::GET,
        &format!("{PATH}/negotiate?negotiateVersion=1"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0_has_no_token_and_the_id_opens_the_connection() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, body) = negotiate(server.addr, PATH, "").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["negotiateVersion"], 0);
    assert!(json.get("connectionToken").is_none(), "{json}");
    let id = json["connectionId"].as_str().unwrap();
    assert!(is_url_safe_id(id));
    let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={id}")).await;
    client.handshake(Protocol::Json).await;
    client.invoke("1", "ConnectionId", ()).await;
    let completion = client.expect_completion("1").await;
    assert_eq!(common::result::<String>(&completion), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_versions_follow_the_version_rule() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, body) = negotiate(server.addr, PATH, "negotiateVersion=abc").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        &body[..],
        br#"{"error":"The client requested a non-integer protocol version."}"#
    );
    // Above 1: answered with 1. Keys are case-insensitive.
    let (_, body) = negotiate(server.addr, PATH, "negotiateVersion=7").await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["negotiateVersion"], 1);
    let (_, body) = negotiate(server.addr, PATH, "NegotiateVersion=1").await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["negotiateVersion"], 1);
    assert!(json["connectionToken"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_to_an_active_websocket_connection_is_not_allowed() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let token = common::negotiate_token(server.addr, PATH).await;
    let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    client.handshake(Protocol::Json).await;
    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}?id={token}"),
        &[("content-type", "text/plain;charset=UTF-8")],
        b"{\"type\":1,\"target\":\"Echo\",\"arguments\":[\"x\"],\"invocationId\":\"1\"}\x1e",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        &body[..],
        b"POST requests are not allowed for WebSocket connections."
    );
    // The POSTed message was not dispatched; the socket still works.
    client.echo_works("socket").await;
    // Without an id: 400; unknown id: 404.
    let (status, _, _) = http(server.addr, Method::POST, PATH, &[], b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}?id=nope"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_match_case_insensitively() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, body) = negotiate(server.addr, "/HUB", "negotiateVersion=1").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = json["connectionToken"].as_str().unwrap();
    let (status, _, _) = http(
        server.addr,
        Method::POST,
        "/Hub/NEGOTIATE?negotiateVersion=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut client = WsClient::connect(server.addr, &format!("/hUb?id={token}")).await;
    client.handshake(Protocol::Json).await;
    client.echo_works("any case").await;
    // Other paths are not the hub.
    let (status, _) = negotiate(server.addr, "/hubs", "negotiateVersion=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
