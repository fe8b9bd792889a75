//! Routing HTTP requests to hubs: `{hub}/negotiate` and the transport endpoint `{hub}` (WebSocket
//! upgrades, Server-Sent Events, long polls, sends, DELETE), with CORS.
//!
//! [`HubService`] is both a hyper service and a tower service, so hubs mount inside an existing
//! hyper or axum application (e.g. as axum's fallback service) next to the application's own routes.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hub_core::hub::BoxFuture;
use hub_core::negotiate::TransportType;
use tokio_util::sync::CancellationToken;

use crate::context::HubContext;
use crate::cors::Cors;
use crate::endpoint::{AttachError, Attachment, Endpoint, Lookup, WsAttach};
use crate::lifecycle::{self, Attached};
use crate::negotiation::negotiate;
use crate::request::{Principal, RequestInfo};
use crate::response::{status, text};
use crate::transport::http::{DeliverError, HttpSource, Inbound};
use crate::transport::long_polling::{LongPolling, PollOutcome};
use crate::transport::{sse, websocket, TransportSink};

/// The body of every response a [`HubService`] gives.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// The error of a request body, as hyper and axum bodies give it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves the hubs of a server: negotiate and transports, under each hub's path.
///
/// Cheap to clone. Requests for other paths get 404, so put it behind your own routes (or use
/// [`HubService::matches`] to route by hand).
#[derive(Clone)]
pub struct HubService {
    endpoints: Arc<[Arc<Endpoint>]>,
}

/// Which endpoint of a hub a path names.
enum Route {
    Negotiate,
    Connect,
}

impl HubService {
    pub(crate) fn new(endpoints: Vec<Arc<Endpoint>>) -> Self {
        HubService {
            endpoints: endpoints.into(),
        }
    }

    fn route(&self, path: &str) -> Option<(&Arc<Endpoint>, Route)> {
        let path = path.trim_end_matches('/');
        self.endpoints.iter().find_map(|endpoint| {
            let base = endpoint.path.as_str();
            if path.eq_ignore_ascii_case(base) {
                return Some((endpoint, Route::Connect));
            }
            let rest = path.get(base.len()..)?;
            (path.get(..base.len())?.eq_ignore_ascii_case(base)
                && rest.eq_ignore_ascii_case("/negotiate"))
            .then_some((endpoint, Route::Negotiate))
        })
    }

    /// Whether a request path belongs to one of the hubs (case-insensitively, as ASP.NET Core
    /// matches routes).
    pub fn matches(&self, path: &str) -> bool {
        self.route(path).is_some()
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
            endpoint.shutdown.cancel();
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
            return status(StatusCode::NOT_FOUND);
        };
        let endpoint = endpoint.clone();
        let cors = Cors::evaluate(&endpoint.config, request.headers());
        if let Some(response) = cors.preflight(&endpoint.config, &request) {
            return response;
        }
        let mut response = match route {
            Route::Negotiate => negotiate(&endpoint, request).await,
            Route::Connect => connect(endpoint, request).await,
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
    match *request.method() {
        Method::GET if websocket::is_upgrade_request(request.headers()) => {
            websocket_connect(endpoint, request).await
        }
        Method::GET if sse::accepts_event_stream(request.headers()) => {
            sse_connect(endpoint, request).await
        }
        Method::GET => {
            let mut response = long_poll(endpoint, request).await;
            let headers = response.headers_mut();
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-store"),
            );
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            headers.insert(
                header::EXPIRES,
                HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
            );
            response
        }
        Method::POST => send(endpoint, request).await,
        Method::DELETE => delete(endpoint, request).await,
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

/// Authenticates a transport request: its principal, or `None` (answered with 401).
async fn authenticate(endpoint: &Endpoint, info: &RequestInfo) -> Option<Principal> {
    endpoint.authenticator.authenticate(info).await.ok()
}

fn unauthorized() -> Response<ResponseBody> {
    status(StatusCode::UNAUTHORIZED)
}

async fn websocket_connect<B: Send + 'static>(
    endpoint: Arc<Endpoint>,
    mut request: Request<B>,
) -> Response<ResponseBody> {
    let token = query_value(request.uri().query(), "id");
    let upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from_parts(&parts);
    let Some(principal) = authenticate(&endpoint, &info).await else {
        return unauthorized();
    };
    if let Some(token) = &token {
        if matches!(endpoint.lookup(token), Lookup::Unknown) {
            return no_connection();
        }
    }
    if !endpoint.config.allows(TransportType::WebSockets) {
        return transport_disabled(TransportType::WebSockets);
    }
    let response = match websocket::accept_response(&parts.headers) {
        Ok(response) => response,
        Err(code) => return status(code),
    };
    let ws_limits = websocket::WsLimits {
        max_message: endpoint
            .config
            .max_message_size
            .saturating_mul(8)
            .max(1 << 20),
        read_buffer: endpoint.config.websocket_read_buffer_size,
    };
    let (connection_id, token, session) = match token {
        Some(token) => {
            match endpoint.attach_websocket(&token) {
                Ok(WsAttach::New {
                    connection_id,
                    session,
                }) => (connection_id, token, session),
                Ok(WsAttach::Resume(session)) => {
                    // A stateful reconnect: the new socket goes to the connection waiting for it, with
                    // no handshake.
                    endpoint.tasks.spawn(async move {
                    match upgrade.await {
                        Ok(upgraded) => {
                            let (source, sink) = websocket::split(upgraded, ws_limits).await;
                            if let Err((_, mut sink)) = session.offer(source, sink) {
                                tracing::debug!("the connection ended before its client reconnected");
                                sink.close(false).await;
                            }
                        }
                        Err(error) => {
                            tracing::debug!(%error, "the WebSocket upgrade of a reconnect failed");
                            session.unclaim();
                        }
                    }
                });
                    return response.map(|()| Full::new(Bytes::new()).boxed());
                }
                Err(error) => return attach_error(error),
            }
        }
        None => match endpoint.attach_without_negotiate() {
            Ok((connection_id, token)) => (connection_id, token, None),
            Err(error) => {
                tracing::error!(%error, "the operating system's random source failed; cannot create a connection id");
                return status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        },
    };

    let attached = Box::new(Attached {
        connection_id,
        token: token.clone(),
        principal,
        request: info.detached(),
        transport: TransportType::WebSockets,
    });
    let task_endpoint = endpoint.clone();
    endpoint.tasks.spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let (source, sink) = websocket::split(upgraded, ws_limits).await;
                lifecycle::run(task_endpoint, attached, source, sink, session).await;
            }
            Err(error) => {
                tracing::debug!(%error, "the WebSocket upgrade failed");
                task_endpoint.release(&token);
            }
        }
    });
    response.map(|()| Full::new(Bytes::new()).boxed())
}

/// `GET {hub}?id=<token>` with `Accept: text/event-stream`: opens the event stream and starts the
/// connection.
async fn sse_connect<B>(endpoint: Arc<Endpoint>, request: Request<B>) -> Response<ResponseBody> {
    let Some(token) = token_of(&request) else {
        return missing_token();
    };
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from_parts(&parts);
    let Some(principal) = authenticate(&endpoint, &info).await else {
        return unauthorized();
    };
    if matches!(endpoint.lookup(&token), Lookup::Unknown) {
        return no_connection();
    }
    if !endpoint.config.allows(TransportType::ServerSentEvents) {
        return transport_disabled(TransportType::ServerSentEvents);
    }
    let (inbound, receiver) = Inbound::new();
    let connection_id =
        match endpoint.attach(&token, Attachment::ServerSentEvents(Arc::new(inbound))) {
            Ok(connection_id) => connection_id,
            Err(error) => return attach_error(error),
        };
    let gone = CancellationToken::new();
    let (body, sink) = sse::open(gone.clone());
    let source = HttpSource::new(receiver, gone);
    let attached = Box::new(Attached {
        connection_id,
        token,
        principal,
        request: info.detached(),
        transport: TransportType::ServerSentEvents,
    });
    endpoint.tasks.spawn(lifecycle::run(
        endpoint.clone(),
        attached,
        source,
        sink,
        None,
    ));

    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache,no-store"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    response
}

/// A long poll, `GET {hub}?id=<token>` without `Accept: text/event-stream`. The first one after
/// negotiate starts the connection and returns at once; later ones wait for data.
async fn long_poll<B>(endpoint: Arc<Endpoint>, request: Request<B>) -> Response<ResponseBody> {
    let Some(token) = token_of(&request) else {
        return missing_token();
    };
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from_parts(&parts);
    let Some(principal) = authenticate(&endpoint, &info).await else {
        return unauthorized();
    };
    let lookup = endpoint.lookup(&token);
    if matches!(lookup, Lookup::Unknown) {
        return no_connection();
    }
    if !endpoint.config.allows(TransportType::LongPolling) {
        return transport_disabled(TransportType::LongPolling);
    }
    let polling = match lookup {
        Lookup::Unknown => return no_connection(),
        Lookup::Active(Attachment::LongPolling(polling)) => polling,
        Lookup::Active(_) => return attach_error(AttachError::TransportChange),
        Lookup::Negotiated => {
            let (polling, source, sink) = LongPolling::new();
            match endpoint.attach(&token, Attachment::LongPolling(polling)) {
                Ok(connection_id) => {
                    let attached = Box::new(Attached {
                        connection_id,
                        token,
                        principal,
                        request: info.detached(),
                        transport: TransportType::LongPolling,
                    });
                    endpoint.tasks.spawn(lifecycle::run(
                        endpoint.clone(),
                        attached,
                        source,
                        sink,
                        None,
                    ));
                    // The first poll returns at once: the client sends its handshake only then.
                    let mut response = status(StatusCode::OK);
                    let headers = response.headers_mut();
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                    return response;
                }
                // A concurrent first poll won: this one is an ordinary poll.
                Err(AttachError::Conflict) => match endpoint.lookup(&token) {
                    Lookup::Active(Attachment::LongPolling(polling)) => polling,
                    _ => return no_connection(),
                },
                Err(error) => return attach_error(error),
            }
        }
    };
    match polling.poll(endpoint.config.long_polling_timeout).await {
        PollOutcome::Data(data) => {
            let mut response = Response::new(Full::new(data).boxed());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        PollOutcome::TimedOut => {
            let mut response = text(StatusCode::OK, "");
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            response
        }
        PollOutcome::Ended => {
            endpoint.forget_long_polling(&token, &polling);
            text(StatusCode::NO_CONTENT, "")
        }
        PollOutcome::Superseded | PollOutcome::Terminated => text(StatusCode::NO_CONTENT, ""),
    }
}

/// `POST {hub}?id=<token>`: the client's messages, for Server-Sent Events and long polling.
async fn send<B>(endpoint: Arc<Endpoint>, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let Some(token) = token_of(&request) else {
        return missing_token();
    };
    let (parts, body) = request.into_parts();
    if authenticate(&endpoint, &RequestInfo::from_parts(&parts))
        .await
        .is_none()
    {
        return unauthorized();
    }
    let delivered = match endpoint.lookup(&token) {
        Lookup::Unknown | Lookup::Negotiated => return no_connection(),
        Lookup::Active(Attachment::WebSockets(_)) => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST requests are not allowed for WebSocket connections.",
            )
        }
        Lookup::Active(Attachment::ServerSentEvents(inbound)) => {
            inbound
                .deliver(body, endpoint.config.request_body_limit())
                .await
        }
        Lookup::Active(Attachment::LongPolling(polling)) => {
            polling
                .inbound()
                .deliver(body, endpoint.config.request_body_limit())
                .await
        }
    };
    match delivered {
        Ok(()) => text(StatusCode::OK, ""),
        Err(DeliverError::Closed) => no_connection(),
        Err(DeliverError::TooLarge) => {
            tracing::debug!(
                limit = endpoint.config.request_body_limit(),
                "a send request body over the limit was refused"
            );
            text(StatusCode::PAYLOAD_TOO_LARGE, "")
        }
        Err(DeliverError::Body(error)) => {
            tracing::debug!(%error, "reading a send request body failed");
            text(StatusCode::BAD_REQUEST, "")
        }
    }
}

/// `DELETE {hub}?id=<token>`: the long-polling client stops.
async fn delete<B>(endpoint: Arc<Endpoint>, request: Request<B>) -> Response<ResponseBody> {
    let Some(token) = token_of(&request) else {
        return missing_token();
    };
    let (parts, _body) = request.into_parts();
    if authenticate(&endpoint, &RequestInfo::from_parts(&parts))
        .await
        .is_none()
    {
        return unauthorized();
    }
    match endpoint.lookup(&token) {
        Lookup::Unknown => no_connection(),
        Lookup::Active(Attachment::LongPolling(polling)) => {
            tracing::debug!("a long-polling client ended its connection with DELETE");
            endpoint.forget_long_polling(&token, &polling);
            polling.terminate();
            text(StatusCode::ACCEPTED, "")
        }
        Lookup::Negotiated | Lookup::Active(_) => text(
            StatusCode::BAD_REQUEST,
            "Cannot terminate this connection using the DELETE endpoint.",
        ),
    }
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
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
