//! The conformance hub: every server feature behind a method, for the real-client tests
//! (`tests/node/conformance/`). It prints `listening on <port>` once ready.
//!
//! Settings come from the environment so tests can shorten timers:
//! `PORT` (0), `KEEP_ALIVE_MS`, `CLIENT_TIMEOUT_MS`, `HANDSHAKE_TIMEOUT_MS`,
//! `DISCONNECT_TIMEOUT_MS`, `SHUTDOWN_TIMEOUT_MS`, `MAX_MESSAGE_SIZE`, `OUTBOUND_QUEUE`,
//! `POLL_TIMEOUT_MS` (long polling).
//!
//! Hubs: `/hub` (default errors) and `/detailed` (detailed errors), offering every transport, and
//! `/no-ws` (the `/hub` methods over Server-Sent Events and long polling only). A bearer token
//! (header or `access_token`) becomes the user id; the token `reject` gets 401. Every hub allows
//! cross-origin requests from [`CORS_ORIGIN`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use hub_server::{
    Context, CorsConfig, HubConfig, HubEndpoint, HubError, HubMethods, HubServer, Principal,
    RequestInfo, TransportType, Unauthorized, UploadStream,
};
use serde_json::Value;

/// The browser origin the hubs accept cross-origin requests from.
const CORS_ORIGIN: &str = "http://allowed.test";

/// What the on-disconnected hook saw, for the tests to read back.
#[derive(Default)]
struct Log {
    disconnections: Vec<(String, Option<String>)>,
}

fn hub(
    log: Arc<Mutex<Log>>,
    shutdown: Arc<Mutex<Option<hub_server::ShutdownHandle>>>,
) -> HubMethods<Context> {
    let disconnect_log = log.clone();
    HubMethods::new()
        .method("Echo", |_, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .method("EchoValue", |_, (value,): (Value,)| async move {
            Ok::<_, HubError>(value)
        })
        .method("Add", |_, (a, b): (i64, i64)| async move {
            Ok::<_, HubError>(a + b)
        })
        .method("Void", |_, (): ()| async { Ok::<_, HubError>(()) })
        .method("Throw", |_, (): ()| async {
            Err::<(), _>(HubError::from(std::io::Error::other(
                "the database is down",
            )))
        })
        .method("ThrowHub", |_, (message,): (String,)| async move {
            Err::<(), _>(HubError::new(message))
        })
        .method("ConnectionId", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(cx.connection_id().to_owned())
        })
        .method("UserId", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(cx.user_id().map(str::to_owned))
        })
        .method("Header", |cx: Context, (name,): (String,)| async move {
            Ok::<_, HubError>(
                cx.request()
                    .headers()
                    .get(&name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            )
        })
        .method("Query", |cx: Context, (name,): (String,)| async move {
            Ok::<_, HubError>(cx.request().query(&name))
        })
        .method("Transport", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(format!("{:?}", cx.transport()))
        })
        .method("Sleep", |cx: Context, (ms,): (u64,)| async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(ms),
                () = cx.cancellation().cancelled() => Err(HubError::new("cancelled")),
            }
        })
        .method("SetState", |cx: Context, (value,): (String,)| async move {
            cx.insert_state(value);
            Ok::<_, HubError>(())
        })
        .method("GetState", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(cx.state::<String>())
        })
        .method("JoinGroup", |cx: Context, (group,): (String,)| async move {
            cx.groups().add(cx.connection_id(), &group).await;
            Ok::<_, HubError>(())
        })
        .method(
            "LeaveGroup",
            |cx: Context, (group,): (String,)| async move {
                cx.groups().remove(cx.connection_id(), &group).await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "GroupMembers",
            |cx: Context, (group,): (String,)| async move {
                Ok::<_, HubError>(cx.groups().members(&group).await)
            },
        )
        .method("MyGroups", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(cx.groups().of(cx.connection_id()).await)
        })
        .method("ConnectionCount", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(cx.hub().connection_count().await)
        })
        .method(
            "UserConnections",
            |cx: Context, (user,): (String,)| async move {
                Ok::<_, HubError>(cx.hub().user_connections(&user).await)
            },
        )
        // Pushes: every target calls the client method `Receive` with (label, text).
        .method(
            "SendToCaller",
            |cx: Context, (text,): (String,)| async move {
                cx.clients()
                    .caller()
                    .send("Receive", ("caller", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToOthers",
            |cx: Context, (text,): (String,)| async move {
                cx.clients()
                    .others()
                    .send("Receive", ("others", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "PushToCaller",
            |cx: Context, (count, delay_ms): (u32, u64)| async move {
                // `Item(i)` to the caller for i in 0..count, `delay_ms` apart (stateful reconnect).
                for i in 0..count {
                    cx.clients().caller().send("Item", (i,)).await;
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                Ok::<_, HubError>(count)
            },
        )
        .method("SendToAll", |cx: Context, (text,): (String,)| async move {
            cx.clients().all().send("Receive", ("all", &text)).await;
            Ok::<_, HubError>(())
        })
        .method(
            "SendToAllExcept",
            |cx: Context, (except, text): (Vec<String>, String)| async move {
                cx.clients()
                    .all_except(except)
                    .send("Receive", ("allExcept", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToConnection",
            |cx: Context, (id, text): (String, String)| async move {
                cx.clients()
                    .client(id)
                    .send("Receive", ("connection", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToConnections",
            |cx: Context, (ids, text): (Vec<String>, String)| async move {
                cx.clients()
                    .clients(ids)
                    .send("Receive", ("connections", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToGroup",
            |cx: Context, (group, text): (String, String)| async move {
                cx.clients()
                    .group(group)
                    .send("Receive", ("group", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToGroups",
            |cx: Context, (groups, text): (Vec<String>, String)| async move {
                cx.clients()
                    .groups(groups)
                    .send("Receive", ("groups", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToGroupExcept",
            |cx: Context, (group, except, text): (String, Vec<String>, String)| async move {
                cx.clients()
                    .group_except(group, except)
                    .send("Receive", ("groupExcept", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToOthersInGroup",
            |cx: Context, (group, text): (String, String)| async move {
                cx.clients()
                    .others_in_group(group)
                    .send("Receive", ("othersInGroup", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToUser",
            |cx: Context, (user, text): (String, String)| async move {
                cx.clients()
                    .user(user)
                    .send("Receive", ("user", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        .method(
            "SendToUsers",
            |cx: Context, (users, text): (Vec<String>, String)| async move {
                cx.clients()
                    .users(users)
                    .send("Receive", ("users", &text))
                    .await;
                Ok::<_, HubError>(())
            },
        )
        // Pushes from outside a hub method, through the hub context, after a delay.
        .method(
            "SendLater",
            |cx: Context, (ms, text): (u64, String)| async move {
                let hub = cx.hub().clone();
                let id = cx.connection_id().to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    hub.clients()
                        .client(id)
                        .send("Receive", ("later", &text))
                        .await;
                });
                Ok::<_, HubError>(())
            },
        )
        // Server-to-client streams.
        .stream("Counter", |_, (count, delay_ms): (u32, u64)| async move {
            Ok::<_, HubError>(ticks(count, delay_ms))
        })
        .stream("FailingStream", |_, (after,): (u32,)| async move {
            let items = ticks(after, 0).chain(futures_util::stream::once(async {
                Err(HubError::new("the stream broke"))
            }));
            Ok::<_, HubError>(items)
        })
        .stream("Ticker", |cx: Context, (delay_ms,): (u64,)| async move {
            // Endless until cancelled; records the cancellation for the tests.
            let cancellation = cx.cancellation().clone();
            let id = cx.connection_id().to_owned();
            let hub = cx.hub().clone();
            tokio::spawn(async move {
                cancellation.cancelled().await;
                hub.clients().client(id).send("TickerCancelled", ()).await;
            });
            Ok::<_, HubError>(ticks(u32::MAX, delay_ms))
        })
        // Client-to-server streams.
        .method_with_uploads(
            "Sum",
            |_, (): (), (numbers,): (UploadStream<i64>,)| async move {
                let mut numbers = numbers;
                let mut total = 0i64;
                while let Some(number) = numbers.next().await {
                    total += number?;
                }
                Ok::<_, HubError>(total)
            },
        )
        .stream_with_uploads(
            "Double",
            |_, (): (), (numbers,): (UploadStream<i64>,)| async move {
                Ok::<_, HubError>(numbers.map(|number| number.map(|n| n * 2)))
            },
        )
        // Client results: the server asks the caller and returns what it answered.
        .method(
            "AskCaller",
            |cx: Context, (question,): (String,)| async move {
                cx.clients()
                    .caller()
                    .invoke::<Value, _>("GetAnswer", (question,))
                    .await
            },
        )
        .method(
            "AskClient",
            |cx: Context, (id, question): (String, String)| async move {
                cx.clients()
                    .client(id)
                    .invoke::<Value, _>("GetAnswer", (question,))
                    .await
            },
        )
        .method("Abort", |cx: Context, (): ()| async move {
            cx.abort();
            Ok::<_, HubError>(())
        })
        .method("Kick", |cx: Context, (id,): (String,)| async move {
            Ok::<_, HubError>(cx.hub().abort(&id))
        })
        .method("Disconnections", move |_, (): ()| {
            let log = log.clone();
            async move {
                let log = log.lock().map_err(|_| HubError::new("log poisoned"))?;
                Ok::<_, HubError>(log.disconnections.clone())
            }
        })
        .method("Shutdown", move |_, (): ()| {
            let shutdown = shutdown.clone();
            async move {
                if let Some(handle) = shutdown.lock().ok().and_then(|h| h.clone()) {
                    handle.shutdown();
                }
                Ok::<_, HubError>(())
            }
        })
        .on_disconnected(move |cx: Context, error: Option<String>| {
            let log = disconnect_log.clone();
            async move {
                if let Ok(mut log) = log.lock() {
                    log.disconnections
                        .push((cx.connection_id().to_owned(), error));
                }
            }
        })
}

/// `count` items `0, 1, …`, one every `delay_ms`.
fn ticks(
    count: u32,
    delay_ms: u64,
) -> impl futures_util::Stream<Item = Result<u32, HubError>> + Send {
    futures_util::stream::unfold(0u32, move |i| async move {
        if i >= count {
            return None;
        }
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        Some((Ok(i), i + 1))
    })
}

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

fn config() -> HubConfig {
    let mut config = HubConfig::new().cors(CorsConfig::allow_origins([CORS_ORIGIN]));
    if let Some(d) = env_ms("KEEP_ALIVE_MS") {
        config = config.keep_alive_interval(d);
    }
    if let Some(d) = env_ms("CLIENT_TIMEOUT_MS") {
        config = config.client_timeout(d);
    }
    if let Some(d) = env_ms("HANDSHAKE_TIMEOUT_MS") {
        config = config.handshake_timeout(d);
    }
    if let Some(d) = env_ms("DISCONNECT_TIMEOUT_MS") {
        config = config.disconnect_timeout(d);
    }
    if let Some(d) = env_ms("SHUTDOWN_TIMEOUT_MS") {
        config = config.shutdown_timeout(d);
    }
    if let Some(d) = env_ms("POLL_TIMEOUT_MS") {
        config = config.long_polling_timeout(d);
    }
    if let Some(size) = std::env::var("MAX_MESSAGE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config = config.max_message_size(size);
    }
    if let Some(queue) = std::env::var("OUTBOUND_QUEUE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config = config.outbound_queue_capacity(queue);
    }
    config
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let log = Arc::new(Mutex::new(Log::default()));
    let shutdown = Arc::new(Mutex::new(None));
    let config = config();
    let server = HubServer::builder()
        .authenticator(|request: &RequestInfo| {
            let result = authenticate_sync(request);
            async move { result }
        })
        .endpoint(
            "/hub",
            HubEndpoint::new(hub(log.clone(), shutdown.clone())).config(config.clone()),
        )
        .endpoint(
            "/no-ws",
            HubEndpoint::new(hub(log.clone(), shutdown.clone())).config(
                config
                    .clone()
                    .transports([TransportType::ServerSentEvents, TransportType::LongPolling]),
            ),
        )
        .endpoint(
            "/detailed",
            HubEndpoint::new(hub(log, shutdown.clone())).config(config.detailed_errors(true)),
        )
        .bind(("127.0.0.1", port))
        .await?;
    if let Ok(mut slot) = shutdown.lock() {
        *slot = Some(server.shutdown_handle());
    }
    #[allow(clippy::print_stdout)]
    {
        println!("listening on {}", server.local_addr().port());
    }
    server.serve().await
}

fn authenticate_sync(request: &RequestInfo) -> Result<Principal, Unauthorized> {
    match request.bearer_token().as_deref() {
        Some("reject") => Err(Unauthorized),
        Some(token) => Ok(Principal::user(token)),
        None => Ok(Principal::anonymous()),
    }
}
