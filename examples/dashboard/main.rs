//! The dashboard example: the [`hub::Dashboard`] hub on `/dashboard`, `POST /api/login`, the
//! admins' stats view on `GET /stats` and the Vite + Vue page built from
//! `examples/dashboard/web`, all on one port. It prints `dashboard: http://127.0.0.1:<port>/`
//! once listening.
//!
//! ```sh
//! ./examples/dashboard/run                    # builds the page when needed, then runs this binary
//! PORT=0 cargo run -p hub-examples --bin dashboard           # any free port (default 5001)
//! cargo run -p hub-examples --bin dashboard -- --emit-ts examples/dashboard/client   # the client
//! ```
//!
//! Environment: `PORT` (5001; 0 = any free port), `DASHBOARD_DIST` (the built page, default
//! `examples/dashboard/web/dist`), `DASHBOARD_SECRET` (the token key: set it and sign-ins
//! survive a restart; see [`auth`]). Ctrl-C or SIGTERM stops it gracefully: clients are told to
//! reconnect, open requests get a few seconds.

pub mod auth;
pub mod hub;
pub mod site;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hub_server::{
    Authorization, HubServer, HubService, RequestInfo, Requirement, ResponseBody, ServerError,
};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::auth::{LoginRequest, Role, Tokens};
use crate::hub::{DashboardServer, ServeDashboard};
use crate::site::Site;

/// Where the hub server's stats view is served (`GET`, JSON, admins only).
pub const STATS_PATH: &str = "/stats";

/// The largest `POST /api/login` body accepted.
const MAX_LOGIN_BODY: usize = 4 * 1024;

/// The generated TypeScript client of the dashboard hub (committed in `client/`, checked by a
/// test, and installed by the page's `package.json` as `dashboard-client`).
fn client_package() -> hub_server::codegen::TypeScriptPackage {
    hub_server::codegen::TypeScriptPackage::new("dashboard-client")
}

/// The hub on `/dashboard`, signed in with the bearer tokens of [`Tokens`], and the hub server's
/// stats view on [`STATS_PATH`] for admins: connections by transport and protocol, users, the
/// topics' groups with their members, invocations and messages with their rates. The server
/// checks the view's requirement with the same authenticator: no token or a bad one gets 401, a
/// user without the `admin` role 403.
fn hub_service(
    tokens: Arc<Tokens>,
    dashboard: Arc<DashboardServer>,
) -> Result<HubService, ServerError> {
    HubServer::builder()
        .authenticator(move |request: &RequestInfo| {
            let principal = tokens.authenticate(request.bearer_token().as_deref());
            async move { principal }
        })
        .hub("/dashboard", ServeDashboard::from_arc(dashboard))
        .stats_endpoint(
            STATS_PATH,
            Authorization::all([Requirement::role([Role::Admin.as_str()])]),
        )
        .into_service()
}

/// Everything a request may need.
struct App {
    hubs: HubService,
    tokens: Arc<Tokens>,
    site: Site,
}

/// A response with a body and a content type.
fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON response (`{"error": …}` for failures).
fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<ResponseBody> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = reply(status, "application/json", Bytes::from(body));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            Bytes::from_static(b"cannot encode the response\n"),
        ),
    }
}

fn json_error(status: StatusCode, error: &str) -> Response<ResponseBody> {
    json(status, &serde_json::json!({ "error": error }))
}

/// `POST /api/login` with `{"user": …, "password": …}`: `{"token", "user", "role"}`, or 401.
async fn login(tokens: &Tokens, request: Request<Incoming>) -> Response<ResponseBody> {
    if request.method() != Method::POST {
        return json_error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let body = match Limited::new(request.into_body(), MAX_LOGIN_BODY)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the login request is too large or was cut off",
            )
        }
    };
    let Ok(credentials) = serde_json::from_slice::<LoginRequest>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            r#"send JSON: {"user": "…", "password": "…"}"#,
        );
    };
    match tokens.login(&credentials) {
        Some(session) => json(StatusCode::OK, &session),
        None => json_error(StatusCode::UNAUTHORIZED, "wrong user name or password"),
    }
}

/// Hands hub paths (and the stats view) to the hubs, `/api/login` to [`login`], and serves the
/// page.
async fn route(
    app: Arc<App>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = request.uri().path();
    if app.hubs.matches(path) {
        return Ok(app.hubs.handle(request).await);
    }
    if path == "/api/login" {
        return Ok(login(&app.tokens, request).await);
    }
    if path.starts_with("/api/") {
        return Ok(json_error(StatusCode::NOT_FOUND, "no such API"));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"method not allowed\n"),
        ));
    }
    Ok(match app.site.get(path) {
        Some(asset) => {
            let mut response = reply(StatusCode::OK, asset.content_type, asset.body.clone());
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(asset.cache_control),
            );
            response
        }
        None => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    })
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `dashboard --emit-ts examples/dashboard/client` regenerates the typed TypeScript client.
    if client_package().run_from_args()? {
        return Ok(());
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT must be a port number, not `{port}`"))?,
        Err(_) => 5001,
    };
    let dist = std::env::var_os("DASHBOARD_DIST").map_or_else(site::default_dist, Into::into);
    let site = Site::load(&dist)?;
    let tokens = Arc::new(
        Tokens::from_env()
            .map_err(|error| format!("no random source for the token key: {error}"))?,
    );
    let dashboard = Arc::new(DashboardServer::default());
    let hubs = hub_service(tokens.clone(), dashboard.clone())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "dashboard: http://127.0.0.1:{}/",
            listener.local_addr()?.port()
        );
        if !tokens.persistent() {
            println!(
                "dashboard: sign-ins end when the server stops; set DASHBOARD_SECRET to keep them"
            );
        }
    }
    let app = Arc::new(App {
        hubs: hubs.clone(),
        tokens,
        site,
    });

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
        let app = app.clone();
        let handler = hyper::service::service_fn(move |request| route(app.clone(), request));
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
    // Stopping: the metrics streams end (they would hold the shutdown for its grace period),
    // clients are told to reconnect later, then open requests get a few seconds.
    drop(listener);
    dashboard.stop_streams();
    hubs.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("dashboard: {error}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
