//! Routing HTTP requests to hubs: `{hub}/negotiate` and the transport endpoint `{hub}`.
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
use hub_core::negotiate::{
    AvailableTransport, NegotiateRequest, NegotiateResponse, NegotiatedConnection, TransportType,
};

use crate::context::HubContext;
use crate::endpoint::{AttachError, Endpoint};
use crate::lifecycle::{self, Attached};
use crate::request::RequestInfo;
use crate::transport::websocket;

/// The body of every response a [`HubService`] gives.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

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

    /// Handles one request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Send + 'static,
    {
        let Some((endpoint, route)) = self.route(request.uri().path()) else {
            return status(StatusCode::NOT_FOUND);
        };
        let endpoint = endpoint.clone();
        match route {
            Route::Negotiate => negotiate(&endpoint, request).await,
            Route::Connect => connect(endpoint, request).await,
        }
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

fn status(code: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = code;
    response
}

fn text(code: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn json(body: Vec<u8>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The transports a hub offers, in the order clients should try them.
fn available_transports() -> Vec<AvailableTransport> {
    vec![AvailableTransport::from(TransportType::WebSockets)]
}

async fn negotiate<B>(endpoint: &Arc<Endpoint>, request: Request<B>) -> Response<ResponseBody> {
    if request.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from_parts(&parts);
    if endpoint.authenticator.authenticate(&info).await.is_err() {
        return status(StatusCode::UNAUTHORIZED);
    }
    let query = parts.uri.query().unwrap_or_default();
    let negotiate = match NegotiateRequest::from_query(query, endpoint.config.min_negotiate_version)
    {
        Ok(negotiate) => negotiate,
        Err(error) => return json(NegotiateResponse::Error(error.to_string()).to_json()),
    };
    let (connection_id, token) = match endpoint.negotiate_connection(negotiate.version) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(%error, "the operating system's random source failed; cannot create a connection id");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let response = NegotiateResponse::Connection(NegotiatedConnection {
        negotiate_version: negotiate.version,
        connection_id: connection_id.to_string(),
        connection_token: (negotiate.version > 0).then_some(token),
        available_transports: available_transports(),
        use_stateful_reconnect: false,
    });
    json(response.to_json())
}

async fn connect<B: Send + 'static>(
    endpoint: Arc<Endpoint>,
    request: Request<B>,
) -> Response<ResponseBody> {
    let token = query_value(request.uri().query(), "id");
    match *request.method() {
        Method::GET => {}
        Method::POST => {
            return match token {
                None => text(StatusCode::BAD_REQUEST, "Connection ID required"),
                Some(token) if endpoint.is_active(&token) => text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "POST requests are not allowed for WebSocket connections.",
                ),
                Some(_) => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
            };
        }
        Method::DELETE => {
            return match token {
                None => text(StatusCode::BAD_REQUEST, "Connection ID required"),
                Some(token) if endpoint.is_active(&token) => text(
                    StatusCode::BAD_REQUEST,
                    "Cannot terminate this connection using the DELETE endpoint.",
                ),
                Some(_) => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
            };
        }
        _ => return status(StatusCode::METHOD_NOT_ALLOWED),
    }
    if !websocket::is_upgrade_request(request.headers()) {
        // Server-Sent Events and long polling are not offered (yet): as for a disabled transport.
        return status(StatusCode::NOT_FOUND);
    }

    let mut request = request;
    let upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from_parts(&parts);
    let principal = match endpoint.authenticator.authenticate(&info).await {
        Ok(principal) => principal,
        Err(_) => return status(StatusCode::UNAUTHORIZED),
    };
    let response = match websocket::accept_response(&parts.headers) {
        Ok(response) => response,
        Err(code) => return status(code),
    };
    let (connection_id, token) = match token {
        Some(token) => match endpoint.attach(&token) {
            Ok(connection_id) => (connection_id, token),
            Err(AttachError::NotFound) => {
                return text(StatusCode::NOT_FOUND, "No Connection with that ID")
            }
            Err(AttachError::Conflict) => return status(StatusCode::CONFLICT),
        },
        None => match endpoint.attach_without_negotiate() {
            Ok(pair) => pair,
            Err(error) => {
                tracing::error!(%error, "the operating system's random source failed; cannot create a connection id");
                return status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        },
    };

    let max_ws_message = endpoint
        .config
        .max_message_size
        .saturating_mul(8)
        .max(1 << 20);
    let attached = Attached {
        connection_id,
        token: token.clone(),
        principal,
        request: info,
        transport: TransportType::WebSockets,
    };
    let task_endpoint = endpoint.clone();
    endpoint.tasks.spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let (source, sink) = websocket::split(upgraded, max_ws_message).await;
                lifecycle::run(task_endpoint, attached, source, sink).await;
            }
            Err(error) => {
                tracing::debug!(%error, "the WebSocket upgrade failed");
                task_endpoint.release(&token);
            }
        }
    });
    response.map(|()| Full::new(Bytes::new()).boxed())
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

impl<B: Send + 'static> hyper::service::Service<Request<B>> for HubService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

impl<B: Send + 'static> tower_service::Service<Request<B>> for HubService {
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
