//! socketioxide peer for hub-bench: `echo` (acked), `join` (acked) and `send` → `recv` to the
//! room, on the same runtime shape as our targets (multi-threaded tokio, one worker) and the
//! same hyper-util connection builder as the hub. Listens on 127.0.0.1:$PORT.
//!
//! With `REDIS_URL` set (`redis://host:port`), the namespace runs on socketioxide's Redis adapter
//! (`socketioxide-redis`, the `redis` crate driver, RESP3): processes on one Redis serve one set
//! of rooms, as in hub-bench's cross-node scenario.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;
use socketioxide_redis::drivers::redis::redis_client as redis;
use socketioxide_redis::{RedisAdapter, RedisAdapterCtr};

type BoxError = Box<dyn std::error::Error>;

/// Accepts connections for `$svc` until the listener fails (the service types of the two
/// adapters differ, hence a macro).
macro_rules! serve {
    ($listener:expr, $svc:expr) => {
        loop {
            let (stream, _) = $listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let svc = $svc.clone();
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    };
}

fn main() -> Result<(), BoxError> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let redis_url = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        match redis_url {
            None => {
                let (svc, io) = SocketIo::new_svc();
                io.ns("/", on_connect);
                serve!(listener, svc)
            }
            Some(url) => {
                // The driver needs RESP3 (push messages on the subscriber connection).
                let url = if url.contains("protocol=") {
                    url
                } else if url.contains('?') {
                    format!("{url}&protocol=resp3")
                } else {
                    format!("{url}/?protocol=resp3")
                };
                let client = redis::Client::open(url)?;
                let adapter = RedisAdapterCtr::new_with_redis(&client).await?;
                let (svc, io) = SocketIo::builder()
                    .with_adapter::<RedisAdapter<_>>(adapter)
                    .build_svc();
                io.ns("/", on_connect).await?;
                serve!(listener, svc)
            }
        }
    })
}

async fn on_connect<A: Adapter>(s: SocketRef<A>) {
    s.on("echo", async |Data::<String>(text), ack: AckSender<A>| {
        let _ = ack.send(&text);
    });
    s.on(
        "join",
        async |s: SocketRef<A>, Data::<String>(room), ack: AckSender<A>| {
            s.join(room);
            let _ = ack.send(&());
        },
    );
    s.on(
        "send",
        async |s: SocketRef<A>, Data::<(String, u64, String)>((room, seq, text))| {
            let _ = s.within(room).emit("recv", &(seq, text)).await;
        },
    );
}
