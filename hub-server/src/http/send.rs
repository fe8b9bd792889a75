//! `POST {hub}?id=<token>`: the client's messages, for Server-Sent Events and long polling.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hub_core::negotiate::TransportType;

use super::response::{text, ResponseBody};
use super::{admit, long_polling, no_connection, Admitted, BoxError};
use crate::endpoint::{AttachError, Attachment, Endpoint, Lookup};

use crate::transport::http::DeliverError;

/// `POST {hub}?id=<token>`: the client's messages, for Server-Sent Events and long polling.
pub(super) async fn send<B>(
    endpoint: Arc<Endpoint>,
    request: Request<B>,
    token: Option<String>,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let Admitted {
        token,
        body,
        info,
        principal,
    } = match admit(&endpoint, request, token).await {
        Ok(admitted) => admitted,
        Err((refused, _)) => return refused,
    };
    let mut lookup = endpoint.lookup(&token);
    if matches!(lookup, Lookup::Negotiated) {
        // A send before any transport attached: only a long-polling client does that (it may
        // POST its handshake before its first poll), so the send starts the long-polling
        // connection and is delivered, as ASP.NET Core buffers it instead of refusing it.
        if !endpoint.config.allows(TransportType::LongPolling) {
            return no_connection();
        }
        lookup = match long_polling::start(&endpoint, token.clone(), info, principal) {
            Ok(polling) => Lookup::Active(Attachment::LongPolling(polling)),
            // A first poll (or another send) started it meanwhile.
            Err(AttachError::Conflict | AttachError::TransportChange) => endpoint.lookup(&token),
            Err(AttachError::NotFound) => Lookup::Unknown,
        };
    }
    let delivered = match lookup {
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
