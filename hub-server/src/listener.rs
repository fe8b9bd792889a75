//! The server's own listener: binding with a backlog that survives bursts of new connections,
//! serving each accepted connection (HTTP/1.1 with upgrades and HTTP/2; behind TLS with the
//! `tls` feature) under the graceful shutdown, and the signals that start it.

use std::io;
use std::net::SocketAddr;
#[cfg(feature = "tls")]
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};

use crate::http::HubService;

/// How many connections may wait to be accepted: what a burst of new connections (a reconnect
/// storm, a load balancer opening one per request) needs; the operating system caps it at its
/// own limit (`net.core.somaxconn`). std and tokio bind with 128, which overflows under such
/// bursts and costs the dropped clients a 1 s SYN retry.
const LISTEN_BACKLOG: u32 = 4096;

/// How long a client has to complete its TLS handshake.
#[cfg(feature = "tls")]
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the first of `address`'s addresses that works, with [`LISTEN_BACKLOG`].
pub(crate) async fn listen(address: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = None;
    for address in tokio::net::lookup_host(address).await? {
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As std's TcpListener::bind does on Unix: a restarted server rebinds at once.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket
            .bind(address)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

/// The TLS settings a connection is served with (none without the `tls` feature).
#[cfg(feature = "tls")]
pub(crate) type Tls<'a> = Option<&'a crate::tls::TlsConfig>;
/// The TLS settings a connection is served with (none without the `tls` feature).
#[cfg(not(feature = "tls"))]
pub(crate) type Tls<'a> = Option<&'a std::convert::Infallible>;

/// Serves one accepted connection in a task of its own, under `graceful`: after a TLS
/// handshake when `tls` is given.
pub(crate) fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: HubService,
    graceful: &GracefulShutdown,
    tls: Tls<'_>,
) {
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        let acceptor = tls.acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "HTTPS connection ended with an error");
            }
        });
        return;
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let connection = graceful.watch(connection.into_owned());
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%peer, %error, "HTTP connection ended with an error");
        }
    });
}

/// Resolves when the process gets SIGTERM (what Docker, Kubernetes and systemd send to stop it)
/// or SIGINT (Ctrl-C): for servers that run their own accept loop (hyper, axum's
/// `with_graceful_shutdown`) and want the same graceful stop as [`HubServer::serve`](crate::HubServer::serve).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
