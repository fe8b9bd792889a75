//! socketioxide peer for hub-bench: `echo` (acked), `join` (acked) and `send` → `recv` to the
//! room, on the same runtime shape as our targets (multi-threaded tokio, one worker) and the
//! same hyper-util connection builder as the hub. Listens on 127.0.0.1:$PORT.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (svc, io) = SocketIo::new_svc();
        io.ns("/", async |s: SocketRef| {
            s.on("echo", async |Data::<String>(text), ack: AckSender| {
                let _ = ack.send(&text);
            });
            s.on(
                "join",
                async |s: SocketRef, Data::<String>(room), ack: AckSender| {
                    s.join(room);
                    let _ = ack.send(&());
                },
            );
            s.on(
                "send",
                async |s: SocketRef, Data::<(String, u64, String)>((room, seq, text))| {
                    let _ = s.within(room).emit("recv", &(seq, text)).await;
                },
            );
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let svc = svc.clone();
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
