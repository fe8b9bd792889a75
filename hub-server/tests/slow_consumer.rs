//! A client that stops reading is closed when its outbound queue and overflow are full (or it
//! makes no progress for the send timeout); the others still get every message, in order, and
//! no sender ever waits for it.
//!
//! The server never waits for a slow client, so whether a client that does read "keeps up" is a
//! matter of scheduling. To keep the main test deterministic under any load, `Storm` is paced by
//! the clients that read: it never gets more than [`WINDOW`] items (< the queue capacity) ahead of
//! the slowest of them. The client that stops reading is not counted, so its backlog grows until
//! its socket buffers (about 2.7 MB here: a 4 KB receive buffer plus what the server's kernel send
//! buffer absorbs) and then its queue are full, which [`ITEMS`] of about 1 KB exceed by far.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    assert_close_with_error, invocation_args, negotiate_token, result, test_hub, TestServer,
    WsClient, PATH, TIMEOUT,
};
use hub_server::protocol::{HubMessage, Protocol};
use hub_server::{Context, HubConfig, HubError, HubMethods};
use tokio::net::TcpSocket;
use tokio::sync::Notify;

const ITEMS: u32 = 8000;
const QUEUE: usize = 16;
const WINDOW: u32 = 8;

/// How many items each reading client has received.
#[derive(Default)]
struct Progress {
    readers: Mutex<Vec<Arc<AtomicU32>>>,
    changed: Notify,
}

impl Progress {
    fn reader(&self) -> Arc<AtomicU32> {
        let counter = Arc::new(AtomicU32::new(0));
        self.readers.lock().unwrap().push(counter.clone());
        counter
    }

    fn advance(&self, counter: &AtomicU32, received: u32) {
        counter.store(received, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits until item `next` may be sent: fewer than `WINDOW` items in flight to every reader.
    async fn wait_for_room(&self, next: u32) {
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            let slowest = self
                .readers
                .lock()
                .unwrap()
                .iter()
                .map(|counter| counter.load(Ordering::SeqCst))
                .min();
            match slowest {
                Some(received) if next >= received + WINDOW => changed.await,
                _ => return,
            }
        }
    }
}

/// How `Storm` sends.
#[derive(Clone)]
enum Pace {
    /// As fast as it can, never yielding.
    Tight,
    /// Yielding to the scheduler after each push.
    Yield,
    /// Staying within `WINDOW` items of the slowest reader.
    Readers(Arc<Progress>),
}

/// `Storm(n)`: n pushes `Item(i, "x" * 1000)` to everyone.
fn storm_hub(pace: Pace) -> HubMethods<Context> {
    test_hub().method("Storm", move |cx: Context, (n,): (u32,)| {
        let pace = pace.clone();
        async move {
            let payload = "x".repeat(1000);
            for i in 0..n {
                if let Pace::Readers(progress) = &pace {
                    progress.wait_for_room(i).await;
                }
                cx.clients().all().send("Item", (i, &payload)).await?;
                if let Pace::Yield = pace {
                    tokio::task::yield_now().await;
                }
            }
            Ok::<_, HubError>(n)
        }
    })
}

/// Reads `ITEMS` items in order (and, for the caller, the Storm's Completion), reporting progress.
async fn read_storm(
    mut client: WsClient,
    caller: bool,
    progress: Option<(Arc<Progress>, Arc<AtomicU32>)>,
) -> WsClient {
    let mut next = 0;
    let mut completed = !caller;
    while next < ITEMS || !completed {
        let received = client.recv_skip_pings().await;
        match &received.message {
            HubMessage::Invocation(_) => {
                let (i, text): (u32, String) = invocation_args(&received, "Item");
                assert_eq!(i, next, "items out of order");
                assert_eq!(text.len(), 1000);
                next += 1;
                if let Some((progress, counter)) = &progress {
                    progress.advance(counter, next);
                }
            }
            HubMessage::Completion(completion) => {
                assert_eq!(result::<u32>(completion), ITEMS);
                completed = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    client
}

/// A negotiated, handshaken client with a 4 KB receive buffer (so that not reading fills it).
async fn small_buffer_client(server: &TestServer) -> WsClient {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let token = negotiate_token(server.addr, PATH).await;
    let mut client =
        WsClient::try_connect_on(stream, server.addr, &format!("{PATH}?id={token}"), &[])
            .await
            .expect("connect the slow client");
    client.handshake(Protocol::Json).await;
    client
}

async fn slow_consumer_is_closed(pace: Pace, send_timeout: Duration) {
    let server = TestServer::start(
        storm_hub(pace.clone()),
        HubConfig::new()
            .outbound_queue_capacity(QUEUE)
            .send_timeout(send_timeout),
    )
    .await;
    let reporting = |_: ()| match &pace {
        Pace::Readers(progress) => Some((progress.clone(), progress.reader())),
        _ => None,
    };

    let mut slow = small_buffer_client(&server).await;
    let mut caller = server.json_client().await;
    let watcher = server.json_client().await;
    server.wait_for_connection_count(3).await;

    let watcher = tokio::spawn(read_storm(watcher, false, reporting(())));
    caller.invoke("storm", "Storm", (ITEMS,)).await;
    let caller = tokio::spawn(read_storm(caller, true, reporting(())));

    // The slow client does not read from here on, until the server has dropped it.
    server.wait_for_connection_count(2).await;
    let mut caller = tokio::time::timeout(TIMEOUT, caller)
        .await
        .expect("the caller did not get every item")
        .expect("the caller's reader");
    let mut watcher = tokio::time::timeout(TIMEOUT, watcher)
        .await
        .expect("the watcher did not get every item")
        .expect("the watcher's reader");
    assert_eq!(server.hub.connection_count().await.unwrap(), 2);

    // Now it reads: some items in order, then the Close with error (or just the end of the socket).
    let mut next = 0;
    let mut closed = None;
    while let Some(received) = slow.try_recv_within(TIMEOUT).await {
        match &received.message {
            HubMessage::Invocation(_) => {
                assert!(closed.is_none(), "a message after the Close");
                let (i, _): (u32, String) = invocation_args(&received, "Item");
                assert_eq!(i, next, "the slow client's items are out of order");
                next += 1;
            }
            HubMessage::Close(_) => closed = Some(received),
            HubMessage::Ping => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        next < ITEMS,
        "the slow client got every item: it was not cut off"
    );
    if let Some(close) = &closed {
        assert_close_with_error(close);
    }

    // The others are unaffected.
    caller.echo_works("fast").await;
    watcher.echo_works("fast too").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_others_get_everything() {
    slow_consumer_is_closed(Pace::Readers(Arc::default()), Duration::from_millis(300)).await;
}

/// Reads what a client gets from a Storm: items in order with no gap, then either every item
/// (and, for the caller, the Completion) or — for a client that fell too far behind — a Close
/// with an error. Never a silent gap. Returns how many items it got.
async fn read_in_order_or_closed(mut client: WsClient, caller: bool) -> u32 {
    let mut next = 0;
    let mut completed = !caller;
    while next < ITEMS || !completed {
        let Some(received) = client.try_recv_within(TIMEOUT).await else {
            panic!("the stream of items stopped at {next} without a Close");
        };
        match &received.message {
            HubMessage::Invocation(_) => {
                let (i, _): (u32, String) = invocation_args(&received, "Item");
                assert_eq!(i, next, "items out of order, or one was skipped");
                next += 1;
            }
            HubMessage::Completion(completion) => {
                assert_eq!(result::<u32>(completion), ITEMS);
                completed = true;
            }
            HubMessage::Close(_) => {
                assert_close_with_error(&received);
                return next;
            }
            HubMessage::Ping => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    next
}

/// A hub method that sends as fast as it can never waits for its recipients: it finishes, and
/// each client that reads gets every item in order, or — if it fell further behind than its
/// queue and overflow hold — the items in order up to where it was cut off and a Close with an
/// error, never a silent gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tight_broadcast_loop_never_waits_and_never_skips_silently() {
    let server = TestServer::start(
        storm_hub(Pace::Tight),
        HubConfig::new()
            .outbound_queue_capacity(QUEUE)
            .send_timeout(Duration::from_secs(120)),
    )
    .await;
    let mut caller = server.json_client().await;
    let watcher = server.json_client().await;
    server.wait_for_connection_count(2).await;
    let watcher = tokio::spawn(read_in_order_or_closed(watcher, false));
    caller.invoke("storm", "Storm", (ITEMS,)).await;
    let caller = tokio::spawn(read_in_order_or_closed(caller, true));
    tokio::time::timeout(TIMEOUT, caller)
        .await
        .expect("the caller's stream neither finished nor closed")
        .expect("the caller's reader");
    tokio::time::timeout(TIMEOUT, watcher)
        .await
        .expect("the watcher's stream neither finished nor closed")
        .expect("the watcher's reader");
    // A new client is answered, though the Storm may still be broadcasting to it. One that
    // joins mid-storm may itself fall behind and be closed with an error, as any client that
    // cannot keep up is (CI found that under load); the hub stays responsive: the next one is
    // answered.
    for attempt in 1..=5 {
        let mut other = server.json_client().await;
        other.invoke("e", "Echo", ("responsive",)).await;
        loop {
            let received = other.recv_skip_pings().await;
            match &received.message {
                HubMessage::Completion(completion) => {
                    assert_eq!(result::<String>(completion), "responsive");
                    return;
                }
                HubMessage::Invocation(_) => {}
                HubMessage::Close(_) if attempt < 5 => {
                    assert_close_with_error(&received);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// With a send timeout far longer than the test may take, a broadcast that waited on the
/// stalled client's full queue would hold every other recipient for that long. It must not:
/// the stalled client's messages wait in its own overflow, the others get every item at once,
/// and the stalled client is closed when its overflow is full, not after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_never_delays_the_sender_or_the_others() {
    slow_consumer_is_closed(Pace::Readers(Arc::default()), Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_floods_itself_is_dropped_and_the_hub_stays_responsive() {
    let server = TestServer::start(
        storm_hub(Pace::Yield),
        HubConfig::new()
            .outbound_queue_capacity(QUEUE)
            .send_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut slow = small_buffer_client(&server).await;
    // (The handshake reply is sent just before the connection is registered.)
    server.wait_for_connection_count(1).await;
    // It calls Storm and does not read the answers.
    slow.invoke("s", "Storm", (ITEMS,)).await;
    server.wait_for_connection_count(0).await;
    let mut other = server.json_client().await;
    other.echo_works("responsive").await;
    // When it finally reads: items in order, then the Close with error or the end of the socket;
    // never the Storm's Completion, which came after the overflow.
    let mut next = 0;
    let mut closed = None;
    while let Some(received) = slow.try_recv_within(TIMEOUT).await {
        assert!(closed.is_none(), "a message after the Close");
        match &received.message {
            HubMessage::Invocation(_) => {
                let (i, _): (u32, String) = invocation_args(&received, "Item");
                assert_eq!(i, next, "the items are out of order");
                next += 1;
            }
            HubMessage::Close(_) => closed = Some(received),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        next < ITEMS,
        "the flooding client got every item: it was not cut off"
    );
    if let Some(close) = &closed {
        assert_close_with_error(close);
    }
}

/// A client whose socket is full and that never reads again: the writer's send timeout must
/// bound every write, so the connection's tasks end and shutdown completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_while_a_client_never_reads() {
    let mut server = TestServer::start(
        storm_hub(Pace::Yield),
        HubConfig::new()
            .outbound_queue_capacity(QUEUE)
            .send_timeout(Duration::from_millis(300))
            .shutdown_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut slow = small_buffer_client(&server).await;
    server.wait_for_connection_count(1).await;
    slow.invoke("s", "Storm", (ITEMS,)).await;
    server.wait_for_connection_count(0).await;
    // Well past the send timeout: the stalled write has given up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.shutdown.shutdown();
    let served = tokio::time::timeout(TIMEOUT, &mut server.serve).await;
    drop(slow);
    served
        .expect("serve() did not return: a task is stuck writing to the stalled client")
        .unwrap()
        .unwrap();
}
