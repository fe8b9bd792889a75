//! CORS: preflights on `/negotiate` and `{hub}`, and the headers of simple requests on every
//! endpoint, for allowed and disallowed origins, and without CORS configured.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{header_str, http, test_hub, EventStream, HttpHub, TestServer, PATH};
use http::{HeaderMap, Method, StatusCode};
use hub_server::protocol::Protocol;
use hub_server::{CorsConfig, HubConfig};

const ALLOWED: &str = "https://app.example.com";
const OTHER: &str = "https://evil.example.net";

async fn cors_server() -> TestServer {
    let cors = CorsConfig::allow_origins(["https://APP.example.com/", "http://localhost:8080"])
        .max_age(std::time::Duration::from_secs(120));
    let config = HubConfig::new()
        .cors(cors)
        .long_polling_timeout(std::time::Duration::from_millis(200));
    TestServer::start(test_hub(), config).await
}

fn assert_allowed(headers: &HeaderMap, origin: &str) {
    assert_eq!(header_str(headers, "access-control-allow-origin"), origin);
    assert_eq!(
        header_str(headers, "access-control-allow-credentials"),
        "true"
    );
    assert!(
        headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().eq_ignore_ascii_case("origin")),
        "{headers:?}"
    );
}

fn assert_no_cors(headers: &HeaderMap) {
    for (name, _) in headers {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "unexpected {name}: {headers:?}"
        );
    }
}

async fn preflight(
    server: &TestServer,
    path: &str,
    origin: &str,
    request_headers: &str,
) -> (StatusCode, HeaderMap) {
    let mut headers = vec![
        ("origin", origin),
        ("access-control-request-method", "POST"),
    ];
    if !request_headers.is_empty() {
        headers.push(("access-control-request-headers", request_headers));
    }
    let (status, headers, body) = http(server.addr, Method::OPTIONS, path, &headers, b"").await;
    assert!(body.is_empty());
    (status, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_on_negotiate_and_the_hub_pass_for_an_allowed_origin() {
    let server = cors_server().await;
    for path in [
        format!("{PATH}/negotiate?negotiateVersion=1"),
        format!("{PATH}?id=abc"),
    ] {
        let (status, headers) = preflight(
            &server,
            &path,
            ALLOWED,
            "x-requested-with, x-signalr-user-agent, Authorization",
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}");
        assert_allowed(&headers, ALLOWED);
        assert_eq!(
            header_str(&headers, "access-control-allow-methods"),
            "GET, POST, DELETE"
        );
        assert_eq!(
            header_str(&headers, "access-control-allow-headers"),
            "x-requested-with, x-signalr-user-agent, authorization"
        );
        assert_eq!(header_str(&headers, "access-control-max-age"), "120");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_for_other_headers_gets_only_the_allowed_list() {
    let server = cors_server().await;
    let (status, headers) = preflight(&server, PATH, ALLOWED, "x-custom").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        header_str(&headers, "access-control-allow-headers"),
        "authorization, content-type, x-requested-with, x-signalr-connection-token, x-signalr-user-agent"
    );
    let (_, headers) = preflight(&server, PATH, ALLOWED, "").await;
    assert_eq!(
        header_str(&headers, "access-control-allow-headers"),
        "authorization, content-type, x-requested-with, x-signalr-connection-token, x-signalr-user-agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disallowed_origin_gets_no_cors_headers() {
    let server = cors_server().await;
    let (status, headers) = preflight(&server, &format!("{PATH}/negotiate"), OTHER, "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_no_cors(&headers);
    let (status, headers, _) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/negotiate?negotiateVersion=1"),
        &[("origin", OTHER)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_no_cors(&headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_an_allowed_origin_with_cors_headers() {
    let server = cors_server().await;
    let origin = [("origin", "http://localhost:8080")];
    let (status, headers, _) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/negotiate?negotiateVersion=1"),
        &origin,
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_allowed(&headers, "http://localhost:8080");

    // Long polling: polls, sends, DELETE; and errors too.
    let lp = HttpHub::long_polling(server.addr, Protocol::Json).await;
    let (_, headers, _) = http(server.addr, Method::POST, &lp.url(), &origin, b"").await;
    assert_allowed(&headers, "http://localhost:8080");
    let (_, headers, _) = http(server.addr, Method::GET, &lp.url(), &origin, b"").await;
    assert_allowed(&headers, "http://localhost:8080");
    let (status, headers, _) = http(server.addr, Method::DELETE, &lp.url(), &origin, b"").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_allowed(&headers, "http://localhost:8080");
    let (status, headers, _) = http(server.addr, Method::GET, PATH, &origin, b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_allowed(&headers, "http://localhost:8080");

    // The event stream.
    let sse = HttpHub::open_sse(server.addr, PATH).await;
    drop(sse);
    let token = common::negotiate_token(server.addr, PATH).await;
    let events = EventStream::open(server.addr, &format!("{PATH}?id={token}"), &origin)
        .await
        .expect("200");
    assert_allowed(&events.headers, "http://localhost:8080");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_origin_is_echoed_when_allowed() {
    let config = HubConfig::new().cors(CorsConfig::allow_any_origin());
    let server = TestServer::start(test_hub(), config).await;
    let (status, headers) = preflight(&server, PATH, OTHER, "content-type").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_allowed(&headers, OTHER);
    assert_eq!(
        header_str(&headers, "access-control-allow-headers"),
        "content-type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_there_are_no_headers_and_preflights_get_405() {
    let server = TestServer::start(test_hub(), HubConfig::new()).await;
    let (status, headers) = preflight(&server, &format!("{PATH}/negotiate"), ALLOWED, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_no_cors(&headers);
    let (status, headers) = preflight(&server, PATH, ALLOWED, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_no_cors(&headers);
    let (_, headers, _) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/negotiate"),
        &[("origin", ALLOWED)],
        b"",
    )
    .await;
    assert_no_cors(&headers);
    assert!(headers.get("vary").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_allowed_headers_can_be_configured() {
    let cors = CorsConfig::allow_origins([ALLOWED]).allow_headers(["X-Custom"]);
    let server = TestServer::start(test_hub(), HubConfig::new().cors(cors)).await;
    let (_, headers) = preflight(&server, PATH, ALLOWED, "x-custom,content-type").await;
    assert_eq!(
        header_str(&headers, "access-control-allow-headers"),
        "x-custom, content-type"
    );
}
