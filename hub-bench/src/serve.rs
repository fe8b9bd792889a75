//! The benchmark targets we build ourselves: `hub` (our server with the benchmark hub; with
//! `--redis URL` on the Redis backplane, one node of `hub-redis`; with `--token-key SECRET` as
//! well, one node of `hub-lb` / `hub-lb-sticky`, behind nginx without sticky sessions) and
//! `ref-ws` (a raw tokio-tungstenite echo, the physical limit).
//!
//! Both WebSocket targets run on the same runtime shape ([`runtime`]), the same
//! tokio-tungstenite version and `WebSocketConfig` buffer settings as the hub's WebSocket
//! transport (the hub's default read buffer, [`hub_server::DEFAULT_WEBSOCKET_READ_BUFFER_SIZE`]), `TCP_NODELAY` on, and the workspace release profile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hub_redis::{RedisBackplane, RedisConfig};
use hub_server::observability::PrometheusMetrics;
use hub_server::{Authorization, Context, HubConfig, HubEndpoint, HubError, HubMethods, HubServer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The runtime every Rust target runs on: tokio's multi-threaded scheduler with one worker, since
/// each target is pinned to one core.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
}

/// Runs target `name` on `port` until killed; `redis` (a URL, `hub` only) puts the hub on the
/// Redis backplane (`hub-redis`, with a random node id), as the cross-node scenario's
/// `hub-redis` target does; `token_key` (`hub` only) signs its connection tokens with that
/// secret ([`hub_server::HubServerBuilder::connection_token_key`], at least 32 bytes), so that
/// every node given the same one, on the same Redis, serves any request of any connection
/// (`hub-lb`: no sticky sessions).
pub(crate) fn serve(
    name: &str,
    port: u16,
    redis: Option<String>,
    token_key: Option<String>,
) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async move {
        let address = ("127.0.0.1", port);
        if redis.is_some() && name != "hub" {
            bail!("--redis is for the hub only");
        }
        if token_key.is_some() && name != "hub" {
            bail!("--token-key is for the hub only");
        }
        match name {
            "hub" => serve_hub(address, redis, token_key, false).await,
            "hub-metrics" => serve_hub(address, None, None, true).await,
            "ref-ws" => serve_ref_ws(TcpListener::bind(address).await?).await,
            "ref-http" => crate::refhttp::serve(TcpListener::bind(address).await?).await,
            other => {
                bail!("unknown target `{other}`; expected hub, hub-metrics, ref-ws or ref-http")
            }
        }
    })
}

/// The benchmark hub: `Echo`, `JoinGroup`, `SendToGroup` → `Recv(seq, text)` to the group; on
/// the Redis at `redis` when given, its connection tokens signed with `token_key` when given;
/// with `metrics`, the Prometheus recorder installed and served at `/metrics`, and a thread
/// that scrapes it every second (as a Prometheus server would, more often).
async fn serve_hub(
    address: (&str, u16),
    redis: Option<String>,
    token_key: Option<String>,
    metrics: bool,
) -> Result<()> {
    let prometheus = if metrics {
        let recorder = PrometheusMetrics::install()?;
        let scraper = recorder.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            std::hint::black_box(scraper.render());
        });
        Some(recorder)
    } else {
        None
    };
    let hub = HubMethods::<Context>::new()
        .method("Echo", |_, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .method("JoinGroup", |cx: Context, (group,): (String,)| async move {
            cx.groups().add(cx.connection_id(), &group).await?;
            Ok::<_, HubError>(())
        })
        .method(
            "SendToGroup",
            |cx: Context, (group, seq, text): (String, u64, String)| async move {
                cx.clients().group(group).send("Recv", (seq, &text)).await?;
                Ok::<_, HubError>(())
            },
        );
    let mut endpoint = match redis {
        Some(url) => {
            let backplane = RedisBackplane::connect(RedisConfig::new(url.as_str()))
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?;
            HubEndpoint::new(hub).lifetime_manager(backplane.manager())
        }
        None => HubEndpoint::new(hub),
    };
    // An experiment knob, off by default (the hub runs on the default `HubConfig`).
    if let Some(count) = std::env::var("HUB_MAX_PARALLEL_INVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        endpoint = endpoint.config(HubConfig::default().max_parallel_invocations(count));
    }
    let mut builder = HubServer::builder();
    if let Some(secret) = token_key {
        builder = builder.connection_token_key(secret);
    }
    if let Some(recorder) = prometheus {
        builder = builder.metrics_endpoint("/metrics", recorder, Authorization::anyone());
    }
    let server = builder
        .endpoint("/hub", endpoint)
        .bind(address)
        .await
        .context("binding the hub")?;
    server.serve().await?;
    Ok(())
}

/// Connections that sent `J`: each has a bounded queue drained by its own task, like the hub's.
type Registry = Arc<Mutex<Vec<(u64, mpsc::Sender<Message>)>>>;

/// `ref-ws`: echoes every data frame verbatim; a frame starting with `J` joins the broadcast set
/// (and is echoed); a frame starting with `B` has its remainder written, as one pre-encoded
/// frame, to every joined connection.
async fn serve_ref_ws(listener: TcpListener) -> Result<()> {
    let registry: Registry = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let registry = registry.clone();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = ref_ws_connection(stream, id, &registry).await;
            if let Ok(mut registry) = registry.lock() {
                registry.retain(|(other, _)| *other != id);
            }
        });
    }
}

async fn ref_ws_connection(stream: TcpStream, id: u64, registry: &Registry) -> Result<()> {
    let ws = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config())).await?;
    // Reader and writer are separate, as in the hub: a broadcast wakes only the writer, and the
    // reader only reads when there is something to read.
    let (sink, mut source) = ws.split();
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    let writer_sink = sink.clone();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let mut sink = writer_sink.lock().await;
            sink.feed(frame).await?;
            while let Ok(frame) = rx.try_recv() {
                sink.feed(frame).await?;
            }
            sink.flush().await?;
        }
        Ok::<_, anyhow::Error>(())
    });
    let result = async {
        while let Some(message) = source.next().await {
            let message = message?;
            let (data, text) = match &message {
                Message::Text(text) => (Bytes::from(text.clone()), true),
                Message::Binary(data) => (data.clone(), false),
                Message::Close(_) => break,
                _ => continue,
            };
            match data.first() {
                Some(b'J') => {
                    if let Ok(mut registry) = registry.lock() {
                        registry.push((id, tx.clone()));
                    }
                    sink.lock().await.send(message).await?;
                }
                Some(b'B') => {
                    let frame = data.slice(1..);
                    let frame = if text {
                        Message::Text(Utf8Bytes::try_from(frame)?)
                    } else {
                        Message::Binary(frame)
                    };
                    if let Ok(registry) = registry.lock() {
                        for (_, queue) in registry.iter() {
                            let _ = queue.try_send(frame.clone());
                        }
                    }
                }
                _ => sink.lock().await.send(message).await?,
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    writer.abort();
    result
}

/// The hub's WebSocket settings (its default read buffer, tungstenite's defaults otherwise),
/// unless `REF_WS_READ_BUFFER` (bytes) overrides the read buffer size: an experiment knob.
fn ws_config() -> WebSocketConfig {
    let bytes = std::env::var("REF_WS_READ_BUFFER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(hub_server::DEFAULT_WEBSOCKET_READ_BUFFER_SIZE);
    WebSocketConfig::default().read_buffer_size(bytes)
}
