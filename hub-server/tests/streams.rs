//! Server-to-client streams, upload streams and CancelInvocation, driven with raw protocol
//! messages: exact wire shapes in JSON and MessagePack, errors, cancellation, the parallel limit,
//! reused ids, the bounded upload buffer, and what a closing connection cancels.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{error, TestServer, WsClient, RS, TIMEOUT};
use futures_util::{stream, Stream, StreamExt};
use hub_server::protocol::{
    CancelInvocation, CompletionOutcome, HubMessage, Protocol, StreamInvocation,
};
use hub_server::{Context, HubConfig, HubError, HubMethods, UploadStream};
use tokio_util::sync::CancellationToken;

// ----- the hub ----------------------------------------------------------------------------------

/// A one-shot flag: hub methods set it (`cancel()`), tests wait for it.
type Flag = CancellationToken;

/// What the hub's methods report to the tests.
#[derive(Default)]
struct Probe {
    /// A `Ticker` stream's `cx.cancellation()` fired.
    ticker_cancelled: Flag,
    /// `Park` is running.
    park_started: Flag,
    /// `Park`'s `cx.cancellation()` fired.
    park_cancelled: Flag,
    /// `Park`'s future was dropped (or finished).
    park_ended: Flag,
    /// `SlowSum` is running and waits for `release_slow` before reading its upload.
    slow_started: Flag,
    release_slow: Flag,
    /// How many upload items `SlowSum` has read.
    slow_read: AtomicUsize,
    /// The `Probe` stream was started.
    probe_started: Flag,
    /// `Mark` ran.
    marked: Flag,
    /// How many `Watched` streams started, and how many of them saw their cancellation.
    watched_started: AtomicUsize,
    watched_cancelled: AtomicUsize,
}

/// Sets a flag when dropped.
struct SetOnDrop(Flag);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Sets `flag` when `cx`'s cancellation fires.
fn watch_cancellation(cx: &Context, flag: &Flag) {
    let cancellation = cx.cancellation().clone();
    let flag = flag.clone();
    tokio::spawn(async move {
        cancellation.cancelled().await;
        flag.cancel();
    });
}

/// `0, 1, …, count - 1`, one every `delay`.
fn numbers(count: u32, delay: Duration) -> impl Stream<Item = Result<u32, HubError>> + Send {
    stream::unfold(0u32, move |i| async move {
        if i >= count {
            return None;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok(i), i + 1))
    })
}

/// Reads a whole upload stream, failing on the first error.
async fn collect_upload<T: serde::de::DeserializeOwned>(
    mut upload: UploadStream<T>,
) -> Result<Vec<T>, HubError> {
    let mut items = Vec::new();
    while let Some(item) = upload.next().await {
        items.push(item?);
    }
    Ok(items)
}

fn hub(probe: &Arc<Probe>) -> HubMethods<Context> {
    let ticker_probe = probe.clone();
    let park_probe = probe.clone();
    let slow_probe = probe.clone();
    let probe_probe = probe.clone();
    let mark_probe = probe.clone();
    let watched_probe = probe.clone();
    HubMethods::new()
        .stream("Watched", move |cx: Context, (): ()| {
            // Counts its start, and its cancellation when it sees it (as a method that tells its
            // caller it was cancelled would).
            let probe = watched_probe.clone();
            async move {
                probe.watched_started.fetch_add(1, Ordering::SeqCst);
                let cancellation = cx.cancellation().clone();
                let seen = probe.clone();
                tokio::spawn(async move {
                    cancellation.cancelled().await;
                    seen.watched_cancelled.fetch_add(1, Ordering::SeqCst);
                });
                Ok::<_, HubError>(stream::pending::<Result<u32, HubError>>())
            }
        })
        .method("Mark", move |_, (): ()| {
            let probe = mark_probe.clone();
            async move {
                probe.marked.cancel();
                Ok::<_, HubError>(())
            }
        })
        .method("Echo", |_, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .method("Sleep", |cx: Context, (ms,): (u64,)| async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(ms),
                () = cx.cancellation().cancelled() => Err(HubError::new("cancelled")),
            }
        })
        .method("Park", move |cx: Context, (): ()| {
            // Ignores its cancellation: only the server can stop it early (by dropping it).
            let probe = park_probe.clone();
            async move {
                let _ended = SetOnDrop(probe.park_ended.clone());
                watch_cancellation(&cx, &probe.park_cancelled);
                probe.park_started.cancel();
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok::<_, HubError>(1)
            }
        })
        .stream("Counter", |_, (count,): (u32,)| async move {
            Ok::<_, HubError>(numbers(count, Duration::ZERO))
        })
        .stream("Ticker", move |cx: Context, (delay_ms,): (u64,)| {
            let probe = ticker_probe.clone();
            async move {
                watch_cancellation(&cx, &probe.ticker_cancelled);
                Ok::<_, HubError>(numbers(u32::MAX, Duration::from_millis(delay_ms)))
            }
        })
        .stream("FailHub", |_, (after,): (u32,)| async move {
            Ok::<_, HubError>(numbers(after, Duration::ZERO).chain(stream::once(async {
                Err(HubError::new("the stream broke"))
            })))
        })
        .stream("FailInternal", |_, (after,): (u32,)| async move {
            Ok::<_, HubError>(numbers(after, Duration::ZERO).chain(stream::once(async {
                Err(HubError::from(io::Error::other("disk on fire")))
            })))
        })
        .stream("CancelAware", |cx: Context, (): ()| async move {
            // Fails as soon as it sees its cancellation, as a stream that propagates it would.
            Ok::<_, HubError>(stream::unfold((0u32, cx), |(i, cx)| async move {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(5)) => {
                        Some((Ok(i), (i + 1, cx)))
                    }
                    () = cx.cancellation().cancelled() => {
                        Some((Err(HubError::new("cancelled")), (i, cx)))
                    }
                }
            }))
        })
        .stream("Probe", move |_, (): ()| {
            let probe = probe_probe.clone();
            async move {
                probe.probe_started.cancel();
                Ok::<_, HubError>(stream::iter([Ok::<_, HubError>("probe")]))
            }
        })
        .method_with_uploads(
            "Sum",
            |_, (): (), (numbers,): (UploadStream<i64>,)| async move {
                Ok::<_, HubError>(collect_upload(numbers).await?.iter().sum::<i64>())
            },
        )
        .method_with_uploads(
            "Pair",
            |_, (): (), (numbers, words): (UploadStream<i64>, UploadStream<String>)| async move {
                let numbers = collect_upload(numbers).await?;
                let words = collect_upload(words).await?;
                Ok::<_, HubError>((numbers, words))
            },
        )
        .stream_with_uploads(
            "Double",
            |_, (): (), (numbers,): (UploadStream<i64>,)| async move {
                Ok::<_, HubError>(numbers.map(|number| number.map(|n| n * 2)))
            },
        )
        .method_with_uploads(
            "SumToCaller",
            |cx: Context, (): (), (numbers,): (UploadStream<i64>,)| async move {
                let total = collect_upload(numbers).await?.iter().sum::<i64>();
                cx.clients().caller().send("Total", (total,)).await?;
                Ok::<_, HubError>(total)
            },
        )
        .method_with_uploads(
            "SlowSum",
            move |_, (): (), (numbers,): (UploadStream<i64>,)| {
                let probe = slow_probe.clone();
                async move {
                    probe.slow_started.cancel();
                    probe.release_slow.cancelled().await;
                    let mut numbers = numbers;
                    let mut items = Vec::new();
                    while let Some(number) = numbers.next().await {
                        items.push(number?);
                        probe.slow_read.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok::<_, HubError>(items)
                }
            },
        )
}

async fn start(config: HubConfig) -> (TestServer, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let server = TestServer::start(hub(&probe), config).await;
    (server, probe)
}

/// Starts `Park` as invocation "1" (it sleeps 10 s, holding the only slot under a limit of 1)
/// and waits until it runs.
async fn park_in_the_only_slot(client: &mut WsClient, probe: &Probe) {
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"Park","arguments":[]}"#)
        .await;
    wait_for(&probe.park_started, "Park's start").await;
}

async fn wait_for(flag: &Flag, what: &str) {
    tokio::time::timeout(TIMEOUT, flag.cancelled())
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {TIMEOUT:?}"));
}

/// Skips StreamItems (of any id) and Pings; returns the next Completion.
async fn skip_items_to_completion(client: &mut WsClient) -> common::Received {
    loop {
        let received = client.recv_skip_pings().await;
        match &received.message {
            HubMessage::StreamItem(_) => {}
            HubMessage::Completion(_) => return received,
            other => panic!("expected StreamItems then a Completion, got {other:?}"),
        }
    }
}

/// The next message, which must be a StreamItem of `id`: its item.
async fn expect_item<T: serde::de::DeserializeOwned>(client: &mut WsClient, id: &str) -> T {
    let received = client.recv_skip_pings().await;
    match &received.message {
        HubMessage::StreamItem(item) => {
            assert_eq!(&*item.invocation_id, id, "{:?}", received.raw);
            item.item.deserialize().expect("the item deserializes")
        }
        other => panic!("expected a StreamItem of {id:?}, got {other:?}"),
    }
}

/// Prepends the MessagePack length prefix (all test messages are under 128 bytes).
fn msgpack_frame(message: &[u8]) -> Vec<u8> {
    assert!(message.len() < 128);
    let mut frame = vec![message.len() as u8];
    frame.extend_from_slice(message);
    frame
}

// ----- server-to-client streams -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sends_its_items_then_one_completion_without_result_in_json() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":4,"invocationId":"1","target":"Counter","arguments":[3]}"#)
        .await;
    for i in 0..3 {
        assert_eq!(
            client.recv_text().await,
            format!(r#"{{"type":2,"invocationId":"1","item":{i}}}"#)
        );
    }
    assert_eq!(client.recv_text().await, r#"{"type":3,"invocationId":"1"}"#);

    // As the JS client writes it (type last); an empty stream is just the Completion.
    client
        .send_json(r#"{"target":"Counter","arguments":[0],"invocationId":"2","type":4}"#)
        .await;
    assert_eq!(client.recv_text().await, r#"{"type":3,"invocationId":"2"}"#);

    // Exactly one Completion each: the next message is the answer to a later call.
    client
        .send_json(r#"{"type":1,"invocationId":"3","target":"Echo","arguments":["after"]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"3","result":"after"}"#
    );
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sends_its_items_then_a_kind_2_completion_in_msgpack() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.client(Protocol::MessagePack).await;
    // [4, {}, "1", "Counter", [3]]: 5 elements, as the JS client writes it.
    let mut invocation = vec![0x95, 0x04, 0x80, 0xa1, b'1', 0xa7];
    invocation.extend_from_slice(b"Counter");
    invocation.extend_from_slice(&[0x91, 0x03]);
    client.send_binary(&msgpack_frame(&invocation)).await;
    for i in 0..3u8 {
        let received = client.recv_skip_pings().await;
        // [2, {}, "1", i]
        assert_eq!(&received.raw[..], &[0x94, 0x02, 0x80, 0xa1, b'1', i]);
    }
    let received = client.recv_skip_pings().await;
    // [3, {}, "1", 2]: kind 2, no result.
    assert_eq!(&received.raw[..], &[0x94, 0x03, 0x80, 0xa1, b'1', 0x02]);

    // The 6-element form, with an empty stream id list.
    client
        .send_message(&StreamInvocation::new("2", "Counter", (1,)))
        .await;
    let received = client.recv_skip_pings().await;
    assert_eq!(&received.raw[..], &[0x94, 0x02, 0x80, 0xa1, b'2', 0x00]);
    let received = client.recv_skip_pings().await;
    assert_eq!(&received.raw[..], &[0x94, 0x03, 0x80, 0xa1, b'2', 0x02]);
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_error_mid_stream_ends_it_with_the_message() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":4,"invocationId":"1","target":"FailHub","arguments":[2]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":2,"invocationId":"1","item":0}"#
    );
    assert_eq!(
        client.recv_text().await,
        r#"{"type":2,"invocationId":"1","item":1}"#
    );
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","error":"An error occurred on the server while streaming results. HubException: the stream broke"}"#
    );
    client.expect_silence(Duration::from_millis(100)).await;

    // MessagePack: kind 1, then the text.
    let mut msgpack = server.client(Protocol::MessagePack).await;
    msgpack
        .send_message(&StreamInvocation::new("1", "FailHub", (0,)))
        .await;
    let received = msgpack.recv_skip_pings().await;
    assert_eq!(&received.raw[..6], &[0x95, 0x03, 0x80, 0xa1, b'1', 0x01]);
    let HubMessage::Completion(completion) = &received.message else {
        panic!("expected a Completion, got {:?}", received.message);
    };
    assert_eq!(
        error(completion),
        "An error occurred on the server while streaming results. HubException: the stream broke"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_mid_stream_is_generic_unless_errors_are_detailed() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":4,"invocationId":"1","target":"FailInternal","arguments":[1]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":2,"invocationId":"1","item":0}"#
    );
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","error":"An error occurred on the server while streaming results."}"#
    );

    let (detailed, _) = start(HubConfig::new().detailed_errors(true)).await;
    let mut client = detailed.json_client().await;
    client
        .send_json(r#"{"type":4,"invocationId":"1","target":"FailInternal","arguments":[0]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","error":"An error occurred on the server while streaming results. Error: disk on fire"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoking_a_stream_as_unary_and_a_unary_as_stream_fail() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"Counter","arguments":[3]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","error":"The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation."}"#
    );
    client
        .send_json(r#"{"type":4,"invocationId":"2","target":"Echo","arguments":["x"]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"2","error":"The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation."}"#
    );
    client.echo_works("still usable").await;
}

// ----- CancelInvocation -------------------------------------------------------------------------

async fn cancel_invocation_stops_an_endless_stream(protocol: Protocol) {
    let (server, probe) = start(HubConfig::new()).await;
    let mut client = server.client(protocol).await;
    client
        .send_message(&StreamInvocation::new("1", "Ticker", (5,)))
        .await;
    for expected in 0..3u32 {
        assert_eq!(expect_item::<u32>(&mut client, "1").await, expected);
    }
    client.send_message(&CancelInvocation::new("1")).await;
    // Items already on their way may still arrive; then exactly one Completion without result.
    let completion = skip_items_to_completion(&mut client).await;
    let HubMessage::Completion(message) = &completion.message else {
        unreachable!()
    };
    assert_eq!(&*message.invocation_id, "1");
    assert!(
        matches!(message.outcome, CompletionOutcome::NoResult),
        "{:?}",
        message.outcome
    );
    match protocol {
        Protocol::Json => assert_eq!(completion.text(), r#"{"type":3,"invocationId":"1"}"#),
        Protocol::MessagePack => {
            assert_eq!(&completion.raw[..], &[0x94, 0x03, 0x80, 0xa1, b'1', 0x02])
        }
    }
    wait_for(&probe.ticker_cancelled, "the stream's cancellation").await;
    client.expect_silence(Duration::from_millis(200)).await;

    // Cancelling an unknown (or finished) id is ignored.
    client.send_message(&CancelInvocation::new("1")).await;
    client.send_message(&CancelInvocation::new("nope")).await;
    client.echo_works("still usable").await;
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cancelled_in_the_frame_that_starts_it_still_runs_and_sees_its_cancellation() {
    // As ASP.NET Core, a streaming method starts before the next message is read: a client that
    // cancels at once (StreamInvocation and CancelInvocation in one frame) still gets its method
    // run, and the method sees the cancellation. Before, the dispatcher skipped it 20 times out
    // of 20.
    let (server, probe) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    const CALLS: usize = 20;
    for i in 0..CALLS {
        client
            .send_text(&format!(
                "{{\"type\":4,\"invocationId\":\"s{i}\",\"target\":\"Watched\",\"arguments\":[]}}{RS}{{\"type\":5,\"invocationId\":\"s{i}\"}}{RS}"
            ))
            .await;
    }
    let deadline = Instant::now() + TIMEOUT;
    while probe.watched_cancelled.load(Ordering::SeqCst) < CALLS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(probe.watched_started.load(Ordering::SeqCst), CALLS);
    assert_eq!(probe.watched_cancelled.load(Ordering::SeqCst), CALLS);
    // Each cancelled stream ends with one Completion without result, as any cancelled stream.
    let mut ended: Vec<String> = Vec::new();
    for _ in 0..CALLS {
        ended.push(client.recv_text().await);
    }
    ended.sort();
    let mut expected: Vec<String> = (0..CALLS)
        .map(|i| format!(r#"{{"type":3,"invocationId":"s{i}"}}"#))
        .collect();
    expected.sort();
    assert_eq!(ended, expected);
    client.echo_works("the connection goes on").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_invocation_stops_an_endless_stream_in_json() {
    cancel_invocation_stops_an_endless_stream(Protocol::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_invocation_stops_an_endless_stream_in_msgpack() {
    cancel_invocation_stops_an_endless_stream(Protocol::MessagePack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_invocation_of_a_unary_call_frees_its_slot_without_a_completion() {
    let (server, probe) = start(HubConfig::new().max_parallel_invocations(1)).await;
    let mut client = server.json_client().await;
    park_in_the_only_slot(&mut client, &probe).await;
    client.send_json(r#"{"type":5,"invocationId":"1"}"#).await;
    client
        .send_json(r#"{"type":1,"invocationId":"2","target":"Echo","arguments":["next"]}"#)
        .await;
    let sent = Instant::now();
    // Park sleeps 10 s: without the cancel, Echo would wait for its slot past TIMEOUT.
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"2","result":"next"}"#
    );
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "Echo took {:?}",
        sent.elapsed()
    );
    wait_for(&probe.park_cancelled, "Park's cancellation").await;
    wait_for(&probe.park_ended, "the end of Park's future").await;
    // The current design sends nothing for a cancelled unary invocation.
    client.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_while_it_waits_for_its_slot_never_runs() {
    let (server, probe) = start(HubConfig::new().max_parallel_invocations(1)).await;
    let mut client = server.json_client().await;
    park_in_the_only_slot(&mut client, &probe).await;
    // Mark waits behind Park for the only slot; it is cancelled before it gets it.
    client
        .send_json(r#"{"type":1,"invocationId":"2","target":"Mark","arguments":[]}"#)
        .await;
    client.send_json(r#"{"type":5,"invocationId":"2"}"#).await;
    client.send_json(r#"{"type":5,"invocationId":"1"}"#).await;
    client
        .send_json(r#"{"type":1,"invocationId":"3","target":"Echo","arguments":["after"]}"#)
        .await;
    // Echo runs after Mark's turn in the queue has passed.
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"3","result":"after"}"#
    );
    assert!(
        !probe.marked.is_cancelled(),
        "a call cancelled before it started ran anyway"
    );
    client.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_unary_method_that_observes_cancellation_never_gets_a_completion() {
    let (server, _) = start(HubConfig::new().max_parallel_invocations(1)).await;
    let mut client = server.json_client().await;
    let mut completions_of_cancelled = Vec::new();
    for round in 0..40 {
        client
            .send_json(&format!(
                r#"{{"type":1,"invocationId":"s{round}","target":"Sleep","arguments":[10000]}}"#
            ))
            .await;
        client
            .send_json(&format!(r#"{{"type":5,"invocationId":"s{round}"}}"#))
            .await;
        client
            .send_json(&format!(
                r#"{{"type":1,"invocationId":"e{round}","target":"Echo","arguments":["x"]}}"#
            ))
            .await;
        loop {
            let text = client.recv_text().await;
            if text.contains(&format!(r#""invocationId":"e{round}""#)) {
                break;
            }
            completions_of_cancelled.push(text);
        }
    }
    client.expect_silence(Duration::from_millis(300)).await;
    assert!(
        completions_of_cancelled.is_empty(),
        "{} of 40 cancelled calls got a Completion, e.g. {:?}",
        completions_of_cancelled.len(),
        completions_of_cancelled.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_that_fails_on_its_cancellation_still_ends_without_error() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    let mut errors = Vec::new();
    for round in 0..30 {
        client
            .send_json(&format!(
                r#"{{"type":4,"invocationId":"c{round}","target":"CancelAware","arguments":[]}}"#
            ))
            .await;
        let _: u32 = expect_item(&mut client, &format!("c{round}")).await;
        client
            .send_json(&format!(r#"{{"type":5,"invocationId":"c{round}"}}"#))
            .await;
        let end = skip_items_to_completion(&mut client).await;
        if end.text() != format!(r#"{{"type":3,"invocationId":"c{round}"}}"#) {
            errors.push(end.text().to_owned());
        }
    }
    assert!(
        errors.is_empty(),
        "{} of 30 cancelled streams ended with an error, e.g. {:?}",
        errors.len(),
        errors.first()
    );
}

// ----- parallel limit and ids -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_do_not_count_against_the_parallel_limit() {
    let (server, probe) = start(HubConfig::new().max_parallel_invocations(1)).await;
    let mut client = server.json_client().await;

    // A stream runs while a unary call holds the only slot (Park sleeps 10 s).
    park_in_the_only_slot(&mut client, &probe).await;
    client
        .send_json(r#"{"type":4,"invocationId":"2","target":"Counter","arguments":[3]}"#)
        .await;
    for i in 0..3u32 {
        assert_eq!(expect_item::<u32>(&mut client, "2").await, i);
    }
    assert_eq!(client.recv_text().await, r#"{"type":3,"invocationId":"2"}"#);
    client.send_json(r#"{"type":5,"invocationId":"1"}"#).await;
    wait_for(&probe.park_ended, "the end of Park").await;

    // A unary call is answered while a stream is still producing.
    client
        .send_json(r#"{"type":4,"invocationId":"3","target":"Ticker","arguments":[20]}"#)
        .await;
    assert_eq!(expect_item::<u32>(&mut client, "3").await, 0);
    client
        .send_json(r#"{"type":1,"invocationId":"4","target":"Echo","arguments":["meanwhile"]}"#)
        .await;
    let echo = skip_items_to_completion(&mut client).await;
    assert_eq!(
        echo.text(),
        r#"{"type":3,"invocationId":"4","result":"meanwhile"}"#
    );
    // The stream goes on after the answer.
    let _: u32 = expect_item(&mut client, "3").await;
    let _: u32 = expect_item(&mut client, "3").await;
    client.send_json(r#"{"type":5,"invocationId":"3"}"#).await;
    let end = skip_items_to_completion(&mut client).await;
    assert_eq!(end.text(), r#"{"type":3,"invocationId":"3"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_is_rejected_and_the_running_stream_goes_on() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":4,"invocationId":"5","target":"Ticker","arguments":[20]}"#)
        .await;
    assert_eq!(expect_item::<u32>(&mut client, "5").await, 0);

    // A second stream with the same id.
    client
        .send_json(r#"{"type":4,"invocationId":"5","target":"Counter","arguments":[1]}"#)
        .await;
    let rejected = skip_items_to_completion(&mut client).await;
    assert_eq!(
        rejected.text(),
        r#"{"type":3,"invocationId":"5","error":"Invocation ID '5' is already in use."}"#
    );
    // A unary invocation with the id of the running stream.
    client
        .send_json(r#"{"type":1,"invocationId":"5","target":"Echo","arguments":["x"]}"#)
        .await;
    let rejected = skip_items_to_completion(&mut client).await;
    assert_eq!(
        rejected.text(),
        r#"{"type":3,"invocationId":"5","error":"Invocation ID '5' is already in use."}"#
    );

    // The first stream is unaffected and still ticks in order.
    let before: u32 = expect_item(&mut client, "5").await;
    let after: u32 = expect_item(&mut client, "5").await;
    assert_eq!(after, before + 1);
    client.send_json(r#"{"type":5,"invocationId":"5"}"#).await;
    let end = skip_items_to_completion(&mut client).await;
    assert_eq!(end.text(), r#"{"type":3,"invocationId":"5"}"#);
    client.expect_silence(Duration::from_millis(100)).await;
}

// ----- upload streams ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_upload_stream_id_is_rejected_and_the_first_upload_goes_on() {
    // Before, the second invocation silently took the stream id over: the first completed with a
    // truncated sum and the second waited.
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["q"]}"#,
        )
        .await;
    client
        .send_json(r#"{"type":2,"invocationId":"q","item":1}"#)
        .await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"2","target":"Sum","arguments":[],"streamIds":["q"]}"#,
        )
        .await;
    let rejected = client.recv_text().await;
    assert_eq!(
        rejected,
        r#"{"type":3,"invocationId":"2","error":"Invocation ID 'q' is already in use."}"#
    );
    // One invocation naming the same stream twice is refused too.
    client
        .send_json(
            r#"{"type":1,"invocationId":"3","target":"Pair","arguments":[],"streamIds":["r","r"]}"#,
        )
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"3","error":"Invocation ID 'r' is already in use."}"#
    );
    // The first upload still gets every item.
    client
        .send_json(r#"{"type":2,"invocationId":"q","item":2}"#)
        .await;
    client.send_json(r#"{"type":3,"invocationId":"q"}"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":3}"#
    );
    // The id is free again once its stream ended.
    client
        .send_json(
            r#"{"type":1,"invocationId":"4","target":"Sum","arguments":[],"streamIds":["q"]}"#,
        )
        .await;
    client
        .send_json(r#"{"type":2,"invocationId":"q","item":5}"#)
        .await;
    client.send_json(r#"{"type":3,"invocationId":"q"}"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"4","result":5}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_items_reach_the_method_in_json() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["2"]}"#,
        )
        .await;
    // More items than the buffer holds: the method reads as they come.
    for _ in 0..25 {
        client
            .send_json(r#"{"type":2,"invocationId":"2","item":5}"#)
            .await;
    }
    client.send_json(r#"{"type":3,"invocationId":"2"}"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":125}"#
    );

    // As the JS client writes it (type last), all in one frame.
    client
        .send_text(concat!(
            r#"{"target":"Sum","arguments":[],"invocationId":"3","streamIds":["4"],"type":1}"#,
            "\u{1e}",
            r#"{"invocationId":"4","item":1,"type":2}"#,
            "\u{1e}",
            r#"{"invocationId":"4","item":2,"type":2}"#,
            "\u{1e}",
            r#"{"invocationId":"4","type":3}"#,
            "\u{1e}",
        ))
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"3","result":3}"#
    );
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_items_reach_the_method_in_msgpack() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.client(Protocol::MessagePack).await;
    // [1, {}, "1", "Sum", [], ["2"]], then [2, {}, "2", 5] x3, then [3, {}, "2", 2] (JS's end).
    let mut frames = msgpack_frame(&[
        0x96, 0x01, 0x80, 0xa1, b'1', 0xa3, b'S', b'u', b'm', 0x90, 0x91, 0xa1, b'2',
    ]);
    for _ in 0..3 {
        frames.extend(msgpack_frame(&[0x94, 0x02, 0x80, 0xa1, b'2', 0x05]));
    }
    frames.extend(msgpack_frame(&[0x94, 0x03, 0x80, 0xa1, b'2', 0x02]));
    client.send_binary(&frames).await;
    let received = client.recv_skip_pings().await;
    // [3, {}, "1", 3, 15]
    assert_eq!(
        &received.raw[..],
        &[0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0x0f]
    );

    // An error end: [3, {}, "4", 1, "boom"].
    let mut frames = msgpack_frame(&[
        0x96, 0x01, 0x80, 0xa1, b'3', 0xa3, b'S', b'u', b'm', 0x90, 0x91, 0xa1, b'4',
    ]);
    frames.extend(msgpack_frame(&[
        0x95, 0x03, 0x80, 0xa1, b'4', 0x01, 0xa4, b'b', b'o', b'o', b'm',
    ]));
    client.send_binary(&frames).await;
    let received = client.recv_skip_pings().await;
    let HubMessage::Completion(completion) = &received.message else {
        panic!("expected a Completion, got {:?}", received.message);
    };
    assert_eq!(&*completion.invocation_id, "3");
    assert_eq!(
        error(completion),
        "An unexpected error occurred invoking 'Sum' on the server. HubException: boom"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_on_an_upload_fails_the_method() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["2"]}"#,
        )
        .await;
    client
        .send_json(r#"{"type":2,"invocationId":"2","item":1}"#)
        .await;
    client
        .send_json(r#"{"type":3,"invocationId":"2","error":"boom"}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking 'Sum' on the server. HubException: boom"}"#
    );

    // An item of the wrong type is an error item too.
    client
        .send_json(
            r#"{"type":1,"invocationId":"3","target":"Sum","arguments":[],"streamIds":["4"]}"#,
        )
        .await;
    client
        .send_json(r#"{"type":2,"invocationId":"4","item":"five"}"#)
        .await;
    client.send_json(r#"{"type":3,"invocationId":"4"}"#).await;
    let received = client.recv_skip_pings().await;
    let HubMessage::Completion(completion) = &received.message else {
        panic!("expected a Completion, got {:?}", received.message);
    };
    assert!(
        error(completion).starts_with(
            "An unexpected error occurred invoking 'Sum' on the server. HubException: an upload stream item has the wrong type"
        ),
        "{}",
        received.text()
    );
    client.echo_works("still usable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_on_a_full_upload_buffer_still_fails_the_method() {
    let (server, probe) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"SlowSum","arguments":[],"streamIds":["2"]}"#,
        )
        .await;
    wait_for(&probe.slow_started, "SlowSum's start").await;
    // Exactly the buffer's capacity (10), unread, then the client's failure.
    for i in 0..10 {
        client
            .send_json(&format!(r#"{{"type":2,"invocationId":"2","item":{i}}}"#))
            .await;
    }
    client
        .send_json(r#"{"type":3,"invocationId":"2","error":"boom"}"#)
        .await;
    // Streams start as soon as the reader gets to them: once Probe runs, the reader has handled
    // the error Completion, all before the method reads anything.
    client
        .send_json(r#"{"type":4,"invocationId":"p","target":"Probe","arguments":[]}"#)
        .await;
    wait_for(&probe.probe_started, "the Probe stream's start").await;
    assert_eq!(probe.slow_read.load(Ordering::SeqCst), 0);
    probe.release_slow.cancel();
    let mut sum_completion = None;
    while sum_completion.is_none() {
        let received = client.recv_skip_pings().await;
        if let HubMessage::Completion(completion) = &received.message {
            if &*completion.invocation_id == "1" {
                sum_completion = Some(received.text().to_owned());
            }
        }
    }
    assert_eq!(
        sum_completion.unwrap(),
        r#"{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking 'SlowSum' on the server. HubException: boom"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_uploads_bind_in_the_order_of_stream_ids() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    // The first id feeds the first parameter (numbers) whatever the ids sort as, and whatever
    // stream the items come on first.
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"Pair","arguments":[],"streamIds":["9","3"]}"#,
        )
        .await;
    for record in [
        r#"{"type":2,"invocationId":"3","item":"x"}"#,
        r#"{"type":2,"invocationId":"3","item":"y"}"#,
        r#"{"type":2,"invocationId":"9","item":1}"#,
        r#"{"type":3,"invocationId":"3"}"#,
        r#"{"type":2,"invocationId":"9","item":2}"#,
        r#"{"type":3,"invocationId":"9"}"#,
    ] {
        client.send_json(record).await;
    }
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":[[1,2],["x","y"]]}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_feeds_a_stream_invocation() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(
            r#"{"type":4,"invocationId":"1","target":"Double","arguments":[],"streamIds":["2"]}"#,
        )
        .await;
    // Item in, item out: the stream is not collected first.
    client
        .send_json(r#"{"type":2,"invocationId":"2","item":1}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":2,"invocationId":"1","item":2}"#
    );
    client
        .send_json(r#"{"type":2,"invocationId":"2","item":21}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":2,"invocationId":"1","item":42}"#
    );
    client.send_json(r#"{"type":3,"invocationId":"2"}"#).await;
    assert_eq!(client.recv_text().await, r#"{"type":3,"invocationId":"1"}"#);
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_feeds_a_non_blocking_invocation_which_gets_no_completion() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"target":"SumToCaller","arguments":[],"streamIds":["2"]}"#)
        .await;
    for n in 1..=3 {
        client
            .send_json(&format!(r#"{{"type":2,"invocationId":"2","item":{n}}}"#))
            .await;
    }
    client.send_json(r#"{"type":3,"invocationId":"2"}"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":1,"target":"Total","arguments":[6]}"#
    );
    // No Completion: the next message answers a later call.
    client
        .send_json(r#"{"type":1,"invocationId":"3","target":"Echo","arguments":["after"]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"3","result":"after"}"#
    );
    client.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_and_ends_of_unknown_upload_ids_are_ignored() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":2,"invocationId":"nope","item":1}"#)
        .await;
    client
        .send_json(r#"{"type":3,"invocationId":"nope"}"#)
        .await;
    client
        .send_json(r#"{"type":3,"invocationId":"nope","error":"x"}"#)
        .await;
    client.expect_silence(Duration::from_millis(100)).await;
    client.echo_works("still usable").await;

    // During an upload, items for another id do not reach it; items after its end are dropped.
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["2"]}"#,
        )
        .await;
    for record in [
        r#"{"type":2,"invocationId":"2","item":1}"#,
        r#"{"type":2,"invocationId":"3","item":100}"#,
        r#"{"type":2,"invocationId":"2","item":2}"#,
        r#"{"type":3,"invocationId":"2"}"#,
        r#"{"type":2,"invocationId":"2","item":1000}"#,
    ] {
        client.send_json(record).await;
    }
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":3}"#
    );
    client.expect_silence(Duration::from_millis(100)).await;
    client.echo_works("still usable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_count_mismatch_is_an_error() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"Sum","arguments":[]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking 'Sum' on the server. HubException: Client sent 0 stream(s), Hub method expects 1."}"#
    );
    client
        .send_json(
            r#"{"type":1,"invocationId":"2","target":"Sum","arguments":[],"streamIds":["a","b"]}"#,
        )
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"2","error":"An unexpected error occurred invoking 'Sum' on the server. HubException: Client sent 2 stream(s), Hub method expects 1."}"#
    );
    client
        .send_json(
            r#"{"type":1,"invocationId":"3","target":"Echo","arguments":["x"],"streamIds":["c"]}"#,
        )
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"3","error":"An unexpected error occurred invoking 'Echo' on the server. HubException: Client sent 1 stream(s), Hub method expects 0."}"#
    );
    client
        .send_json(r#"{"type":4,"invocationId":"4","target":"Double","arguments":[]}"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"4","error":"An unexpected error occurred invoking 'Double' on the server. HubException: Client sent 0 stream(s), Hub method expects 1."}"#
    );
    // The client goes on with items for the streams it announced: they are ignored.
    client
        .send_json(r#"{"type":2,"invocationId":"a","item":1}"#)
        .await;
    client.send_json(r#"{"type":3,"invocationId":"a"}"#).await;
    client.expect_silence(Duration::from_millis(100)).await;
    client.echo_works("still usable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_reader_bounds_the_buffer_and_blocks_only_its_connection() {
    let (server, probe) = start(HubConfig::new()).await;
    let mut bystander = server.json_client().await;
    let mut flooder = server.json_client().await;
    flooder
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"SlowSum","arguments":[],"streamIds":["2"]}"#,
        )
        .await;
    wait_for(&probe.slow_started, "SlowSum's start").await;
    // 1000 items in 10 frames, the end, then a stream the reader starts as soon as it gets to it.
    for chunk in 0..10 {
        let mut frame = String::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            frame.push_str(&format!(
                "{{\"type\":2,\"invocationId\":\"2\",\"item\":{i}}}\u{1e}"
            ));
        }
        flooder.send_text(&frame).await;
    }
    flooder.send_json(r#"{"type":3,"invocationId":"2"}"#).await;
    flooder
        .send_json(r#"{"type":4,"invocationId":"p","target":"Probe","arguments":[]}"#)
        .await;

    // While the method does not read, the reader is stuck at the full buffer: it never reaches
    // the Probe stream (had it buffered all 1000 items, Probe would start at once).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !probe.probe_started.is_cancelled(),
        "the server read past 1000 unread upload items: the buffer is not bounded"
    );
    assert_eq!(probe.slow_read.load(Ordering::SeqCst), 0);
    // Only the flooding connection waits.
    bystander.echo_works("not blocked").await;
    flooder.expect_silence(Duration::from_millis(50)).await;

    probe.release_slow.cancel();
    let mut items = None;
    let mut probe_item = false;
    let mut probe_end = false;
    while items.is_none() || !probe_item || !probe_end {
        let received = flooder.recv_skip_pings().await;
        match &received.message {
            HubMessage::StreamItem(item) if &*item.invocation_id == "p" => {
                assert_eq!(
                    received.text(),
                    r#"{"type":2,"invocationId":"p","item":"probe"}"#
                );
                probe_item = true;
            }
            HubMessage::Completion(completion) if &*completion.invocation_id == "p" => {
                assert!(probe_item, "the Probe stream ended before its item");
                probe_end = true;
            }
            HubMessage::Completion(completion) if &*completion.invocation_id == "1" => {
                items = Some(common::result::<Vec<i64>>(completion));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(items.unwrap(), (0..1000).collect::<Vec<i64>>());
    assert_eq!(probe.slow_read.load(Ordering::SeqCst), 1000);
    flooder.echo_works("unblocked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_methods_do_not_count_against_the_parallel_limit() {
    let (server, _) = start(HubConfig::new().max_parallel_invocations(1)).await;
    let mut client = server.json_client().await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["a"]}"#,
        )
        .await;
    client
        .send_json(r#"{"type":2,"invocationId":"a","item":1}"#)
        .await;
    // The upload is still open: Echo must not wait for it.
    client
        .send_json(r#"{"type":1,"invocationId":"2","target":"Echo","arguments":["meanwhile"]}"#)
        .await;
    let echo = client.try_recv_within(Duration::from_secs(1)).await;
    assert_eq!(
        echo.as_ref().map(common::Received::text),
        Some(r#"{"type":3,"invocationId":"2","result":"meanwhile"}"#),
        "Echo waited for the open upload call"
    );
    client.send_json(r#"{"type":3,"invocationId":"a"}"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":1}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_upload_calls_do_not_deadlock_with_one_parallel_invocation() {
    let (server, _) = start(HubConfig::new().max_parallel_invocations(1)).await;
    let mut client = server.json_client().await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["a"]}"#,
        )
        .await;
    client
        .send_json(
            r#"{"type":1,"invocationId":"2","target":"Sum","arguments":[],"streamIds":["b"]}"#,
        )
        .await;
    // What a JS client does with two Subjects: items for both, in any order.
    for _ in 0..15 {
        client
            .send_json(r#"{"type":2,"invocationId":"b","item":1}"#)
            .await;
    }
    client.send_json(r#"{"type":3,"invocationId":"b"}"#).await;
    client
        .send_json(r#"{"type":2,"invocationId":"a","item":100}"#)
        .await;
    client.send_json(r#"{"type":3,"invocationId":"a"}"#).await;
    let mut answers = Vec::new();
    for _ in 0..2 {
        match client.try_recv_within(Duration::from_secs(2)).await {
            Some(received) => answers.push(received.text().to_owned()),
            None => break,
        }
    }
    answers.sort();
    assert_eq!(
        answers,
        [
            r#"{"type":3,"invocationId":"1","result":100}"#,
            r#"{"type":3,"invocationId":"2","result":15}"#
        ],
        "the connection is deadlocked"
    );
    // And the connection still answers.
    client.echo_works("alive").await;
}

// ----- the end of a connection ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_connection_cancels_its_streams_and_invocations() {
    let (server, probe) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":4,"invocationId":"1","target":"Ticker","arguments":[10]}"#)
        .await;
    assert_eq!(expect_item::<u32>(&mut client, "1").await, 0);
    client
        .send_json(r#"{"type":1,"invocationId":"2","target":"Park","arguments":[]}"#)
        .await;
    wait_for(&probe.park_started, "Park's start").await;
    server.wait_for_connection_count(1).await;
    assert!(!probe.ticker_cancelled.is_cancelled());
    assert!(!probe.park_cancelled.is_cancelled());

    // Drop the socket without a Close message or close frame.
    drop(client);
    wait_for(&probe.ticker_cancelled, "the stream's cancellation").await;
    wait_for(&probe.park_cancelled, "Park's cancellation").await;
    wait_for(&probe.park_ended, "the end of Park's future").await;
    server.wait_for_connection_count(0).await;
}
