//! A connection's identity is bound to the user it was negotiated for: a transport request, a
//! poll, a send or a DELETE with another user's credentials is refused with 403 and does nothing,
//! on every transport (what ASP.NET Core does; before, the transport request's user silently
//! became the connection's, and a POST authenticated as someone else was delivered).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{
    http, negotiate_token, negotiate_token_as, test_hub, EventStream, TestServer, WsClient, PATH,
};
use http::{Method, StatusCode};
use hub_server::protocol::Protocol;
use hub_server::{HubServer, Principal, RequestInfo};

/// A server whose authenticator makes the bearer token the user id (no token: anonymous).
async fn server() -> TestServer {
    let builder =
        HubServer::builder()
            .hub(PATH, test_hub())
            .authenticator(|request: &RequestInfo| {
                let user = request.bearer_token().map(Principal::user);
                async move { Ok(user.unwrap_or_default()) }
            });
    TestServer::start_with(builder).await
}

fn bearer(user: &str) -> String {
    format!("Bearer {user}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_opened_with_another_users_credentials_is_refused() {
    let server = server().await;
    let token = negotiate_token_as(server.addr, PATH, "alice").await;
    for (who, auth) in [("bob", Some(bearer("bob"))), ("anonymous", None)] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let refused =
            WsClient::try_connect(server.addr, &format!("{PATH}?id={token}"), &headers).await;
        match refused {
            Err((status, _)) => assert_eq!(status, StatusCode::FORBIDDEN, "{who}"),
            Ok(_) => panic!("{who} took over alice's connection"),
        }
    }
    // The access_token query parameter (what browsers send) is held to the same rule.
    let refused = WsClient::try_connect(
        server.addr,
        &format!("{PATH}?id={token}&access_token=bob"),
        &[],
    )
    .await;
    assert!(matches!(refused, Err((StatusCode::FORBIDDEN, _))));
    // Alice herself still connects with her token.
    let auth = bearer("alice");
    let mut alice = WsClient::try_connect(
        server.addr,
        &format!("{PATH}?id={token}"),
        &[("authorization", &auth)],
    )
    .await
    .expect("alice connects");
    alice.handshake(Protocol::Json).await;
    alice.echo_works("still alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_for_another_users_connection_is_refused() {
    let server = server().await;
    let token = negotiate_token_as(server.addr, PATH, "alice").await;
    let auth = bearer("bob");
    let refused = EventStream::open(
        server.addr,
        &format!("{PATH}?id={token}"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        refused.err().map(|(status, _, _)| status),
        Some(StatusCode::FORBIDDEN)
    );
    // An anonymous negotiate binds the connection to "nobody": a user cannot take it either.
    let anonymous = negotiate_token(server.addr, PATH).await;
    let refused = EventStream::open(
        server.addr,
        &format!("{PATH}?id={anonymous}"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        refused.err().map(|(status, _, _)| status),
        Some(StatusCode::FORBIDDEN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_sends_and_delete_from_another_user_are_refused_and_deliver_nothing() {
    let server = server().await;
    let token = negotiate_token_as(server.addr, PATH, "alice").await;
    let url = format!("{PATH}?id={token}");
    let alice = bearer("alice");
    let mallory = bearer("mallory");
    // Mallory's first poll does not open alice's connection.
    let (status, _, _) = http(
        server.addr,
        Method::GET,
        &url,
        &[("authorization", &mallory)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Alice's does.
    let (status, _, _) = http(
        server.addr,
        Method::GET,
        &url,
        &[("authorization", &alice)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Mallory's handshake (or any message) is not delivered: 403, nothing happens.
    let handshake = b"{\"protocol\":\"json\",\"version\":1}\x1e";
    let (status, _, _) = http(
        server.addr,
        Method::POST,
        &url,
        &[("authorization", &mallory)],
        handshake,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.wait_for_connection_count(0).await;
    // Alice's handshake is, and her poll gets the reply.
    let (status, _, _) = http(
        server.addr,
        Method::POST,
        &url,
        &[("authorization", &alice)],
        handshake,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = http(
        server.addr,
        Method::GET,
        &url,
        &[("authorization", &alice)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"{}\x1e");
    server.wait_for_connection_count(1).await;
    // Mallory cannot end it either.
    let (status, _, _) = http(
        server.addr,
        Method::DELETE,
        &url,
        &[("authorization", &mallory)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.wait_for_connection_count(1).await;
    let (status, _, _) = http(
        server.addr,
        Method::DELETE,
        &url,
        &[("authorization", &alice)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
