//! The dashboard hub in process (`hub_server::testing`), its tokens, and the committed client's
//! drift check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hub_server::protocol::Protocol;
use hub_server::testing::{Callback, TestClient, TestHub};
use hub_server::{Principal, Unauthorized};

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
