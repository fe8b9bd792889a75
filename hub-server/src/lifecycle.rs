//! A connection's life on any transport: handshake → register → read and dispatch → teardown.
//!
//! bytes → [`FrameDecoder`] (size-limited) → handshake → [`HubProtocol::decode`] → [`Dispatcher`]
//! → hub method → Completion → the connection's queue → writer task → transport.

use std::sync::Arc;
use std::time::Duration;

use hub_core::negotiate::TransportType;
use hub_core::protocol::handshake::{HandshakeRequest, HandshakeResponse};
use hub_core::protocol::{Close, FrameDecoder, Framing, HubMessage, HubProtocol, TransferFormat};
use hub_core::ProtocolError;
use tokio::time::Instant;
use tracing::Instrument;

use crate::connection::{Connection, ConnectionParts, WriterConfig};
use crate::dispatch::{Dispatcher, Flow};
use crate::endpoint::Endpoint;
use crate::lifetime::ConnectionHandle;
use crate::request::{Principal, RequestInfo};
use crate::transport::{TransportSink, TransportSource};

/// A transport attached to a connection token.
pub(crate) struct Attached {
    pub(crate) connection_id: Arc<str>,
    pub(crate) token: String,
    pub(crate) principal: Principal,
    pub(crate) request: RequestInfo,
    pub(crate) transport: TransportType,
}

/// Runs a connection until it ends. Returns when its transport is closed.
pub(crate) async fn run<R: TransportSource, S: TransportSink>(
    endpoint: Arc<Endpoint>,
    attached: Attached,
    source: R,
    sink: S,
) {
    let span = tracing::info_span!(
        "connection",
        connection_id = %attached.connection_id,
        transport = ?attached.transport,
    );
    let token = attached.token.clone();
    run_inner(endpoint.clone(), attached, source, sink)
        .instrument(span)
        .await;
    endpoint.release(&token);
}

async fn run_inner<R: TransportSource, S: TransportSink>(
    endpoint: Arc<Endpoint>,
    attached: Attached,
    mut source: R,
    mut sink: S,
) {
    let config = &endpoint.config;
    let mut decoder = FrameDecoder::new(Framing::TextRecords, config.max_message_size);

    // ----- handshake -----
    let transfer_format = match attached.transport {
        TransportType::ServerSentEvents => TransferFormat::Text,
        TransportType::WebSockets | TransportType::LongPolling => TransferFormat::Binary,
    };
    let deadline = Instant::now() + config.handshake_timeout;
    let frame = loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => break frame,
            Ok(None) => {}
            Err(_) => {
                return reject_handshake(
                    &mut sink,
                    ProtocolError::HandshakeCanceled,
                    config.send_timeout,
                )
                .await
            }
        }
        tokio::select! {
            chunk = source.next() => match chunk {
                Some(Ok(bytes)) => decoder.push(bytes),
                Some(Err(error)) => {
                    tracing::debug!(%error, "the transport failed before the handshake");
                    return;
                }
                None => return,
            },
            () = tokio::time::sleep_until(deadline) => {
                return reject_handshake(&mut sink, ProtocolError::HandshakeCanceled, config.send_timeout).await;
            }
            () = endpoint.shutdown.cancelled() => {
                let _ = tokio::time::timeout(config.send_timeout, sink.close(false)).await;
                return;
            }
        }
    };
    let protocol = match HandshakeRequest::parse(&frame)
        .and_then(|r| r.select(&config.protocols, transfer_format))
    {
        Ok(protocol) => protocol,
        Err(error) => return reject_handshake(&mut sink, error, config.send_timeout).await,
    };
    sink.set_protocol(protocol);
    let mut accepted = Vec::new();
    HandshakeResponse::Accepted.encode(&mut accepted);
    match tokio::time::timeout(config.send_timeout, sink.send(accepted.into())).await {
        Ok(Ok(())) => {}
        _ => {
            let _ = tokio::time::timeout(config.send_timeout, sink.close(true)).await;
            return;
        }
    }
    decoder.set_framing(protocol.framing());
    tracing::debug!(protocol = protocol.name(), "handshake accepted");

    // ----- register -----
    let user_id = endpoint
        .user_ids
        .user_id(&attached.principal, &attached.request);
    let (connection, outbox) = Connection::new(ConnectionParts {
        id: attached.connection_id,
        send_timeout: config.send_timeout,
        user_id: user_id.map(Arc::from),
        principal: attached.principal,
        request: attached.request,
        transport: attached.transport,
        protocol,
        queue_capacity: config.outbound_queue_capacity,
    });
    endpoint.manager.add_connection(ConnectionHandle {
        inner: connection.clone(),
    });
    let writer = endpoint.tasks.spawn(
        crate::connection::write_loop(
            connection.clone(),
            outbox,
            sink,
            WriterConfig {
                keep_alive: (attached.transport != TransportType::LongPolling)
                    .then_some(config.keep_alive_interval),
                send_timeout: config.send_timeout,
            },
        )
        .in_current_span(),
    );
    let mut dispatcher = Dispatcher::new(endpoint.clone(), connection.clone());

    if let Err(error) = endpoint.hub.on_connected(dispatcher.context()).await {
        tracing::warn!(%error, "the on-connected hook failed; closing the connection");
        connection.end(
            Close {
                error: Some(Close::ERROR_TEXT.into()),
                allow_reconnect: false,
            },
            Some(error.to_string()),
        );
    } else {
        read_loop(
            &endpoint,
            &connection,
            &mut dispatcher,
            &mut decoder,
            &mut source,
        )
        .await;
    }

    // ----- teardown -----
    dispatcher.finish(endpoint.shutdown.is_cancelled()).await;
    endpoint.manager.remove_connection(&connection.id);
    let error = connection.ending().and_then(|ending| ending.error);
    endpoint
        .hub
        .on_disconnected(dispatcher.context(), error)
        .await;
    let _ = writer.await;
    tracing::debug!("connection ended");
}

/// Reads and dispatches until the connection ends.
async fn read_loop<R: TransportSource>(
    endpoint: &Endpoint,
    connection: &Connection,
    dispatcher: &mut Dispatcher,
    decoder: &mut FrameDecoder,
    source: &mut R,
) {
    let client_timeout = endpoint.config.client_timeout;
    let mut timeout_armed = false;
    loop {
        // Dispatch every whole message received so far.
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => return dispatcher.protocol_violation(&error),
            };
            match connection.protocol.decode(frame) {
                Ok(Some(message)) => {
                    timeout_armed |= matches!(message, HubMessage::Ping);
                    if dispatcher.handle(message).await == Flow::ClientClosed {
                        connection.end(Close::new(), None);
                        return;
                    }
                }
                Ok(None) => {}
                Err(error) => return dispatcher.protocol_violation(&error),
            }
        }
        // Time spent waiting for our own invocation slots is not client silence.
        let idle_deadline = Instant::now() + client_timeout;
        let client_timeout_elapsed = async {
            if timeout_armed && connection.transport != TransportType::LongPolling {
                tokio::time::sleep_until(idle_deadline).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            () = connection.closing().cancelled() => return,
            () = endpoint.shutdown.cancelled() => return,
            () = client_timeout_elapsed => {
                tracing::debug!(?client_timeout, "closing a connection whose client went silent");
                connection.end(Close::with_error(), Some(format!("The client sent nothing for {client_timeout:?}.")));
                return;
            }
            chunk = source.next() => match chunk {
                Some(Ok(bytes)) => decoder.push(bytes),
                Some(Err(error)) => {
                    connection.end(Close::with_error(), Some(format!("The transport failed: {error}")));
                    return;
                }
                None => {
                    connection.end(Close::new(), None);
                    return;
                }
            },
        }
    }
}

/// Sends the handshake error response and closes, each step bounded by `send_timeout`.
async fn reject_handshake<S: TransportSink>(
    sink: &mut S,
    error: ProtocolError,
    send_timeout: Duration,
) {
    tracing::debug!(%error, "handshake rejected");
    let mut response = Vec::new();
    HandshakeResponse::rejected(&error).encode(&mut response);
    let sent = matches!(
        tokio::time::timeout(send_timeout, sink.send(response.into())).await,
        Ok(Ok(()))
    );
    let _ = tokio::time::timeout(send_timeout, sink.close(!sent)).await;
}
