//! Routing HTTP requests to hubs: `{hub}/negotiate`, the transport endpoint `{hub}` (WebSocket
//! upgrades, Server-Sent Events, long polls, sends, DELETE) and `{hub}/refresh` (authentication
//! refresh), with CORS.
//!
//! [`HubService`] is both a hyper service and a tower service, so hubs mount inside an existing
//! hyper or axum application (e.g. as axum's fallback service) next to the application's own routes.

pub(crate) mod cors;
mod forward;
mod long_polling;
mod negotiate;
pub(crate) mod observability;
mod refresh;
pub(crate) mod response;
mod send;
mod sse;
mod websocket;

pub(crate) use forward::forwarded_requests;
pub use response::ResponseBody;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hub_core::hub::BoxFuture;
use hub_core::negotiate::TransportType;

use crate::auth::Principal;
use crate::authorization::Decision;
use crate::clients::HubContext;
use crate::endpoint::{AttachError, Endpoint};
use crate::request::RequestInfo;
use cors::Cors;
use negotiate::negotiate;
pub(crate) use observability::OperatorRoute;
use response::{status, text};

/// The error of a request body, as hyper and axum bodies give it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves the hubs of a server: negotiate and transports, under each hub's path.
///
/// Cheap to clone. Requests for other paths get 404, so put it behind your own routes (or use
/// [`HubService::matches`] to route by hand).
#[derive(Clone)]
pub struct HubService {
    endpoints: Arc<[Arc<Endpoint>]>,
    /// The stats view and the metrics scrape, when served.
    operators: Arc<[OperatorRoute]>,
}

/// Which endpoint of a hub a path names.
enum Route {
    Negotiate,
    Connect,
    Refresh,
}

impl HubService {
    pub(crate) fn new(endpoints: Vec<Arc<Endpoint>>, operators: Vec<OperatorRoute>) -> Self {
        HubService {
            endpoints: endpoints.into(),
            operators: operators.into(),
        }
    }

    fn operator(&self, path: &str) -> Option<&OperatorRoute> {
        let path = path.trim_end_matches('/');
        self.operators
            .iter()
            .find(|route| route.path.eq_ignore_ascii_case(path))
    }

    fn route(&self, path: &str) -> Option<(&Arc<Endpoint>, Route)> {
        let path = path.trim_end_matches('/');
        self.endpoints.iter().find_map(|endpoint| {
            let base = endpoint.path.as_str();
            if path.eq_ignore_ascii_case(base) {
                return Some((endpoint, Route::Connect));
            }
            let rest = path.get(base.len()..)?;
            if !path.get(..base.len())?.eq_ignore_ascii_case(base) {
                return None;
            }
            if rest.eq_ignore_ascii_case("/negotiate") {
                Some((endpoint, Route::Negotiate))
            } else if rest.eq_ignore_ascii_case("/refresh") {
                Some((endpoint, Route::Refresh))
            } else {
                None
            }
        })
    }

    /// Whether a request path belongs to one of the hubs (case-insensitively, as ASP.NET Core
    /// matches routes).
    pub fn matches(&self, path: &str) -> bool {
        self.route(path).is_some() || self.operator(path).is_some()
    }

    /// The context of the hub mapped at `path`, to send to its clients from anywhere.
    pub fn hub_context(&self, path: &str) -> Option<HubContext> {
        let path = normalize_path(path);
        self.endpoints
            .iter()
            .find(|endpoint| endpoint.path.eq_ignore_ascii_case(&path))
            .map(|endpoint| endpoint.context.clone())
    }

    /// Shuts the hubs down gracefully: running invocations get each hub's shutdown timeout to
    /// finish, then every client gets a Close message inviting it to reconnect (elsewhere), then
    /// its transport closes. Returns when every connection has ended.
    pub async fn shutdown(&self) {
        for endpoint in self.endpoints.iter() {
            endpoint.shutdown.stop();
            endpoint.tasks.close();
        }
        for endpoint in self.endpoints.iter() {
            endpoint.tasks.wait().await;
        }
    }

    /// Handles one request. Any body whose data is [`Bytes`] works: hyper's `Incoming`, axum's
    /// `Body`, `Full<Bytes>`…
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some((endpoint, route)) = self.route(request.uri().path()) else {
            if let Some(operator) = self.operator(request.uri().path()) {
                return Box::pin(operator.handle(request, &self.endpoints)).await;
            }
            return status(StatusCode::NOT_FOUND);
        };
        let endpoint = endpoint.clone();
        let cors = Cors::evaluate(&endpoint.config, request.headers());
        if let Some(response) = cors.preflight(&endpoint.config, &request) {
            return response;
        }
        let mut response = match route {
            // Boxed, as every branch but the transport's: what a request awaits is moved as it
            // starts, so the future of every request is as large as its largest branch.
            Route::Negotiate => Box::pin(negotiate(&endpoint, request)).await,
            // Preflights have no effect and keep their answers; every other method is checked.
            Route::Connect | Route::Refresh
                if request.method() != Method::OPTIONS
                    && !cors::origin_allowed(
                        &endpoint.config,
                        request.headers(),
                        request
                            .uri()
                            .authority()
                            .map(|authority| authority.as_str()),
                    ) =>
            {
                tracing::warn!(
                    origin = ?request.headers().get(header::ORIGIN),
                    "a transport request from another origin was refused (HubConfig::check_origin)"
                );
                text(StatusCode::FORBIDDEN, "Origin not allowed")
            }
            Route::Connect => connect(endpoint, request).await,
            Route::Refresh => {
                Box::pin(async {
                    let token = refresh::token_of(&request);
                    match forward::place(
                        &endpoint,
                        request,
                        token.as_deref(),
                        forward::Intent::Refresh,
                    )
                    .await
                    {
                        Ok(here) => refresh::refresh(&endpoint, here).await,
                        Err(answered_elsewhere) => answered_elsewhere,
                    }
                })
                .await
            }
        };
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            cors.apply(&mut response);
        }
        response
    }
}

pub(crate) fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// The transport endpoint `{hub}`: WebSocket upgrades, event streams and polls (GET), sends
/// (POST), and the end of long-polling connections (DELETE).
async fn connect<B>(endpoint: Arc<Endpoint>, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // Parsed once: the transport's handler gets it with the request.
    let token = token_of(&request);
    let request = match forward::place(
        &endpoint,
        request,
        token.as_deref(),
        forward::Intent::Transport,
    )
    .await
    {
        Ok(here) => here,
        Err(answered_elsewhere) => return answered_elsewhere,
    };
    // A connection's sends and polls are awaited here; what starts or ends a connection is
    // boxed, so that their futures do not make every send's and poll's larger.
    match *request.method() {
        Method::GET if crate::transport::websocket::is_upgrade_request(request.headers()) => {
            Box::pin(websocket::websocket_connect(endpoint, request)).await
        }
        Method::GET if crate::transport::sse::accepts_event_stream(request.headers()) => {
            Box::pin(sse::sse_connect(endpoint, request, token)).await
        }
        Method::GET => {
            let mut response = long_polling::long_poll(endpoint, request, token).await;
            let headers = response.headers_mut();
            response::no_cache(headers, "no-cache, no-store");
            headers.insert(
                header::EXPIRES,
                HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
            );
            response
        }
        Method::POST => send::send(endpoint, request, token).await,
        Method::DELETE => Box::pin(long_polling::delete(endpoint, request, token)).await,
        _ => text(StatusCode::METHOD_NOT_ALLOWED, ""),
    }
}

/// The connection token of a transport request.
fn token_of<B>(request: &Request<B>) -> Option<String> {
    query_value(request.uri().query(), "id")
}

fn missing_token() -> Response<ResponseBody> {
    text(StatusCode::BAD_REQUEST, "Connection ID required")
}

fn no_connection() -> Response<ResponseBody> {
    text(StatusCode::NOT_FOUND, "No Connection with that ID")
}

fn transport_disabled(transport: TransportType) -> Response<ResponseBody> {
    tracing::debug!(?transport, "a request for a disabled transport");
    text(
        StatusCode::NOT_FOUND,
        format!("{transport:?} transport not supported by this end point type"),
    )
}

fn attach_error(error: AttachError) -> Response<ResponseBody> {
    match error {
        AttachError::NotFound => no_connection(),
        AttachError::Conflict => text(StatusCode::CONFLICT, ""),
        AttachError::TransportChange => text(
            StatusCode::BAD_REQUEST,
            "Cannot change transports mid-connection",
        ),
    }
}

/// A transport request that names its connection token and whose sender is authenticated.
struct Admitted<B> {
    token: String,
    info: RequestInfo,
    principal: Principal,
    body: B,
}

/// The first steps of every transport request but the WebSocket upgrade (whose token is optional):
/// the token (`?id=`, parsed by the caller; else 400) and authentication (else 401). A refusal
/// comes with the token, for the caller's answer.
async fn admit<B>(
    endpoint: &Endpoint,
    request: Request<B>,
    token: Option<String>,
) -> Result<Admitted<B>, (Response<ResponseBody>, Option<String>)> {
    let Some(token) = token else {
        return Err((missing_token(), None));
    };
    let (parts, body) = request.into_parts();
    let info = RequestInfo::from(parts);
    let Some(principal) = authenticate(endpoint, &info).await else {
        return Err((unauthorized(), Some(token)));
    };
    if !same_user(endpoint, &token, &principal, &info) {
        return Err((forbidden(), Some(token)));
    }
    if let Some(refused) = refused(endpoint, &principal, &info).await {
        return Err((refused, Some(token)));
    }
    Ok(Admitted {
        token,
        info,
        principal,
        body,
    })
}

/// Whether the sender of a request for `token` is the user the token was negotiated for: a
/// connection's identity cannot change under it (another user's credentials are refused with
/// 403, as in ASP.NET Core).
fn same_user(endpoint: &Endpoint, token: &str, principal: &Principal, info: &RequestInfo) -> bool {
    let user = endpoint.user_ids.user_id(principal, info);
    let same = endpoint.same_user(token, user.as_deref());
    if !same {
        tracing::warn!("a request for a connection came from another user than the one it was negotiated for; refused");
    }
    same
}

fn forbidden() -> Response<ResponseBody> {
    status(StatusCode::FORBIDDEN)
}

/// The answer to a principal the hub's own requirements (`#[authorize]` on the hub) refuse: 401
/// for an anonymous one, 403 for a user; `None` when it may connect.
async fn refused(
    endpoint: &Endpoint,
    principal: &Principal,
    info: &RequestInfo,
) -> Option<Response<ResponseBody>> {
    match endpoint.admits(principal, info).await {
        Decision::Allowed => None,
        Decision::Unauthenticated => Some(unauthorized()),
        Decision::Forbidden => Some(forbidden()),
    }
}

/// Authenticates a transport request: its principal, or `None` (answered with 401).
async fn authenticate(endpoint: &Endpoint, info: &RequestInfo) -> Option<Principal> {
    endpoint.authenticator.authenticate(info).await.ok()
}

fn unauthorized() -> Response<ResponseBody> {
    status(StatusCode::UNAUTHORIZED)
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    crate::request::query_parameter(query.unwrap_or_default(), name)
        .filter(|value| !value.is_empty())
}

impl<B> hyper::service::Service<Request<B>> for HubService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

impl<B> tower_service::Service<Request<B>> for HubService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        hyper::service::Service::call(self, request)
    }
}
