//! `GET {hub}?id=<token>` with a WebSocket upgrade: attaches (or resumes) a connection on a
//! WebSocket.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_core::negotiate::TransportType;

use super::response::{status, ResponseBody};
use super::{
    attach_error, authenticate, forbidden, no_connection, query_value, refused, same_user,
    transport_disabled, unauthorized,
};
use crate::auth::Identity;
use crate::endpoint::run::{self, Attached};
use crate::endpoint::{Endpoint, Lookup, WsAttach};
use crate::request::RequestInfo;
use crate::transport::{websocket, TransportSink};

pub(super) async fn websocket_connect<B: Send + 'static>(
    endpoint: Arc<Endpoint>,
    mut request: Request<B>,
) -> Response<ResponseBody> {
    let token = query_value(request.uri().query(), "id");
    let upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from(parts);
    let Some(principal) = authenticate(&endpoint, &info).await else {
        return unauthorized();
    };
    if let Some(refused) = refused(&endpoint, &principal, &info).await {
        return refused;
    }
    if let Some(token) = &token {
        if matches!(endpoint.lookup(token), Lookup::Unknown) {
            return no_connection();
        }
        if !same_user(&endpoint, token, &principal, &info) {
            return forbidden();
        }
    }
    if !endpoint.config.allows(TransportType::WebSockets) {
        return transport_disabled(TransportType::WebSockets);
    }
    let response = match websocket::accept_response(info.headers()) {
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
                            let (source, sink) = websocket::split(upgraded, ws_limits);
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

    let identity = Identity::new(principal);
    endpoint.bind_identity(&token, &identity);
    let attached = Box::new(Attached {
        connection_id,
        token,
        identity,
        request: info.detached(),
        transport: TransportType::WebSockets,
    });
    let task_endpoint = endpoint.clone();
    // The connection's task: it keeps only what it needs for its whole life (nothing of the
    // upgrade's result, no second copy of the token).
    endpoint.tasks.spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "the WebSocket upgrade failed");
                task_endpoint.release(&attached.token);
                return;
            }
        };
        let (source, sink) = websocket::split(upgraded, ws_limits);
        run::run(task_endpoint, attached, source, sink, session).await;
    });
    response.map(|()| Full::new(Bytes::new()).boxed())
}
