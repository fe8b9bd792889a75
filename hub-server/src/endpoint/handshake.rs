//! The handshake of a connection: read the request, pick the protocol, answer (after the
//! connection is registered) or reject.

use std::time::Duration;

use hub_core::negotiate::TransportType;
use hub_core::protocol::handshake::{HandshakeRequest, HandshakeResponse};
use hub_core::protocol::{FrameDecoder, Protocol, TransferFormat};
use hub_core::ProtocolError;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::transport::{TransportSink, TransportSource};

/// Reads the handshake request and returns the protocol and version chosen (the answer is sent
/// once the connection is registered); `None` when the connection ends here (rejected, timed out, gone or shutting down).
pub(super) async fn handshake<R: TransportSource, S: TransportSink>(
    endpoint: &Endpoint,
    transport: TransportType,
    source: &mut R,
    sink: &mut S,
    decoder: &mut FrameDecoder,
) -> Option<(Protocol, i64)> {
    let config = &endpoint.config;
    let transfer_format = match transport {
        TransportType::ServerSentEvents => TransferFormat::Text,
        TransportType::WebSockets | TransportType::LongPolling => TransferFormat::Binary,
    };
    let deadline = Instant::now() + config.handshake_timeout;
    let frame = loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => break frame,
            Ok(None) => {}
            Err(_) => {
                reject_handshake(sink, ProtocolError::HandshakeCanceled, config.send_timeout).await;
                return None;
            }
        }
        tokio::select! {
            chunk = source.next() => match chunk {
                Some(Ok(bytes)) => decoder.push(bytes),
                Some(Err(error)) => {
                    tracing::debug!(%error, "the transport failed before the handshake");
                    return None;
                }
                None => return None,
            },
            () = tokio::time::sleep_until(deadline) => {
                reject_handshake(sink, ProtocolError::HandshakeCanceled, config.send_timeout).await;
                return None;
            }
            () = endpoint.shutdown.cancelled() => {
                let _ = tokio::time::timeout(config.send_timeout, sink.close(false)).await;
                return None;
            }
        }
    };
    let (protocol, version) = match HandshakeRequest::parse(&frame).and_then(|request| {
        let protocol = request.select(&config.protocols, transfer_format)?;
        Ok((protocol, request.version))
    }) {
        Ok(selected) => selected,
        Err(error) => {
            reject_handshake(sink, error, config.send_timeout).await;
            return None;
        }
    };
    sink.set_protocol(protocol);
    Some((protocol, version))
}

/// Answers an accepted handshake; `false` (and the transport closed) when it cannot be sent.
pub(super) async fn accept_handshake<S: TransportSink>(
    sink: &mut S,
    send_timeout: Duration,
) -> bool {
    let mut accepted = Vec::new();
    HandshakeResponse::Accepted.encode(&mut accepted);
    match tokio::time::timeout(send_timeout, sink.send(accepted.into())).await {
        Ok(Ok(())) => true,
        _ => {
            let _ = tokio::time::timeout(send_timeout, sink.close(true)).await;
            false
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
