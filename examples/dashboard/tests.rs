//! The dashboard hub in process (`hub_server::testing`), its tokens, the admins' stats view (the
//! server's service, called in process), and the committed client's drift check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_server::protocol::Protocol;
use hub_server::testing::{Callback, TestClient, TestHub};
use hub_server::{HubService, Principal, Unauthorized};
use serde_json::{json, Value};

use crate::auth::{LoginRequest, Role, Tokens};
use crate::hub::{
    Announcement, Dashboard, DashboardClientProxy, DashboardServer, Delivery, MetricsSample,
    Notification, NotificationTarget, Presence, ServeDashboard, Session,
};

/// The committed client is what the generator writes from this hub today, and its types are
/// exact (no lossy-shape warning: every f64 and u64 field says it is a JavaScript number).
#[test]
fn generated_client_is_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/client");
    let package = super::client_package();
    if let Err(error) = package.verify(&dir) {
        panic!("{error}");
    }
    let generated = package.generate().unwrap();
    assert_eq!(generated.warnings, Vec::<String>::new());
}

type Client = TestClient<DashboardClientProxy>;

struct Fixture {
    server: Arc<DashboardServer>,
    hub: TestHub<DashboardClientProxy>,
}

fn dashboard() -> Fixture {
    let server = Arc::new(DashboardServer::default());
    let hub = TestHub::new(ServeDashboard::from_arc(server.clone()));
    Fixture { server, hub }
}

/// Connects as a demo user, with the principal the authenticator gives them.
async fn connect(fixture: &Fixture, user: &str) -> Client {
    let tokens = Tokens::from_secret("tests");
    let token = tokens.issue(user, u64::MAX);
    let principal = tokens.authenticate(Some(&token)).unwrap();
    fixture
        .hub
        .connect_with(principal, Protocol::Json)
        .await
        .unwrap()
}

/// The next callback named `target`, skipping the others (presence…).
async fn next(client: &mut Client, target: &str) -> Callback {
    loop {
        let callback = client.next_callback().await.unwrap();
        if callback.target == target {
            return callback;
        }
    }
}

/// Asserts that `client` got no callback named `target` so far. A call first proves its queue
/// holds everything sent before the call.
async fn got_no(client: &mut Client, target: &str) {
    let _: Session = client.invoke("Session", ()).await.unwrap();
    while let Some(callback) = client.try_next_callback() {
        assert_ne!(callback.target, target, "an unexpected {target}");
    }
}

/// The hub's error text for a failed call, without SignalR's prefix.
async fn error(
    client: &mut Client,
    method: &str,
    arguments: impl hub_server::protocol::EncodeArguments,
) -> String {
    let error = client
        .invoke::<serde_json::Value>(method, arguments)
        .await
        .unwrap_err()
        .to_string();
    match error.split_once("HubException: ") {
        Some((_, text)) => text.to_owned(),
        None => panic!("not a hub error: {error}"),
    }
}

#[tokio::test]
async fn only_admins_may_broadcast() {
    let fixture = dashboard();
    let mut alice = connect(&fixture, "alice").await;
    let mut bob = connect(&fixture, "bob").await;
    // `#[authorize(role = "admin")]`: SignalR's own text, not a hub error.
    let refused = bob
        .invoke::<serde_json::Value>("Broadcast", ("hello everyone",))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        refused,
        "Failed to invoke 'Broadcast' because user is unauthorized"
    );
    got_no(&mut alice, "Announcement").await;

    let sent: Announcement = alice
        .invoke("Broadcast", ("maintenance at noon",))
        .await
        .unwrap();
    assert_eq!(sent.from, "alice");
    for client in [&mut alice, &mut bob] {
        let heard: Announcement = next(client, "Announcement").await.argument(0).unwrap();
        assert_eq!(heard, sent);
    }
    assert_eq!(
        error(&mut alice, "Broadcast", ("  ",)).await,
        "a notification needs some text"
    );
}

#[tokio::test]
async fn a_user_notification_reaches_every_connection_of_that_user_only() {
    let fixture = dashboard();
    let mut alice = connect(&fixture, "alice").await;
    let mut bob_tab = connect(&fixture, "bob").await;
    let mut bob_phone = connect(&fixture, "bob").await;
    let mut carol = connect(&fixture, "carol").await;

    let delivery: Delivery = alice
        .invoke("NotifyUser", ("Bob", "your deploy finished"))
        .await
        .unwrap();
    assert_eq!(delivery.connections, 2);
    assert_eq!(
        delivery.notification.to,
        NotificationTarget::User {
            user: "bob".to_owned()
        }
    );
    for bob in [&mut bob_tab, &mut bob_phone] {
        let heard: Notification = next(bob, "Notification").await.argument(0).unwrap();
        assert_eq!(heard, delivery.notification);
    }
    got_no(&mut carol, "Notification").await;
    got_no(&mut alice, "Notification").await;

    assert_eq!(
        error(&mut alice, "NotifyUser", ("zed", "hi")).await,
        "there is no user called `zed`; the users are alice, bob, carol"
    );
    let offline: Delivery = bob_tab
        .invoke("NotifyUser", ("carol", "x".repeat(280)))
        .await
        .unwrap();
    assert_eq!(offline.connections, 1);
    assert_eq!(
        error(&mut alice, "NotifyUser", ("bob", "x".repeat(281))).await,
        "notifications are at most 280 characters (this one has 281)"
    );
}

#[tokio::test]
async fn a_topic_notification_reaches_its_subscribers_only() {
    let fixture = dashboard();
    let mut alice = connect(&fixture, "alice").await;
    let mut bob = connect(&fixture, "bob").await;
    let mut carol = connect(&fixture, "carol").await;

    let topics: Vec<String> = alice.invoke("Subscribe", ("deploys",)).await.unwrap();
    assert_eq!(topics, ["deploys"]);
    let topics: Vec<String> = alice.invoke("Subscribe", ("Incidents",)).await.unwrap();
    assert_eq!(topics, ["deploys", "incidents"]);
    let _: Vec<String> = bob.invoke("Subscribe", ("incidents",)).await.unwrap();
    let session: Session = alice.invoke("Session", ()).await.unwrap();
    assert_eq!(session.subscribed, ["deploys", "incidents"]);

    // carol publishes without being subscribed; only the subscribers hear it.
    let sent: Notification = carol
        .invoke("Publish", ("deploys", "v2.3 is live"))
        .await
        .unwrap();
    let heard: Notification = next(&mut alice, "Notification").await.argument(0).unwrap();
    assert_eq!(heard, sent);
    got_no(&mut bob, "Notification").await;
    got_no(&mut carol, "Notification").await;

    let topics: Vec<String> = alice.invoke("Unsubscribe", ("incidents",)).await.unwrap();
    assert_eq!(topics, ["deploys"]);
    let sent: Notification = carol
        .invoke("Publish", ("incidents", "db latency high"))
        .await
        .unwrap();
    assert_eq!(
        sent.to,
        NotificationTarget::Topic {
            topic: "incidents".to_owned()
        }
    );
    let heard: Notification = next(&mut bob, "Notification").await.argument(0).unwrap();
    assert_eq!(heard.text, "db latency high");
    got_no(&mut alice, "Notification").await;

    assert_eq!(
        error(&mut alice, "Subscribe", ("cats",)).await,
        "there is no topic called `cats`; the topics are deploys, incidents, billing"
    );
}

/// Waits for the presence push that shows `users`, and returns it.
async fn presence_of(client: &mut Client, users: &[&str]) -> Presence {
    loop {
        let presence: Presence = next(client, "PresenceChanged").await.argument(0).unwrap();
        if presence.users == users {
            return presence;
        }
    }
}

#[tokio::test]
async fn presence_counts_users_and_follows_connects_and_disconnects() {
    let fixture = dashboard();
    let mut alice = connect(&fixture, "alice").await;
    let first = presence_of(&mut alice, &["alice"]).await;
    assert_eq!(first.connections, 1);

    let bob_tab = connect(&fixture, "bob").await;
    let both = presence_of(&mut alice, &["alice", "bob"]).await;
    assert_eq!(both.connections, 2);
    assert!(both.version > first.version);
    let bob_phone = connect(&fixture, "bob").await;
    let three = presence_of(&mut alice, &["alice", "bob"]).await;
    assert_eq!(three.connections, 3);

    bob_tab.close().await;
    let two = presence_of(&mut alice, &["alice", "bob"]).await;
    assert_eq!(two.connections, 2);
    bob_phone.close().await;
    let alone = presence_of(&mut alice, &["alice"]).await;
    assert_eq!(alone.connections, 1);
    let session: Session = alice.invoke("Session", ()).await.unwrap();
    assert_eq!(session.presence.users, ["alice"]);
    assert_eq!(session.role, "admin");
    assert_eq!(session.transport, "WebSockets");
}

#[tokio::test]
async fn an_anonymous_connection_is_closed() {
    let fixture = dashboard();
    let refused = fixture.hub.connect().await;
    // The hook refuses it: the handshake may still be answered, but nothing works afterwards.
    if let Ok(mut client) = refused {
        assert!(client.invoke::<Session>("Session", ()).await.is_err());
    }
}

#[tokio::test]
async fn the_metrics_stream_yields_samples_and_ends_at_its_limit() {
    let fixture = dashboard();
    let mut alice = connect(&fixture, "alice").await;
    let samples: Vec<MetricsSample> = alice.stream("Metrics", (50, Some(3))).await.unwrap();
    assert_eq!(
        samples.iter().map(|sample| sample.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for sample in &samples {
        assert!((0.0..=100.0).contains(&sample.cpu_percent));
        assert!((256.0..=16384.0).contains(&sample.memory_mb));
        assert!((0.0..=5000.0).contains(&sample.requests_per_second));
        assert_eq!(sample.connections, 1);
    }
    assert!(samples[2].at >= samples[0].at + 90, "50 ms apart");
    let error = alice
        .stream::<MetricsSample>("Metrics", (10, None::<u32>))
        .await
        .unwrap_err();
    assert!(error
        .to_string()
        .ends_with("HubException: the interval is 50 to 10000 ms, not 10"));
    assert_eq!(fixture.server.running_streams(), 0);
}

#[tokio::test]
async fn a_cancelled_metrics_stream_stops() {
    let fixture = dashboard();
    let alice = connect(&fixture, "alice").await;
    // The hub cancels a stream by dropping it, as it does here.
    let stream = fixture
        .server
        .metrics(alice.context().unwrap(), 50, None)
        .await
        .unwrap();
    let mut stream = Box::pin(stream);
    assert_eq!(fixture.server.running_streams(), 1);
    let first = stream.next().await.unwrap();
    let second = stream.next().await.unwrap();
    assert_eq!((first.seq, second.seq), (1, 2));
    drop(stream);
    assert_eq!(fixture.server.running_streams(), 0);
    // Not polled, nothing runs: the stream only works while someone reads it.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(fixture.server.running_streams(), 0);
}

#[tokio::test]
async fn metrics_streams_end_when_the_server_stops() {
    let fixture = dashboard();
    let alice = connect(&fixture, "alice").await;
    let running = fixture
        .server
        .metrics(alice.context().unwrap(), 50, None)
        .await
        .unwrap();
    let mut running = Box::pin(running);
    assert_eq!(running.next().await.unwrap().seq, 1);
    fixture.server.stop_streams();
    assert!(running.next().await.is_none());
    drop(running);
    // One started afterwards ends at once.
    let later = fixture
        .server
        .metrics(alice.context().unwrap(), 50, None)
        .await
        .unwrap();
    assert!(Box::pin(later).next().await.is_none());
    assert_eq!(fixture.server.running_streams(), 0);
}

#[test]
fn tokens_name_their_user_and_survive_a_restart_with_the_same_secret() {
    let before = Tokens::from_secret("s3cret");
    let login = before
        .login(&LoginRequest {
            user: "alice".to_owned(),
            password: "alice".to_owned(),
        })
        .unwrap();
    assert_eq!((login.user.as_str(), login.role), ("alice", "admin"));
    let after = Tokens::from_secret("s3cret");
    let principal = after.authenticate(Some(&login.token)).unwrap();
    assert_eq!(principal.user_id.as_deref(), Some("alice"));
    assert_eq!(Role::from_claims(&principal.claims), Role::Admin);

    // Another key, a changed token, an expired one, none at all: 401.
    assert_eq!(
        Tokens::from_secret("other").authenticate(Some(&login.token)),
        Err(Unauthorized)
    );
    assert_eq!(
        Tokens::random().unwrap().authenticate(Some(&login.token)),
        Err(Unauthorized)
    );
    let forged = login.token.replacen("alice", "carol", 1);
    assert_eq!(after.authenticate(Some(&forged)), Err(Unauthorized));
    assert_eq!(
        after.authenticate(Some(&after.issue("bob", 1))),
        Err(Unauthorized)
    );
    assert_eq!(after.authenticate(Some("v1.bob")), Err(Unauthorized));
    assert_eq!(after.authenticate(None), Err(Unauthorized));
    let bob: Principal = after
        .authenticate(Some(&after.issue("bob", u64::MAX)))
        .unwrap();
    assert_eq!(Role::from_claims(&bob.claims), Role::User);

    let wrong = LoginRequest {
        user: "bob".to_owned(),
        password: "alice".to_owned(),
    };
    assert!(before.login(&wrong).is_none());
}

/// An answer of the hub service: status, content type, cache control, body.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    cache_control: Option<String>,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends a request to the service, with `token` as the bearer token when there is one.
async fn call(
    service: &HubService,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), service.handle(request))
        .await
        .unwrap_or_else(|_| panic!("{uri} did not answer in 10 s"));
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|value: &http::HeaderValue| value.to_str().unwrap().to_owned())
    };
    let content_type = header(header::CONTENT_TYPE);
    let cache_control = header(header::CACHE_CONTROL);
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        cache_control,
        body,
    }
}

/// `GET /stats` with `token`.
async fn stats(service: &HubService, token: Option<&str>) -> Answer {
    call(service, Method::GET, super::STATS_PATH, token, "").await
}

/// Polls a long-polling connection until a Completion for `invocation_id` arrives; its result.
async fn completion(service: &HubService, uri: &str, token: &str, invocation_id: &str) -> Value {
    for _ in 0..20 {
        let poll = call(service, Method::GET, uri, Some(token), "").await;
        assert_eq!(poll.status, StatusCode::OK, "a poll");
        for frame in poll.body.split(|byte| *byte == 0x1e) {
            if frame.is_empty() {
                continue;
            }
            let message: Value = serde_json::from_slice(frame).unwrap();
            if message["type"] == 3 && message["invocationId"] == invocation_id {
                assert_eq!(message.get("error"), None, "{message}");
                return message["result"].clone();
            }
        }
    }
    panic!("no completion for invocation {invocation_id}");
}

/// The server's stats view on `/stats`, through the service `main` serves: 401 without a valid
/// token, 403 for a user, the view for an admin — showing a user's long-polling connection, the
/// topic it subscribed to and its invocation.
#[tokio::test]
async fn the_stats_view_is_for_admins_only() {
    let tokens = Arc::new(Tokens::from_secret("tests"));
    let service = super::hub_service(tokens.clone(), Arc::new(DashboardServer::default())).unwrap();
    assert!(service.matches("/stats"));
    let alice = tokens.issue("alice", u64::MAX);
    let bob = tokens.issue("bob", u64::MAX);

    // No token, another server's token, a forged one, an expired one: 401. A user: 403.
    assert_eq!(stats(&service, None).await.status, StatusCode::UNAUTHORIZED);
    let foreign = Tokens::from_secret("another server").issue("alice", u64::MAX);
    let forged = bob.replacen("bob", "alice", 1);
    let expired = tokens.issue("alice", 1);
    for token in [&foreign, &forged, &expired] {
        assert_eq!(
            stats(&service, Some(token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = stats(&service, Some(&bob)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.is_empty());

    // An admin: the view, not cached; nobody is connected yet.
    let empty = stats(&service, Some(&alice)).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.content_type.as_deref(), Some("application/json"));
    assert_eq!(empty.cache_control.as_deref(), Some("no-store"));
    let view = empty.json();
    assert!(view["atUnixMs"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(view["hubs"].as_array().unwrap().len(), 1);
    let hub = &view["hubs"][0];
    assert_eq!(hub["path"], "/dashboard");
    assert_eq!(hub["connections"], 0);
    assert_eq!(hub["byTransport"], json!({}));
    assert_eq!(hub["users"], 0);
    assert_eq!(hub["groups"], json!([]));
    assert_eq!(hub["totals"]["invocations"], 0);

    // bob connects over long polling (through the same service) and subscribes to a topic.
    let negotiated = call(
        &service,
        Method::POST,
        "/dashboard/negotiate?negotiateVersion=1",
        Some(&bob),
        "",
    )
    .await;
    assert_eq!(negotiated.status, StatusCode::OK);
    let connection_token = negotiated.json()["connectionToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = format!("/dashboard?id={connection_token}");
    let first = call(&service, Method::GET, &uri, Some(&bob), "").await;
    assert_eq!(first.status, StatusCode::OK, "the first poll");
    let handshake = "{\"protocol\":\"json\",\"version\":1}\u{1e}";
    let sent = call(&service, Method::POST, &uri, Some(&bob), handshake).await;
    assert_eq!(sent.status, StatusCode::OK, "the handshake");
    let subscribe =
        "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Subscribe\",\"arguments\":[\"deploys\"]}\u{1e}";
    let sent = call(&service, Method::POST, &uri, Some(&bob), subscribe).await;
    assert_eq!(sent.status, StatusCode::OK, "the invocation");
    assert_eq!(
        completion(&service, &uri, &bob, "1").await,
        json!(["deploys"])
    );

    let view = stats(&service, Some(&alice)).await.json();
    let hub = &view["hubs"][0];
    assert_eq!(hub["connections"], 1, "{view}");
    assert_eq!(hub["byTransport"], json!({ "longPolling": 1 }));
    assert_eq!(hub["byProtocol"], json!({ "json": 1 }));
    assert_eq!(hub["users"], 1);
    assert_eq!(hub["groups"], json!([{ "name": "deploys", "members": 1 }]));
    assert_eq!(hub["totals"]["invocations"], 1);
    assert!(hub["totals"]["messagesReceived"].as_u64().unwrap() >= 1);
    assert!(hub["totals"]["messagesSent"].as_u64().unwrap() >= 1);
    assert!(hub["totals"]["bytesReceived"].as_u64().unwrap() >= subscribe.len() as u64);
    for rate in ["invocations", "messagesReceived", "messagesSent"] {
        assert!(hub["rates"][rate].as_f64().unwrap() >= 0.0, "{view}");
    }
    // Still 403 for bob, connected or not.
    assert_eq!(
        stats(&service, Some(&bob)).await.status,
        StatusCode::FORBIDDEN
    );
}
