//! `GET {hub}?id=<token>` with `Accept: text/event-stream`: a connection on Server-Sent Events.

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hub_core::negotiate::TransportType;

use super::response::ResponseBody;
use super::{admit, attach_error, no_connection, transport_disabled, Admitted};
use crate::auth::Identity;
use crate::endpoint::run::{self, Attached};
use crate::endpoint::{Attachment, Endpoint, Lookup};

use crate::transport::http::{Gone, HttpSource, Inbound};
use crate::transport::sse;

/// `GET {hub}?id=<token>` with `Accept: text/event-stream`: opens the event stream and starts the
/// connection.
pub(super) async fn sse_connect<B>(
    endpoint: Arc<Endpoint>,
    request: Request<B>,
    token: Option<String>,
) -> Response<ResponseBody> {
    let Admitted {
        token,
        info,
        principal,
        ..
    } = match admit(&endpoint, request, token).await {
        Ok(admitted) => admitted,
        Err((refused, _)) => return refused,
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
    let gone = Arc::new(Gone::default());
    let (body, sink) = sse::open(gone.clone());
    let source = HttpSource::new(receiver, gone, None);
    let identity = Identity::new(principal);
    endpoint.bind_identity(&token, &identity);
    let attached = Box::new(Attached {
        connection_id,
        token,
        identity,
        request: info.detached(),
        transport: TransportType::ServerSentEvents,
    });
    endpoint
        .tasks
        .spawn(run::run(endpoint.clone(), attached, source, sink, None));

    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    super::response::no_cache(headers, "no-cache,no-store");
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    response
}
