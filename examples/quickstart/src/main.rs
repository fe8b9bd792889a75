//! Your own project, as the README's "Use it in your own project" shows it: a hub with typed
//! callbacks, mounted in an axum app beside the app's own routes and front end, with bearer-token
//! authentication, and the generator for its TypeScript client.
//!
//! ```sh
//! cargo run -- --emit-ts ../greeter-client   # write the TypeScript package
//! WEB_DIST=web/dist PORT=3000 cargo run      # serve the API, the hub and the built front end
//! ```

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use hub_server::codegen::TypeScriptPackage;
use hub_server::{
    hub, hub_client, Context, HubContext, HubError, HubServer, Principal, RequestInfo, Unauthorized,
};
use serde::{Deserialize, Serialize};

/// What the server pushes to every client when someone greets.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Greeting {
    /// Who greeted.
    pub from: String,
    /// What they said.
    pub text: String,
}

/// What the server calls on its clients.
#[hub_client]
pub trait GreeterClient {
    /// Someone greeted everyone.
    async fn greeted(&self, greeting: Greeting);
}

/// What clients call.
#[hub(route = "/hubs/greeter", client = GreeterClient)]
pub trait Greeter {
    /// Greets everyone connected; returns the greeting as they receive it.
    async fn greet(
        &self,
        cx: Context<GreeterClientProxy>,
        text: String,
    ) -> Result<Greeting, HubError>;
}

/// The hub's implementation.
pub struct GreeterHub;

impl Greeter for GreeterHub {
    async fn greet(
        &self,
        cx: Context<GreeterClientProxy>,
        text: String,
    ) -> Result<Greeting, HubError> {
        if text.trim().is_empty() {
            return Err(HubError::new("say something"));
        }
        let from = cx.user_id().unwrap_or("someone").to_owned();
        let greeting = Greeting { from, text };
        cx.clients().all().greeted(&greeting).await?;
        Ok(greeting)
    }
}

/// Bearer tokens to users. A demo table: put your own validation here (a session store, a JWT
/// library, …). Browsers send the token as `?access_token=` on WebSockets and Server-Sent
/// Events, which `bearer_token()` reads too.
fn authenticate(request: &RequestInfo) -> Result<Principal, Unauthorized> {
    match request.bearer_token().as_deref() {
        Some("alice-token") => Ok(Principal::user("alice")),
        Some("bob-token") => Ok(Principal::user("bob")),
        _ => Err(Unauthorized),
    }
}

/// `POST /api/announce`: the app's own route pushes to the hub's clients.
async fn announce(
    State(hub): State<HubContext<GreeterClientProxy>>,
    Json(text): Json<String>,
) -> &'static str {
    let greeting = Greeting {
        from: "server".to_owned(),
        text,
    };
    match hub.clients().all().greeted(&greeting).await {
        Ok(()) => "sent",
        Err(_) => "not sent",
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `greeter --emit-ts <dir>` writes the TypeScript package and exits.
    if TypeScriptPackage::new("greeter-client").run_from_args()? {
        return Ok(());
    }
    let hubs = HubServer::builder()
        .hub("/hubs/greeter", ServeGreeter::new(GreeterHub))
        // Any `Fn(&RequestInfo) -> impl Future<Output = Result<Principal, Unauthorized>>`; the
        // future must not borrow the request (read what you need first, then `async move`).
        .authenticator(|request: &RequestInfo| std::future::ready(authenticate(request)))
        .into_service()?;
    let hub = hubs
        .hub_context("/hubs/greeter")
        .ok_or("the greeter hub is not mapped")?
        .typed::<GreeterClientProxy>();
    let web = std::env::var("WEB_DIST").unwrap_or_else(|_| "web/dist".to_owned());
    let app = Router::new()
        .route("/api/health", get(|| async { "ok" }))
        .route("/api/announce", post(announce))
        .with_state(hub)
        // The hub's two paths: the connection itself and its negotiate.
        .route_service("/hubs/greeter", hubs.clone())
        .route_service("/hubs/greeter/negotiate", hubs.clone())
        .fallback_service(tower_http::services::ServeDir::new(web));
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        // Ctrl-C or SIGTERM: the hub's clients get a Close that lets them reconnect elsewhere.
        .with_graceful_shutdown(hub_server::shutdown_signal())
        .await?;
    hubs.shutdown().await;
    Ok(())
}
