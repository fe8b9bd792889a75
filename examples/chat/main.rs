//! The chat example: the [`hub::Chat`] hub on `/chat` and the browser page that uses its generated
//! TypeScript client, both served from one port. It prints `chat: http://127.0.0.1:<port>/` once
//! listening.
//!
//! ```sh
//! ./examples/chat/run                 # runs this binary
//! PORT=0 cargo run -p hub-examples --bin chat              # any free port (default 5000)
//! REDIS_URL=redis://127.0.0.1:6379 PORT=5001 ./examples/chat/run   # one chat on several servers
//! CHAT_TOKEN_KEY=<32+ bytes> REDIS_URL=… PORT=5001 ./examples/chat/run   # … behind a load balancer without affinity
//! cargo run -p hub-examples --bin chat -- --emit-ts examples/chat/client   # regenerate the client
//! ```
//!
//! Without `REDIS_URL` the chat is one process, its state in memory. With it, the hub runs on the
//! Redis backplane (`hub-redis`, keys and channels under `chat:`) and keeps its rooms, history,
//! message ids and nicknames in that Redis ([`store::ChatStore::redis`]): every chat server on
//! the same Redis serves the same chat. With `CHAT_TOKEN_KEY` too (the same secret on every
//! server), a load balancer needs no affinity: any request of a connection may reach any server.
//!
//! The page (`examples/chat/static/`) is embedded in the binary, and the generated client package
//! (the committed `examples/chat/client/`, with the runtime it carries in `runtime/`) is served
//! under `/client/` as the generator writes it. An import map in the page maps `chat-client` to
//! `/client/index.js`, so the browser loads the ES modules as they are: no bundler, no npm.

pub mod hub;
pub mod store;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_redis::{RedisBackplane, RedisConfig};
use hub_server::{HubEndpoint, HubServer, HubService, ResponseBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::hub::{ChatServer, ServeChat};
use crate::store::ChatStore;

/// What the keys and channels of the chat (its store and its backplane) start with in Redis.
const REDIS_PREFIX: &str = "chat";

/// The generated TypeScript client of the chat hub (committed in `client/`, checked by the test
/// below and loaded by the page).
fn client_package() -> hub_server::codegen::TypeScriptPackage {
    hub_server::codegen::TypeScriptPackage::new("chat-client")
}

/// A file the server sends as it is.
struct Asset {
    content_type: &'static str,
    body: Bytes,
}

/// The page and the generated client package (with the runtime it carries), by URL path.
struct Assets {
    files: Vec<(String, Asset)>,
}

impl Assets {
    /// The embedded page, and the client package as the generator writes it (the committed
    /// `client/` is the same, a test checks it), under `/client/`.
    fn load() -> Result<Self, hub_server::codegen::CodegenError> {
        const JS: &str = "text/javascript; charset=utf-8";
        let embedded = |content_type, text: &'static str| Asset {
            content_type,
            body: Bytes::from_static(text.as_bytes()),
        };
        let mut files = vec![
            (
                "/".to_owned(),
                embedded(
                    "text/html; charset=utf-8",
                    include_str!("static/index.html"),
                ),
            ),
            (
                "/app.js".to_owned(),
                embedded(JS, include_str!("static/app.js")),
            ),
            (
                "/style.css".to_owned(),
                embedded("text/css; charset=utf-8", include_str!("static/style.css")),
            ),
            (
                "/favicon.svg".to_owned(),
                embedded("image/svg+xml", include_str!("static/favicon.svg")),
            ),
        ];
        for file in client_package().files()? {
            let content_type = if file.path.ends_with(".js") {
                JS
            } else if file.path.ends_with(".json") {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            files.push((
                format!("/client/{}", file.path),
                Asset {
                    content_type,
                    body: Bytes::from(file.contents),
                },
            ));
        }
        Ok(Assets { files })
    }

    fn get(&self, path: &str) -> Option<&Asset> {
        let path = if path == "/index.html" { "/" } else { path };
        self.files
            .iter()
            .find_map(|(at, asset)| (at == path).then_some(asset))
    }
}

/// Serves a static file, or hands the request to the hubs.
async fn route(
    assets: Arc<Assets>,
    hubs: HubService,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    if hubs.matches(request.uri().path()) {
        return Ok(hubs.handle(request).await);
    }
    let reply = |status: StatusCode, content_type: &str, body: Bytes| {
        let mut response = Response::new(Full::new(body).boxed());
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-cache"),
        );
        response
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"method not allowed\n"),
        ));
    }
    Ok(match assets.get(request.uri().path()) {
        Some(asset) => reply(StatusCode::OK, asset.content_type, asset.body.clone()),
        None => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("chat: {error}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves the chat until Ctrl-C or SIGTERM (or regenerates the client, with `--emit-ts`).
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    // `chat --emit-ts examples/chat/client` regenerates the typed TypeScript client.
    if client_package().run_from_args()? {
        return Ok(());
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT must be a port number, not `{port}`"))?,
        Err(_) => 5000,
    };
    let assets = Arc::new(Assets::load()?);
    // One server with its state in memory, or (REDIS_URL) one of several on a Redis.
    let (chat, store) = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let backplane =
                RedisBackplane::connect(RedisConfig::new(url.as_str()).prefix(REDIS_PREFIX))
                    .await?;
            let store = ChatStore::redis(&url, REDIS_PREFIX)
                .await
                .map_err(|error| {
                    format!("the chat's store could not connect to Redis at '{url}': {error}")
                })?;
            let described = store.describe();
            (
                HubEndpoint::new(ServeChat::new(ChatServer::new(store)))
                    .lifetime_manager(backplane.manager()),
                format!("{described}; hubs on the Redis backplane"),
            )
        }
        _ => {
            let store = ChatStore::memory();
            let described = format!("{} (set REDIS_URL to run several)", store.describe());
            (
                HubEndpoint::new(ServeChat::new(ChatServer::new(store))),
                described,
            )
        }
    };
    let mut hubs = HubServer::builder().endpoint("/chat", chat);
    if let Ok(secret) = std::env::var("CHAT_TOKEN_KEY") {
        hubs = hubs.connection_token_key(secret);
    }
    let hubs = hubs.into_service()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("chat: state {store}");
        println!("chat: http://127.0.0.1:{}/", listener.local_addr()?.port());
    }

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Ctrl-C or SIGTERM (Docker, Kubernetes, systemd): clients are told to go away, then open
    // requests get a few seconds.
    let stop = hub_server::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (assets, service) = (assets.clone(), hubs.clone());
        let handler = hyper::service::service_fn(move |request| {
            route(assets.clone(), service.clone(), request)
        });
        let connection = auto::Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(stream), handler)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
        });
    }
    // Ctrl-C: clients are told to go away, then open requests get a few seconds.
    drop(listener);
    hubs.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests;
