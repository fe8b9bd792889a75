//! The handshake of a connection: read the request, pick the protocol, answer (after the
//! connection is registered) or reject.

use std::time::Duration;

use hub_core::negotiate::TransportType;
use hub_core::protocol::handshake::{HandshakeRequest, HandshakeResponse};
use hub_core::protocol::{Close, FrameDecoder, HubProtocol, Protocol, TransferFormat};
use hub_core::ProtocolError;
use tokio::time::Instant;

use crate::config::ContractCheck;
use crate::endpoint::Endpoint;
use crate::transport::{TransportSink, TransportSource};

/// What a handshake request chose.
pub(super) struct Handshake {
    pub(super) protocol: Protocol,
    pub(super) version: i64,
    /// The contract hash a generated client presented.
    pub(super) contract: Option<String>,
}

/// Reads the handshake request and returns what it chose (the answer is sent once the
/// connection is registered); `None` when the connection ends here (rejected, timed out, gone,
/// shutting down, or a generated client of another contract that the hub refuses).
pub(super) async fn handshake<R: TransportSource, S: TransportSink>(
    endpoint: &Endpoint,
    transport: TransportType,
    source: &mut R,
    sink: &mut S,
    decoder: &mut FrameDecoder,
) -> Option<Handshake> {
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
            () = endpoint.shutdown.token().cancelled() => {
                let _ = tokio::time::timeout(config.send_timeout, sink.close(false)).await;
                return None;
            }
        }
    };
    let (protocol, request) = match HandshakeRequest::parse(&frame).and_then(|request| {
        let protocol = request.select(&config.protocols, transfer_format)?;
        Ok((protocol, request))
    }) {
        Ok(selected) => selected,
        Err(error) => {
            reject_handshake(sink, error, config.send_timeout).await;
            return None;
        }
    };
    sink.set_protocol(protocol);
    let handshake = Handshake {
        protocol,
        version: request.version,
        contract: request.contract,
    };
    if let Some(close) = contract_mismatch(endpoint, handshake.contract.as_deref()) {
        // Refused: the client learns why from a Close message after the handshake (it reads
        // messages only once the handshake is answered).
        refuse_after_handshake(sink, &handshake, endpoint, close).await;
        return None;
    }
    Some(handshake)
}

/// The Close a generated client of another contract gets, when the hub refuses it (and the
/// warning when it only logs it).
fn contract_mismatch(endpoint: &Endpoint, presented: Option<&str>) -> Option<Close> {
    let (Some(presented), Some(ours)) = (presented, endpoint.contract.as_deref()) else {
        return None;
    };
    if presented == ours {
        return None;
    }
    let hub = endpoint.hub.name().unwrap_or(&endpoint.path);
    let text = format!(
        "This client was generated from another version of the `{hub}` hub (client contract {presented}, server contract {ours}): regenerate the TypeScript client from the server's hub traits (`--emit-ts`) and rebuild the front end."
    );
    match endpoint.config.contract_check {
        ContractCheck::Accept => None,
        ContractCheck::Log => {
            tracing::warn!(
                hub,
                client = presented,
                server = ours,
                "a generated client of another contract connected; regenerate it"
            );
            None
        }
        ContractCheck::Refuse => {
            tracing::info!(
                hub,
                client = presented,
                server = ours,
                "a generated client of another contract was refused"
            );
            Some(Close {
                error: Some(text.into()),
                allow_reconnect: false,
            })
        }
    }
}

/// Answers the handshake, then sends `close` and closes the transport.
async fn refuse_after_handshake<S: TransportSink>(
    sink: &mut S,
    handshake: &Handshake,
    endpoint: &Endpoint,
    close: Close,
) {
    let send_timeout = endpoint.config.send_timeout;
    if accept_handshake(sink, send_timeout, handshake, endpoint).await {
        if let Ok(bytes) = handshake.protocol.encode_to_bytes(&close) {
            let _ = tokio::time::timeout(send_timeout, sink.send(bytes)).await;
        }
        let _ = tokio::time::timeout(send_timeout, sink.close(false)).await;
    }
}

/// Answers an accepted handshake; `false` (and the transport closed) when it cannot be sent. A
/// client that presented a contract learns the hub's (`{"contract":"…"}`); the others get `{}`.
pub(super) async fn accept_handshake<S: TransportSink>(
    sink: &mut S,
    send_timeout: Duration,
    handshake: &Handshake,
    endpoint: &Endpoint,
) -> bool {
    let mut accepted = Vec::new();
    match (&handshake.contract, &endpoint.contract) {
        (Some(_), Some(ours)) => {
            HandshakeResponse::encode_accepted_with_contract(ours, &mut accepted)
        }
        _ => HandshakeResponse::Accepted.encode(&mut accepted),
    }
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
