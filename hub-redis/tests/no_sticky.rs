//! No sticky sessions: three servers on one Redis sharing a connection token key, and each
//! request of one long-polling connection sent to another server than the last — negotiate on
//! one, the first poll on a second, the handshake on the third, and so on. Sends, polls and
//! DELETE reach the owner and come back with the statuses one server gives; a second transport
//! is refused wherever it lands; an ended connection is 404 on every server; a token of another
//! key is 404.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Redis;
use hub_redis::{RedisBackplane, RedisConfig};
use hub_server::{Context, HubConfig, HubEndpoint, HubError, HubMethods, HubServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "a shared secret of at least thirty-two bytes";
const RS: char = '\u{1e}';

/// One server on `redis`, as node `node_id`, signing tokens with `key`.
async fn server(redis: &Redis, node_id: &str, key: &str) -> SocketAddr {
    let backplane = RedisBackplane::connect(
        RedisConfig::new(redis.url())
            .heartbeat(Duration::from_millis(100))
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let hub = HubMethods::<Context>::new().method("Echo", |_, (text,): (String,)| async move {
        Ok::<_, HubError>(text)
    });
    let server = HubServer::builder()
        .node_id(node_id)
        .connection_token_key(key)
        .shutdown_on_signal(false)
        .endpoint(
            "/hub",
            HubEndpoint::new(hub)
                .config(HubConfig::new().max_request_body_size(4096))
                .lifetime_manager(backplane.manager()),
        )
        .bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(async move {
        let _backplane = backplane;
        server.serve().await
    });
    addr
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
async fn request(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    request_with(addr, method, target, &[], body).await
}

async fn request_with(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response))
        .await
        .expect("a response within 20 s")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Negotiates on `addr`: the connection token.
async fn negotiate(addr: SocketAddr) -> String {
    let (status, body) = request(addr, "POST", "/hub/negotiate?negotiateVersion=1", b"").await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["connectionToken"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_long_polling_connection_may_reach_any_server() {
    let redis = Redis::start();
    let a = server(&redis, "a", KEY).await;
    let b = server(&redis, "b", KEY).await;
    let c = server(&redis, "c", KEY).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let token = negotiate(a).await;
    let at = format!("/hub?id={token}");

    // The first poll attaches the connection on b.
    assert_eq!(request(b, "GET", &at, b"").await.0, 200);
    // The handshake, sent to c, reaches b; its answer comes back through a poll on a.
    let handshake = format!("{{\"protocol\":\"json\",\"version\":1}}{RS}");
    assert_eq!(request(c, "POST", &at, handshake.as_bytes()).await.0, 200);
    let (status, body) = request(a, "GET", &at, b"").await;
    assert_eq!((status, body.as_str()), (200, "{}\u{1e}"));
    // An invocation sent to a, its completion polled on c.
    let invocation = format!(
        "{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"hi\"]}}{RS}"
    );
    assert_eq!(request(a, "POST", &at, invocation.as_bytes()).await.0, 200);
    let (status, body) = request(c, "GET", &at, b"").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("\"invocationId\":\"1\"") && body.contains("\"result\":\"hi\""),
        "{body}"
    );

    // A second transport for the connection is refused on a server that does not own it.
    let (status, _) = request_with(c, "GET", &at, &[("Accept", "text/event-stream")], b"").await;
    assert_eq!(status, 409);
    // A send over the size limit gets the owner's answer (413) through another server.
    let huge = format!("\"{}\"{RS}", "x".repeat(100_000));
    assert_eq!(request(a, "POST", &at, huge.as_bytes()).await.0, 413);

    // DELETE through c ends it; then every server answers 404 for its token.
    let (status, _) = request(c, "DELETE", &at, b"").await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for server in [a, b, c] {
        let (status, body) = request(server, "POST", &at, handshake.as_bytes()).await;
        assert_eq!(status, 404, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_works_only_under_its_key_and_an_event_stream_takes_sends_from_anywhere() {
    let redis = Redis::start();
    let a = server(&redis, "a", KEY).await;
    let b = server(&redis, "b", KEY).await;
    let stranger = server(&redis, "x", "another secret of at least thirty-two bytes").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Signed with another key: 404 there, as an unknown token.
    let token = negotiate(a).await;
    let at = format!("/hub?id={token}");
    assert_eq!(request(stranger, "GET", &at, b"").await.0, 404);
    // An event stream attaches the connection on b; a poll sent to a reaches b, which refuses
    // a change of transport (400, as one server does); a send through a reaches the stream.
    let mut stream = TcpStream::connect(b).await.unwrap();
    let head = format!("GET {at} HTTP/1.1\r\nHost: {b}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the event stream closed");
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    let (status, body) = request(a, "GET", &at, b"").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Cannot change transports mid-connection")
    );
    let handshake = format!("{{\"protocol\":\"json\",\"version\":1}}{RS}");
    assert_eq!(request(a, "POST", &at, handshake.as_bytes()).await.0, 200);
    let mut events = String::new();
    while !events.contains("data: {}") {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the event stream closed");
        events.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }

    // A made-up token is 404 everywhere.
    assert_eq!(request(b, "GET", "/hub?id=nonsense", b"").await.0, 404);
}
