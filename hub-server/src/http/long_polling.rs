//! Long polling: the polls (`GET {hub}?id=<token>`) and the end of the connection (`DELETE`).

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_core::negotiate::TransportType;
use hub_core::refresh::{error_body, REFRESH_REQUIRED};

use super::response::{json, status, text, ResponseBody};
use super::{admit, attach_error, no_connection, transport_disabled, Admitted};
use crate::auth::{Identity, Principal};
use crate::endpoint::run::{self, Attached};
use crate::endpoint::{AttachError, Attachment, Endpoint, Lookup};
use crate::request::RequestInfo;

use crate::transport::long_polling::{LongPolling, PollOutcome};

/// A long poll, `GET {hub}?id=<token>` without `Accept: text/event-stream`. The first one after
/// negotiate starts the connection and returns at once; later ones wait for data.
pub(super) async fn long_poll<B>(
    endpoint: Arc<Endpoint>,
    request: Request<B>,
    polled: Option<String>,
) -> Response<ResponseBody> {
    let Admitted {
        token,
        info,
        principal,
        ..
    } = match admit(&endpoint, request, polled).await {
        Ok(admitted) => admitted,
        Err((refused, polled)) => return refresh_required(&endpoint, polled.as_deref(), refused),
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
            match start(&endpoint, token.clone(), info, principal) {
                Ok(_) => {
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

/// Starts a long-polling connection on a negotiated token: attaches it and runs the connection.
/// By the first poll, or by a send that comes before it (a client may POST its handshake before
/// it polls; ASP.NET Core buffers such a send rather than refusing it).
pub(super) fn start(
    endpoint: &Arc<Endpoint>,
    token: String,
    info: RequestInfo,
    principal: Principal,
) -> Result<Arc<LongPolling>, AttachError> {
    let (polling, source, sink) = LongPolling::new();
    let connection_id = endpoint.attach(&token, Attachment::LongPolling(polling.clone()))?;
    let identity = Identity::new(principal);
    endpoint.bind_identity(&token, &identity);
    let attached = Box::new(Attached {
        connection_id,
        token,
        identity,
        request: info.detached(),
        transport: TransportType::LongPolling,
    });
    endpoint
        .tasks
        .spawn(run::run(endpoint.clone(), attached, source, sink, None));
    Ok(polling)
}

/// A poll of a running connection whose credentials no longer authenticate, on a hub that
/// offers authentication refresh: 409 with `authentication_refresh_required`, so the client
/// refreshes (`POST {hub}/refresh`) and polls again instead of losing its connection. Any other
/// refusal stands.
fn refresh_required(
    endpoint: &Endpoint,
    token: Option<&str>,
    refused: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let running = token.is_some_and(|token| {
        matches!(
            endpoint.lookup(token),
            Lookup::Active(Attachment::LongPolling(_))
        )
    });
    if refused.status() != StatusCode::UNAUTHORIZED
        || !endpoint.config.authentication_refresh
        || !running
    {
        return refused;
    }
    tracing::debug!("a poll's credentials no longer authenticate; asking the client to refresh");
    let mut response = json(error_body(REFRESH_REQUIRED));
    *response.status_mut() = StatusCode::CONFLICT;
    response
}

/// `DELETE {hub}?id=<token>`: the long-polling client stops.
pub(super) async fn delete<B>(
    endpoint: Arc<Endpoint>,
    request: Request<B>,
    token: Option<String>,
) -> Response<ResponseBody> {
    let Admitted { token, .. } = match admit(&endpoint, request, token).await {
        Ok(admitted) => admitted,
        Err((refused, _)) => return refused,
    };
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
