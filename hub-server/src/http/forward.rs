//! Requests of connections that live on another server (no sticky sessions): the transport
//! endpoint asks where a connection it does not run lives before serving a request of it;
//! sends, polls and DELETEs of a connection elsewhere are carried to its owner through the
//! lifetime manager and answered with the owner's response; a second transport for it is
//! refused as on one server.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};

use super::response::{text, ResponseBody};
use super::{authenticate, connect, no_connection, refresh, BoxError};
use crate::endpoint::{Endpoint, Placement};
use crate::lifetime::{ForwardedRequest, ForwardedRequests, ForwardedResponse, LifetimeError};
use crate::request::RequestInfo;
use hub_core::token::ConnectionToken;

/// Marks a request another server forwarded here: served here or answered 404, never forwarded
/// again.
#[derive(Clone, Copy)]
pub(super) struct Forwarded;

/// How long a forwarded send or DELETE may take to be answered.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a request of a connection does to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Intent {
    /// A transport request (upgrade, event stream, poll, send, DELETE): may attach the
    /// connection here when nobody owns it yet.
    Transport,
    /// An authentication refresh: for a running connection only.
    Refresh,
}

/// Where a request of the connection `token` names is served: `Ok` with the request (here), or
/// the response of the server that owns the connection.
pub(super) async fn place<B>(
    endpoint: &Arc<Endpoint>,
    request: Request<B>,
    token: Option<&str>,
    intent: Intent,
) -> Result<Request<B>, Response<ResponseBody>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if request.extensions().get::<Forwarded>().is_some() {
        return Ok(request);
    }
    let Some(token) = token else {
        return Ok(request);
    };
    let Some(claims) = endpoint.unplaced(token) else {
        return Ok(request);
    };
    // Boxed: most requests (those of connections running here) end above, and the futures of
    // the requests that await this one stay small (a request's futures are moved as it starts).
    Box::pin(place_claimed(
        endpoint,
        request,
        token.to_owned(),
        claims,
        intent,
    ))
    .await
}

/// [`place`] for a request whose token this server has not placed (`claims`, its verified
/// contents).
async fn place_claimed<B>(
    endpoint: &Arc<Endpoint>,
    request: Request<B>,
    token: String,
    claims: ConnectionToken,
    intent: Intent,
) -> Result<Request<B>, Response<ResponseBody>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if let Some(owner) = endpoint.known_owner(&token) {
        // A connection known to live elsewhere: straight to its owner, which authenticates the
        // request as its own.
        let (parts, body) = request.into_parts();
        return Err(elsewhere(endpoint, parts, body, intent, &token, &claims, &owner).await);
    }
    // Only the user the token was issued to may claim its connection for a server; anyone else
    // gets the transport's own refusal (401 or 403) here.
    let (parts, body) = request.into_parts();
    let info = RequestInfo::from_parts(&parts);
    let sender = match authenticate(endpoint, &info).await {
        Some(principal) => {
            let user = endpoint.user_ids.user_id(&principal, &info);
            endpoint.issued_to(&claims, user.as_deref()).then_some(user)
        }
        None => None,
    };
    let Some(user_id) = sender else {
        return Ok(Request::from_parts(parts, body));
    };
    let may_attach = intent == Intent::Transport;
    let owner = match endpoint.place(&token, &claims, may_attach, user_id).await {
        Placement::Here => return Ok(Request::from_parts(parts, body)),
        Placement::Elsewhere(owner) => owner,
    };
    Err(elsewhere(endpoint, parts, body, intent, &token, &claims, &owner).await)
}

/// The answer to a request of a connection that lives on `owner`: a second transport is
/// refused; sends, polls, DELETEs and refreshes are carried to the owner.
async fn elsewhere<B>(
    endpoint: &Endpoint,
    parts: Parts,
    body: B,
    intent: Intent,
    token: &str,
    claims: &ConnectionToken,
    owner: &str,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let upgrade = crate::transport::websocket::is_upgrade_request(&parts.headers);
    if intent == Intent::Transport
        && parts.method == Method::GET
        && (upgrade || crate::transport::sse::accepts_event_stream(&parts.headers))
    {
        // The connection runs on another server. A stateful WebSocket that tries to resume
        // here gets 404, so the client starts a new connection; a second transport gets 409, as
        // on one server.
        tracing::debug!(
            %owner,
            "a transport for a connection running on another server was refused"
        );
        return if upgrade && claims.stateful {
            no_connection()
        } else {
            text(StatusCode::CONFLICT, "")
        };
    }
    let ending = parts.method == Method::DELETE;
    let response = forward(endpoint, parts, body, owner, &claims.connection_id).await;
    if ending || response.status() == StatusCode::NOT_FOUND {
        endpoint.forget_owner(token);
    }
    response
}

/// Carries a send, poll or DELETE to the server that owns its connection and gives its answer.
async fn forward<B>(
    endpoint: &Endpoint,
    parts: Parts,
    body: B,
    owner: &str,
    connection_id: &str,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    // One byte past the limit is enough for the owner to refuse it as too large.
    let limit = endpoint.config.request_body_limit().saturating_add(1);
    let body = match read_at_most(body, limit).await {
        Ok(body) => body,
        Err(error) => {
            tracing::debug!(%error, "reading a request body to forward failed");
            return text(StatusCode::BAD_REQUEST, "");
        }
    };
    let timeout = if parts.method == Method::GET {
        endpoint.config.long_polling_timeout + FORWARD_TIMEOUT
    } else {
        FORWARD_TIMEOUT
    };
    let request = ForwardedRequest {
        method: parts.method.as_str().to_owned(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    Bytes::copy_from_slice(value.as_bytes()),
                )
            })
            .collect(),
        body,
    };
    match endpoint
        .manager
        .forward(owner, connection_id, request, timeout)
        .await
    {
        Ok(answer) => response_from(answer),
        Err(LifetimeError::Unavailable(error)) => {
            tracing::warn!(%error, "cannot forward a request to the server that owns its connection");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server that owns this connection cannot be reached.",
            )
        }
        Err(error) => {
            tracing::debug!(%error, %owner, "a forwarded request got no answer");
            no_connection()
        }
    }
}

/// The body, up to `limit` bytes (the rest is not read).
async fn read_at_most<B>(body: B, limit: usize) -> Result<Bytes, BoxError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut read = BytesMut::new();
    while read.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.map_err(Into::into)?.into_data() {
            let room = limit - read.len();
            read.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(read.freeze())
}

/// Headers a response carries per hop, never copied from the owner's answer.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "content-length" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

/// The client's response from the owner's answer.
fn response_from(answer: ForwardedResponse) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(answer.body).boxed());
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if hop_by_hop(&name) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// What answers the requests other servers forward to `endpoint`'s hub on this server.
pub(crate) fn forwarded_requests(endpoint: &Arc<Endpoint>) -> ForwardedRequests {
    let endpoint: Weak<Endpoint> = Arc::downgrade(endpoint);
    ForwardedRequests::new(move |request| {
        let endpoint = endpoint.upgrade();
        Box::pin(async move {
            match endpoint {
                Some(endpoint) => serve_forwarded(endpoint, request).await,
                None => ForwardedResponse {
                    status: StatusCode::NOT_FOUND.as_u16(),
                    headers: Vec::new(),
                    body: Bytes::new(),
                },
            }
        })
    })
}

/// Serves a forwarded request as the transport endpoint serves its own (authentication,
/// identity and limits included), and collects the answer.
async fn serve_forwarded(
    endpoint: Arc<Endpoint>,
    forwarded: ForwardedRequest,
) -> ForwardedResponse {
    let response = match request_from(forwarded) {
        Some(request) if is_refresh(request.uri().path()) => {
            refresh::refresh(&endpoint, request).await
        }
        Some(request) => connect(endpoint, request).await,
        None => text(StatusCode::BAD_REQUEST, ""),
    };
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    ForwardedResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| !hop_by_hop(name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    Bytes::copy_from_slice(value.as_bytes()),
                )
            })
            .collect(),
        body,
    }
}

/// Whether a forwarded request's path is a hub's `/refresh` (others are its transport
/// endpoint).
fn is_refresh(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path.len() >= "/refresh".len()
        && path[path.len() - "/refresh".len()..].eq_ignore_ascii_case("/refresh")
}

/// The request a forwarded one describes, marked [`Forwarded`]; `None` when it does not parse
/// (a server of another build).
fn request_from(forwarded: ForwardedRequest) -> Option<Request<Full<Bytes>>> {
    let method = Method::from_bytes(forwarded.method.as_bytes()).ok()?;
    let uri: Uri = forwarded.path_and_query.parse().ok()?;
    let mut request = Request::new(Full::new(forwarded.body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    for (name, value) in forwarded.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_bytes(&value).ok()?,
        );
    }
    request.extensions_mut().insert(Forwarded);
    Some(request)
}
