//! Client results: a hub method invokes a client method and awaits its answer. The raw client
//! sees the server's Invocation (with an id) and answers with a Completion; errors, wrong types,
//! timeouts, the parallel limit, closing connections and cross-connection calls.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{result, TestServer, WsClient, TIMEOUT};
use hub_server::protocol::{HubMessage, Protocol};
use hub_server::{ClientResultError, Context, HubConfig, HubError, HubMethods};
use tokio_util::sync::CancellationToken;

// ----- the hub ----------------------------------------------------------------------------------

/// A one-shot flag: hub methods set it (`cancel()`), tests wait for it.
type Flag = CancellationToken;

#[derive(Default)]
struct Probe {
    /// A detached client call ended; its outcome and how long it took.
    detached_done: Flag,
    detached_outcome: Mutex<Option<(Result<i64, String>, Duration)>>,
    /// `AskAndHold` is awaiting its client result.
    holding: Flag,
    /// `AskAndHold`'s future ended (finished or dropped).
    hold_ended: Flag,
}

/// Sets a flag when dropped.
struct SetOnDrop(Flag);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What a method saw: `ok:<value>` or `err:<message>` (hub errors only: the client's texts).
fn describe(outcome: Result<i64, ClientResultError>) -> String {
    match outcome {
        Ok(value) => format!("ok:{value}"),
        Err(error) => {
            // What a hub method returns with `?`: the same text, for the caller.
            let hub_error = HubError::from(error.clone());
            assert_eq!(hub_error.type_name(), "HubException", "{error:?}");
            assert_eq!(hub_error.message(), error.to_string());
            format!("err:{error}")
        }
    }
}

fn hub(probe: &Arc<Probe>) -> HubMethods<Context> {
    let detached_probe = probe.clone();
    let hold_probe = probe.clone();
    HubMethods::new()
        .method("Echo", |_, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .method("ConnectionId", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(cx.connection_id().to_owned())
        })
        // Propagates the client's answer or error as its own.
        .method("AskNumber", |cx: Context, (n,): (i64,)| async move {
            Ok::<_, HubError>(
                cx.clients()
                    .caller()
                    .invoke::<i64, _>("GetNumber", (n,))
                    .await?,
            )
        })
        // Reports what it got as a string.
        .method("Ask", |cx: Context, (n,): (i64,)| async move {
            Ok::<_, HubError>(describe(
                cx.clients()
                    .caller()
                    .invoke::<i64, _>("GetNumber", (n,))
                    .await,
            ))
        })
        .method(
            "AskWithTimeout",
            |cx: Context, (n, ms): (i64, u64)| async move {
                Ok::<_, HubError>(describe(
                    cx.clients()
                        .caller()
                        .with_timeout(Duration::from_millis(ms))
                        .invoke::<i64, _>("GetNumber", (n,))
                        .await,
                ))
            },
        )
        .method(
            "AskClient",
            |cx: Context, (id, n): (String, i64)| async move {
                Ok::<_, HubError>(describe(
                    cx.clients()
                        .client(id)
                        .invoke::<i64, _>("GetNumber", (n,))
                        .await,
                ))
            },
        )
        // Starts a client call in a task of its own and returns at once.
        .method("AskDetached", move |cx: Context, (n,): (i64,)| {
            let probe = detached_probe.clone();
            async move {
                let answer = cx.clients().caller().invoke::<i64, _>("GetNumber", (n,));
                tokio::spawn(async move {
                    let started = Instant::now();
                    let outcome = answer.await.map_err(|e| e.to_string());
                    *probe.detached_outcome.lock().unwrap() = Some((outcome, started.elapsed()));
                    probe.detached_done.cancel();
                });
                Ok::<_, HubError>(())
            }
        })
        // Awaits a client result inside the method.
        .method("AskAndHold", move |cx: Context, (n,): (i64,)| {
            let probe = hold_probe.clone();
            async move {
                let _ended = SetOnDrop(probe.hold_ended.clone());
                let answer = cx.clients().caller().invoke::<i64, _>("GetNumber", (n,));
                probe.holding.cancel();
                answer.await
            }
        })
}

async fn start(config: HubConfig) -> (TestServer, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let server = TestServer::start(hub(&probe), config).await;
    (server, probe)
}

async fn wait_for(flag: &Flag, what: &str) {
    tokio::time::timeout(TIMEOUT, flag.cancelled())
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {TIMEOUT:?}"));
}

/// Reads the server's `GetNumber` Invocation: checks its JSON exactly (for JSON clients) and
/// returns its invocation id.
async fn expect_get_number(client: &mut WsClient, n: i64) -> String {
    let received = client.recv_skip_pings().await;
    let HubMessage::Invocation(invocation) = &received.message else {
        panic!(
            "expected the GetNumber Invocation, got {:?}",
            received.message
        );
    };
    assert_eq!(&*invocation.target, "GetNumber");
    assert!(invocation.stream_ids.is_empty());
    let id = invocation
        .invocation_id
        .as_deref()
        .expect("a client result call has an invocation id")
        .to_owned();
    assert!(!id.is_empty());
    if client.protocol() == Protocol::Json {
        assert_eq!(
            received.text(),
            format!(
                r#"{{"type":1,"invocationId":{},"target":"GetNumber","arguments":[{n}]}}"#,
                serde_json::to_string(&id).unwrap()
            )
        );
    }
    id
}

/// Invokes `method` with id `id` and `n`, answers its GetNumber call with the Completion
/// `answer` (JSON fields after the id), and returns the method's Completion text.
async fn ask_and_answer(client: &mut WsClient, method: &str, n: i64, answer: &str) -> String {
    client
        .send_json(&format!(
            r#"{{"type":1,"invocationId":"q","target":"{method}","arguments":[{n}]}}"#
        ))
        .await;
    let id = expect_get_number(client, n).await;
    client
        .send_json(&format!(
            r#"{{"type":3,"invocationId":{}{answer}}}"#,
            serde_json::to_string(&id).unwrap()
        ))
        .await;
    client.recv_text().await
}

// ----- round trips ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_result_round_trips_in_json() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"AskNumber","arguments":[7]}"#)
        .await;
    let id = expect_get_number(&mut client, 7).await;
    client
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{id}","result":42}}"#
        ))
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":42}"#
    );

    // The next call gets a fresh id; an answer written as the JS client does (type last).
    client
        .send_json(r#"{"type":1,"invocationId":"2","target":"AskNumber","arguments":[8]}"#)
        .await;
    let second = expect_get_number(&mut client, 8).await;
    assert_ne!(second, id);
    client
        .send_json(&format!(
            r#"{{"result":43,"invocationId":"{second}","type":3}}"#
        ))
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"2","result":43}"#
    );
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_result_round_trips_in_msgpack() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.client(Protocol::MessagePack).await;
    client.invoke("1", "AskNumber", (7,)).await;
    let received = client.recv_skip_pings().await;
    let HubMessage::Invocation(invocation) = &received.message else {
        panic!(
            "expected the GetNumber Invocation, got {:?}",
            received.message
        );
    };
    let id = invocation.invocation_id.as_deref().unwrap().to_owned();
    assert!(!id.is_empty() && id.len() < 32);
    // [1, {}, id, "GetNumber", [7], []]: 6 elements, the id present.
    let mut expected = vec![0x96, 0x01, 0x80, 0xa0 | id.len() as u8];
    expected.extend_from_slice(id.as_bytes());
    expected.push(0xa9);
    expected.extend_from_slice(b"GetNumber");
    expected.extend_from_slice(&[0x91, 0x07, 0x90]);
    assert_eq!(&received.raw[..], &expected[..]);

    // [3, {}, id, 3, 42]
    let mut answer = vec![0x95, 0x03, 0x80, 0xa0 | id.len() as u8];
    answer.extend_from_slice(id.as_bytes());
    answer.extend_from_slice(&[0x03, 0x2a]);
    let mut frame = vec![answer.len() as u8];
    frame.extend_from_slice(&answer);
    client.send_binary(&frame).await;
    let received = client.recv_skip_pings().await;
    // [3, {}, "1", 3, 42]
    assert_eq!(
        &received.raw[..],
        &[0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0x2a]
    );
}

// ----- failures ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_errors_reach_the_method() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    // The JS client's texts: a handler that threw, no handler.
    assert_eq!(
        ask_and_answer(&mut client, "Ask", 1, r#","error":"Error: bad""#).await,
        r#"{"type":3,"invocationId":"q","result":"err:Error: bad"}"#
    );
    assert_eq!(
        ask_and_answer(
            &mut client,
            "Ask",
            2,
            r#","error":"Client didn't provide a result.""#
        )
        .await,
        r#"{"type":3,"invocationId":"q","result":"err:Client didn't provide a result."}"#
    );
    // A Completion without result or error reads the same.
    assert_eq!(
        ask_and_answer(&mut client, "Ask", 3, "").await,
        r#"{"type":3,"invocationId":"q","result":"err:Client didn't provide a result."}"#
    );
    // Propagated with `?`, the client's text becomes the method's hub error.
    assert_eq!(
        ask_and_answer(&mut client, "AskNumber", 4, r#","error":"Error: bad""#).await,
        r#"{"type":3,"invocationId":"q","error":"An unexpected error occurred invoking 'AskNumber' on the server. HubException: Error: bad"}"#
    );
    client.echo_works("still usable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_of_the_wrong_type_is_an_error() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    for answer in [
        r#","result":"forty-two""#,
        r#","result":null"#,
        r#","result":{"n":42}"#,
    ] {
        let text = ask_and_answer(&mut client, "Ask", 1, answer).await;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let seen = value["result"].as_str().unwrap_or_default();
        assert!(
            seen.starts_with("err:") && seen.contains("wrong type"),
            "answer {answer}: {text}"
        );
    }
    client.echo_works("still usable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_times_out() {
    let (server, _) =
        start(HubConfig::new().client_result_timeout(Duration::from_millis(200))).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"Ask","arguments":[1]}"#)
        .await;
    let id = expect_get_number(&mut client, 1).await;
    let asked = Instant::now();
    let completion = client.recv_skip_pings().await;
    let HubMessage::Completion(completion) = &completion.message else {
        panic!(
            "expected the Completion of Ask, got {:?}",
            completion.message
        );
    };
    assert_eq!(&*completion.invocation_id, "1");
    let seen: String = result(completion);
    assert!(
        seen.starts_with("err:") && seen.contains("did not answer") && seen.contains("200ms"),
        "{seen}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );

    // A late answer is ignored.
    client
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{id}","result":42}}"#
        ))
        .await;
    client.expect_silence(Duration::from_millis(100)).await;
    client.echo_works("still usable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_call_timeout_overrides_the_hubs() {
    // The hub's timeout is the default 30 s; the call asks for 150 ms.
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"AskWithTimeout","arguments":[1,150]}"#)
        .await;
    expect_get_number(&mut client, 1).await;
    let text = client.recv_text().await;
    assert!(
        text.starts_with(r#"{"type":3,"invocationId":"1","result":"err:"#)
            && text.contains("150ms"),
        "{text}"
    );
}

// ----- concurrency ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaiting_a_client_result_does_not_deadlock_with_one_parallel_invocation() {
    let (server, _) = start(HubConfig::new().max_parallel_invocations(1)).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"AskNumber","arguments":[7]}"#)
        .await;
    let id = expect_get_number(&mut client, 7).await;
    // Before answering, another call: it waits for the slot AskNumber holds.
    client
        .send_json(r#"{"type":1,"invocationId":"9","target":"Echo","arguments":["queued"]}"#)
        .await;
    client.expect_silence(Duration::from_millis(100)).await;
    client
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{id}","result":42}}"#
        ))
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":42}"#
    );
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"9","result":"queued"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_client_results_are_matched_by_id() {
    let (server, _) = start(HubConfig::new().max_parallel_invocations(2)).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"a","target":"Ask","arguments":[1]}"#)
        .await;
    let first = expect_get_number(&mut client, 1).await;
    client
        .send_json(r#"{"type":1,"invocationId":"b","target":"Ask","arguments":[2]}"#)
        .await;
    let second = expect_get_number(&mut client, 2).await;
    assert_ne!(first, second);
    // Answered in reverse order.
    client
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{second}","result":20}}"#
        ))
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"b","result":"ok:20"}"#
    );
    client
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{first}","result":10}}"#
        ))
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"{"type":3,"invocationId":"a","result":"ok:10"}"#
    );
}

// ----- closing connections ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_client_result_fails_promptly_when_the_connection_closes() {
    let (server, probe) = start(HubConfig::new()).await;

    // A call started from a hub method but awaited in a task of its own: it gets an error.
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"AskDetached","arguments":[1]}"#)
        .await;
    // The GetNumber call and AskDetached's own Completion, in either order.
    let mut asked = false;
    let mut completed = false;
    while !asked || !completed {
        let received = client.recv_skip_pings().await;
        match &received.message {
            HubMessage::Invocation(invocation) => {
                assert_eq!(&*invocation.target, "GetNumber");
                assert!(invocation.invocation_id.is_some());
                asked = true;
            }
            HubMessage::Completion(_) => {
                assert_eq!(
                    received.text(),
                    r#"{"type":3,"invocationId":"1","result":null}"#
                );
                completed = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(client);
    wait_for(&probe.detached_done, "the end of the detached client call").await;
    let (outcome, took) = probe.detached_outcome.lock().unwrap().take().unwrap();
    let message = outcome.expect_err("the client never answered");
    assert!(message.contains("closed"), "{message}");
    assert!(took < Duration::from_secs(2), "the call took {took:?}");

    // A method awaiting the client result itself ends (it is cancelled): it does not hang.
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"AskAndHold","arguments":[1]}"#)
        .await;
    expect_get_number(&mut client, 1).await;
    wait_for(&probe.holding, "AskAndHold awaiting").await;
    drop(client);
    wait_for(&probe.hold_ended, "the end of AskAndHold").await;
    server.wait_for_connection_count(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_another_connection_fails_promptly_when_that_connection_closes() {
    let (server, _) = start(HubConfig::new()).await;
    let mut asker = server.json_client().await;
    let mut answerer = server.json_client().await;
    answerer
        .send_json(r#"{"type":1,"invocationId":"1","target":"ConnectionId","arguments":[]}"#)
        .await;
    let HubMessage::Completion(completion) = answerer.recv_skip_pings().await.message else {
        panic!("expected the connection id");
    };
    let answerer_id: String = result(&completion);
    asker
        .send_json(&format!(
            r#"{{"type":1,"invocationId":"1","target":"AskClient","arguments":["{answerer_id}",5]}}"#
        ))
        .await;
    expect_get_number(&mut answerer, 5).await;
    let dropped = Instant::now();
    drop(answerer);
    assert_eq!(
        asker.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":"err:The connection was closed before the client answered."}"#
    );
    assert!(
        dropped.elapsed() < Duration::from_secs(2),
        "{:?}",
        dropped.elapsed()
    );
}

// ----- other connections and stray Completions --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_can_ask_another_connection() {
    let (server, _) = start(HubConfig::new()).await;
    let mut asker = server.json_client().await;
    let mut answerer = server.json_client().await;
    answerer
        .send_json(r#"{"type":1,"invocationId":"1","target":"ConnectionId","arguments":[]}"#)
        .await;
    let HubMessage::Completion(completion) = answerer.recv_skip_pings().await.message else {
        panic!("expected the connection id");
    };
    let answerer_id: String = result(&completion);

    asker
        .send_json(&format!(
            r#"{{"type":1,"invocationId":"1","target":"AskClient","arguments":["{answerer_id}",5]}}"#
        ))
        .await;
    let id = expect_get_number(&mut answerer, 5).await;
    // The asker cannot answer in the answerer's place: ids belong to a connection.
    asker
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{id}","result":666}}"#
        ))
        .await;
    asker.expect_silence(Duration::from_millis(100)).await;
    answerer
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{id}","result":50}}"#
        ))
        .await;
    assert_eq!(
        asker.recv_text().await,
        r#"{"type":3,"invocationId":"1","result":"ok:50"}"#
    );
    answerer.expect_silence(Duration::from_millis(100)).await;

    // An unknown connection.
    asker
        .send_json(r#"{"type":1,"invocationId":"2","target":"AskClient","arguments":["nope",5]}"#)
        .await;
    let text = asker.recv_text().await;
    assert!(
        text.starts_with(r#"{"type":3,"invocationId":"2","result":"err:"#)
            && text.contains("does not exist"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_nobody_waits_for_is_ignored() {
    let (server, _) = start(HubConfig::new()).await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":3,"invocationId":"424242","result":1}"#)
        .await;
    client
        .send_json(r#"{"type":3,"invocationId":"0","error":"late"}"#)
        .await;
    client.send_json(r#"{"type":3,"invocationId":"0"}"#).await;
    client.expect_silence(Duration::from_millis(100)).await;
    client.echo_works("still usable").await;

    // The connection still answers a real client result call afterwards.
    assert_eq!(
        ask_and_answer(&mut client, "Ask", 1, r#","result":9"#).await,
        r#"{"type":3,"invocationId":"q","result":"ok:9"}"#
    );
}
