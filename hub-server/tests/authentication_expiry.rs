//! Authentication that expires and is refreshed: a connection closes (Close, reconnect allowed)
//! when its principal's credentials expire (ASP.NET Core's `CloseOnAuthenticationExpiration`),
//! and with authentication refresh on (ASP.NET Core 11) negotiate reports the lifetime and
//! `POST {hub}/refresh` renews the credentials of a running connection — for its own user only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, SystemTime};

use common::{http, test_hub, WsClient, PATH};
use http::{Method, StatusCode};
use hub_core::protocol::{Close, HubMessage};
use hub_server::protocol::Protocol;
use hub_server::{Context, HubConfig, HubError, HubServer, Principal, RequestInfo, Unauthorized};

use common::TestServer;

/// Bearer tokens are `user[:ttl_ms[:role]]`; `bad` does not authenticate; none is anonymous.
fn principal_of(request: &RequestInfo) -> Result<Principal, Unauthorized> {
    let Some(token) = request.bearer_token() else {
        return Ok(Principal::anonymous());
    };
    if token == "bad" {
        return Err(Unauthorized);
    }
    let mut parts = token.split(':');
    let mut principal = Principal::user(parts.next().unwrap_or_default());
    if let Some(ttl) = parts.next().and_then(|ms| ms.parse().ok()) {
        principal = principal.expiring_at(SystemTime::now() + Duration::from_millis(ttl));
    }
    if let Some(role) = parts.next() {
        principal.claims.insert("role".into(), role.into());
    }
    Ok(principal)
}

async fn server(config: HubConfig) -> TestServer {
    let hub = test_hub().method("Role", |cx: Context, (): ()| async move {
        Ok::<_, HubError>(cx.principal().claims.get("role").cloned())
    });
    let builder = HubServer::builder()
        .hub(PATH, hub)
        .config(config)
        .authenticator(|request: &RequestInfo| {
            let principal = principal_of(request);
            async move { principal }
        });
    TestServer::start_with(builder).await
}

fn refreshing() -> HubConfig {
    HubConfig::new().authentication_refresh(true)
}

/// Negotiates version `version` with `token`: the whole response.
async fn negotiate(server: &TestServer, token: &str, version: u32) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/negotiate?negotiateVersion={version}"),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).unwrap()
}

/// Negotiates as `token` and opens a JSON WebSocket connection with it; returns it and its
/// connection token.
async fn connect(server: &TestServer, token: &str) -> (WsClient, String) {
    let negotiated = negotiate(server, token, 1).await;
    let id = negotiated["connectionToken"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let mut client = WsClient::try_connect(
        server.addr,
        &format!("{PATH}?id={id}"),
        &[("authorization", &auth)],
    )
    .await
    .expect("the WebSocket opens");
    client.handshake(Protocol::Json).await;
    (client, id)
}

/// `POST {hub}/refresh` with the connection token in the header, authenticated with `token`.
async fn refresh(server: &TestServer, id: &str, token: &str) -> (StatusCode, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let (status, headers, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/refresh"),
        &[("authorization", &auth), ("x-signalr-connection-token", id)],
        b"",
    )
    .await;
    assert_eq!(
        common::header_str(&headers, "content-type"),
        "application/json"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

/// Expects the Close ASP.NET Core sends when authentication expires: no error, reconnect
/// allowed (`{"type":7,"allowReconnect":true}`).
async fn expect_expiry_close(client: &mut WsClient) {
    let (close, _) = client.expect_close_message().await;
    assert_eq!(close.text(), "{\"type\":7,\"allowReconnect\":true}");
    assert!(matches!(
        close.message,
        HubMessage::Close(Close {
            error: None,
            allow_reconnect: true
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_when_its_authentication_expires() {
    let server = server(HubConfig::new()).await;
    let (mut expiring, _) = connect(&server, "alice:400").await;
    let (mut lasting, _) = connect(&server, "bob").await;
    expiring.echo_works("before the expiry").await;
    let started = std::time::Instant::now();
    expect_expiry_close(&mut expiring).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed {:?} after the expiry",
        started.elapsed()
    );
    // A principal without expiry is not affected.
    lasting.echo_works("no expiry").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_on_expiry_can_be_turned_off() {
    let server = server(HubConfig::new().close_on_authentication_expiration(false)).await;
    let (mut client, _) = connect(&server, "alice:200").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.echo_works("still open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_reports_the_lifetime_only_when_refresh_is_offered() {
    let offered = server(refreshing()).await;
    let lifetime = negotiate(&offered, "alice:60000", 1).await["tokenLifetimeSeconds"].clone();
    assert!(
        matches!(lifetime.as_u64(), Some(59 | 60)),
        "tokenLifetimeSeconds {lifetime}"
    );
    assert!(negotiate(&offered, "alice", 1)
        .await
        .get("tokenLifetimeSeconds")
        .is_none());
    let not_offered = server(HubConfig::new()).await;
    assert!(negotiate(&not_offered, "alice:60000", 1)
        .await
        .get("tokenLifetimeSeconds")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_renews_the_principal_and_moves_the_expiry() {
    let server = server(refreshing()).await;
    let (mut client, id) = connect(&server, "alice:700:reader").await;
    client.invoke("1", "Role", ()).await;
    assert_eq!(
        common::result::<Option<String>>(&client.expect_completion("1").await).as_deref(),
        Some("reader")
    );
    let (status, body) = refresh(&server, &id, "alice:60000:editor").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        matches!(body["tokenLifetimeSeconds"].as_u64(), Some(59 | 60)),
        "{body}"
    );
    // The connection outlives its first credentials, and hub methods see the new principal.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    client.invoke("2", "Role", ()).await;
    assert_eq!(
        common::result::<Option<String>>(&client.expect_completion("2").await).as_deref(),
        Some("editor")
    );
    // Credentials without expiry: `{}`, and the connection no longer expires.
    let (status, body) = refresh(&server, &id, "alice").await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!({})));
    // A shorter expiry takes effect at once.
    let (status, _) = refresh(&server, &id, "alice:200").await;
    assert_eq!(status, StatusCode::OK);
    expect_expiry_close(&mut client).await;
    // The connection is gone: its token no longer refreshes.
    let (status, body) = refresh(&server, &id, "alice:60000").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "connection_not_found"})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_refreshes_say_why_and_change_nothing() {
    let server = server(refreshing()).await;
    let (mut client, id) = connect(&server, "alice:800").await;
    let refused = |code: &str| serde_json::json!({ "error": code });
    // Another user's credentials.
    assert_eq!(
        refresh(&server, &id, "bob:60000").await,
        (StatusCode::FORBIDDEN, refused("permission_change_rejected"))
    );
    // Credentials that do not authenticate.
    assert_eq!(
        refresh(&server, &id, "bad").await,
        (StatusCode::UNAUTHORIZED, refused("invalid_token"))
    );
    // No token, an unknown token.
    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/refresh"),
        &[("authorization", "Bearer alice:60000")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], br#"{"error":"missing_connection_token"}"#);
    assert_eq!(
        refresh(&server, "no-such-token", "alice:60000").await,
        (StatusCode::NOT_FOUND, refused("connection_not_found"))
    );
    // The token in `?id=` works as well as in the header; GET is not a refresh.
    let (status, _, _) = http(
        server.addr,
        Method::GET,
        &format!("{PATH}/refresh?id={id}"),
        &[("authorization", "Bearer alice:60000")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // Nothing changed: the connection still expires with alice's first credentials.
    expect_expiry_close(&mut client).await;

    // A version-0 connection (its id is its token) cannot refresh.
    let negotiated = negotiate(&server, "carol:60000", 0).await;
    let id = negotiated["connectionId"].as_str().unwrap().to_owned();
    let mut old = WsClient::try_connect(
        server.addr,
        &format!("{PATH}?id={id}"),
        &[("authorization", "Bearer carol:60000")],
    )
    .await
    .expect("the WebSocket opens");
    old.handshake(Protocol::Json).await;
    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/refresh?id={id}"),
        &[("authorization", "Bearer carol:60000")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(&body[..], br#"{"error":"unsupported_negotiate_version"}"#);

    // A hub without refresh.
    let without = self::server(HubConfig::new()).await;
    let (status, _, body) = http(
        without.addr,
        Method::POST,
        &format!("{PATH}/refresh"),
        &[("x-signalr-connection-token", "t")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], br#"{"error":"refresh_disabled"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_whose_credentials_stopped_authenticating_is_asked_to_refresh() {
    for (config, expected) in [
        (refreshing(), StatusCode::CONFLICT),
        (HubConfig::new(), StatusCode::UNAUTHORIZED),
    ] {
        let server = server(config).await;
        let negotiated = negotiate(&server, "alice:60000", 1).await;
        let url = format!(
            "{PATH}?id={}",
            negotiated["connectionToken"].as_str().unwrap()
        );
        let alice = [("authorization", "Bearer alice:60000")];
        let (status, _, _) = http(server.addr, Method::GET, &url, &alice, b"").await;
        assert_eq!(status, StatusCode::OK);
        let (status, headers, body) = http(
            server.addr,
            Method::GET,
            &url,
            &[("authorization", "Bearer bad")],
            b"",
        )
        .await;
        assert_eq!(status, expected);
        if expected == StatusCode::CONFLICT {
            assert_eq!(
                common::header_str(&headers, "content-type"),
                "application/json"
            );
            assert_eq!(&body[..], br#"{"error":"authentication_refresh_required"}"#);
        }
    }
}
