//! Two servers of one hub in one process, each on its own connection to a real Redis: sends of
//! every kind arrive exactly once, groups and client results cross servers, introspection is
//! cluster-wide, a malformed packet is dropped, and a Redis restart is survived.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::Redis;
use hub_redis::{RedisBackplane, RedisConfig};
use hub_server::testing::{TestClient, TestHub};
use hub_server::{Context, HubConfig, HubContext, HubMethods, LifetimeError, Target};

/// One server: a hub on its own backplane connection, as node `node_id`.
async fn server(redis: &Redis, node_id: &str) -> TestHub {
    server_and_backplane(redis, node_id).await.0
}

async fn server_and_backplane(redis: &Redis, node_id: &str) -> (TestHub, RedisBackplane) {
    let backplane = RedisBackplane::connect(
        RedisConfig::new(redis.url())
            .heartbeat(Duration::from_millis(100))
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let hub = TestHub::on_node(
        HubMethods::<Context>::new(),
        HubConfig::default(),
        backplane.manager(),
        node_id,
    );
    (hub, backplane)
}

/// Waits for the servers to see each other (their first heartbeats).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The texts of the `Msg` callbacks a client gets within a moment, in order.
async fn received(client: &mut TestClient) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut texts = Vec::new();
    while let Some(callback) = client.try_next_callback() {
        assert_eq!(callback.target, "Msg");
        texts.push(callback.argument::<String>(0).unwrap());
    }
    texts
}

/// Sends `Msg(text)` to `target` from `context`'s server; the backplane's answer.
async fn try_send(context: &HubContext, target: Target, text: &str) -> Result<(), LifetimeError> {
    let clients = context.clients();
    let proxy = match target {
        Target::All => clients.all(),
        Target::AllExcept(except) => clients.all_except(except),
        Target::Connection(id) => return clients.client(id).send("Msg", (text,)).await,
        Target::Connections(ids) => clients.clients(ids),
        Target::Group(group) => clients.group(group),
        Target::Groups(groups) => clients.groups(groups),
        Target::GroupExcept(group, except) => clients.group_except(group, except),
        Target::User(user) => clients.user(user),
        Target::Users(users) => clients.users(users),
    };
    proxy.send("Msg", (text,)).await
}

async fn send(context: &HubContext, target: Target, text: &str) {
    try_send(context, target, text)
        .await
        .expect("the backplane took the message");
}

#[tokio::test]
async fn every_target_kind_reaches_each_recipient_once_across_servers() {
    let redis = Redis::start();
    let a = server(&redis, "a").await;
    let b = server(&redis, "b").await;
    let mut a1 = a.connect_as("alice").await.unwrap();
    let mut b1 = b.connect_as("bob").await.unwrap();
    let mut b2 = b.connect_as("carol").await.unwrap();
    settle().await;
    let (a1_id, b1_id, b2_id) = (
        a1.connection_id().to_owned(),
        b1.connection_id().to_owned(),
        b2.connection_id().to_owned(),
    );
    b1.join("g1").await.unwrap();
    b1.join("g2").await.unwrap();
    b2.join("g2").await.unwrap();
    a1.join("g2").await.unwrap();

    let from_a = a.context();
    let cases: Vec<(Target, [bool; 3])> = vec![
        (Target::All, [true, true, true]),
        (Target::AllExcept(vec![b1_id.clone()]), [true, false, true]),
        (Target::Connection(b2_id.clone()), [false, false, true]),
        (
            Target::Connections(vec![a1_id.clone(), b1_id.clone(), b2_id.clone()]),
            [true, true, true],
        ),
        (Target::Group("g1".into()), [false, true, false]),
        // b1 is in both groups, and its server listens on both channels: one copy.
        (
            Target::Groups(vec!["g1".into(), "g2".into()]),
            [true, true, true],
        ),
        (
            Target::GroupExcept("g2".into(), vec![b2_id.clone()]),
            [true, true, false],
        ),
        (Target::User("bob".into()), [false, true, false]),
        // Two users on one server: each connection once.
        (
            Target::Users(vec!["bob".into(), "carol".into(), "alice".into()]),
            [true, true, true],
        ),
    ];
    for (target, expected) in cases {
        let text = format!("{target:?}");
        send(&from_a, target, &text).await;
        for (client, expected) in [&mut a1, &mut b1, &mut b2].into_iter().zip(expected) {
            let want: Vec<String> = if expected { vec![text.clone()] } else { vec![] };
            assert_eq!(
                received(client).await,
                want,
                "{text} to {}",
                client.connection_id()
            );
        }
    }
}

#[tokio::test]
async fn groups_client_results_and_introspection_cross_servers() {
    let redis = Redis::start();
    let a = server(&redis, "a").await;
    let b = server(&redis, "b").await;
    let a1 = a.connect_as("alice").await.unwrap();
    let mut b1 = b.connect_as("bob").await.unwrap();
    settle().await;
    let b1_id = b1.connection_id().to_owned();
    let from_a = a.context();

    // A group change for a connection of the other server, done there before `add` returns.
    from_a.groups().add(&b1_id, "room").await.unwrap();
    assert_eq!(
        from_a.groups().members("room").await.unwrap(),
        vec![b1_id.clone()]
    );
    assert_eq!(
        from_a.groups().of(&b1_id).await.unwrap(),
        vec!["room".to_owned()]
    );
    send(&from_a, Target::Group("room".into()), "in the room").await;
    assert_eq!(received(&mut b1).await, vec!["in the room".to_owned()]);
    from_a.groups().remove(&b1_id, "room").await.unwrap();
    send(&from_a, Target::Group("room".into()), "gone").await;
    assert!(received(&mut b1).await.is_empty());

    // Cluster-wide introspection.
    assert_eq!(from_a.connection_count().await.unwrap(), 2);
    assert_eq!(
        from_a.user_connections("bob").await.unwrap(),
        vec![b1_id.clone()]
    );

    // A client result asked on A of a connection on B.
    let ask = tokio::spawn({
        let proxy = from_a.clients().client(b1_id.clone());
        async move { proxy.invoke::<i64, _>("Add", (20, 22)).await }
    });
    let callback = b1.next_callback().await.unwrap();
    assert_eq!(callback.target, "Add");
    b1.answer(&callback, 42).await.unwrap();
    assert_eq!(ask.await.unwrap().unwrap(), 42);

    // Gone connections leave the counts; asking them fails at once.
    let a1_id = a1.connection_id().to_owned();
    b1.close().await;
    assert_eq!(from_a.connection_count().await.unwrap(), 1);
    let error = from_a
        .clients()
        .client(b1_id.clone())
        .invoke::<i64, _>("Add", (1, 2))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Connection '{b1_id}' does not exist.")
    );
    assert_eq!(
        b.context().user_connections("alice").await.unwrap(),
        vec![a1_id]
    );
}

#[tokio::test]
async fn a_malformed_packet_is_dropped_and_the_server_keeps_working() {
    let redis = Redis::start();
    let a = server(&redis, "a").await;
    let b = server(&redis, "b").await;
    let mut b1 = b.connect().await.unwrap();
    settle().await;
    // PUBLISH garbage on the hub's broadcast channel, as a stranger on the same Redis could.
    for payload in [&b"\xc1\xc1"[..], b"not msgpack", b"\x81\xa1v\x09"] {
        let mut stream = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
        let channel = b"hubs:/test:all";
        let mut command = format!("*3\r\n$7\r\nPUBLISH\r\n${}\r\n", channel.len()).into_bytes();
        command.extend_from_slice(channel);
        command.extend_from_slice(format!("\r\n${}\r\n", payload.len()).as_bytes());
        command.extend_from_slice(payload);
        command.extend_from_slice(b"\r\n");
        stream.write_all(&command).unwrap();
    }
    send(&a.context(), Target::All, "still here").await;
    assert_eq!(received(&mut b1).await, vec!["still here".to_owned()]);
}

#[tokio::test]
async fn a_redis_restart_is_survived() {
    let mut redis = Redis::start();
    let (a, backplane_a) = server_and_backplane(&redis, "a").await;
    let b = server(&redis, "b").await;
    let mut a1 = a.connect().await.unwrap();
    let mut b1 = b.connect().await.unwrap();
    settle().await;
    let from_a = a.context();

    redis.stop();
    // What needs Redis fails with a clear error; local deliveries go on.
    assert!(matches!(
        from_a.connection_count().await,
        Err(LifetimeError::Unavailable(_))
    ));
    // The caller learns that the other servers were not reached; its own clients still get it.
    assert!(matches!(
        try_send(&from_a, Target::All, "during").await,
        Err(LifetimeError::Unavailable(_))
    ));
    assert_eq!(received(&mut a1).await, vec!["during".to_owned()]);
    assert!(!backplane_a.is_available());
    assert!(
        backplane_a.failed_sends() >= 1,
        "the failed send is counted"
    );

    redis.restart();
    // The servers reconnect and resubscribe by themselves.
    let mut resumed = false;
    for attempt in 0..50 {
        // Refused while the servers have not yet seen Redis back.
        let _ = try_send(&from_a, Target::All, &format!("after {attempt}")).await;
        if !received(&mut b1).await.is_empty() {
            resumed = true;
            break;
        }
    }
    assert!(
        resumed,
        "cross-server sends did not resume within ~10 s of Redis coming back"
    );
    let _ = received(&mut a1).await;
}
