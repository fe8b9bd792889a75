//! `POST {hub}?id=<token>`: the client's messages, for Server-Sent Events and long polling.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};

use super::response::{text, ResponseBody};
use super::{admit, no_connection, Admitted, BoxError};
use crate::endpoint::{Attachment, Endpoint, Lookup};

use crate::transport::http::DeliverError;

/// `POST {hub}?id=<token>`: the client's messages, for Server-Sent Events and long polling.
pub(super) async fn send<B>(endpoint: Arc<Endpoint>, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let Admitted { token, body, .. } = match admit(&endpoint, request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
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
