//! A connection of a connection endpoint (no hub protocol): the transport's bytes to the
//! handler ([`RawConnection::recv`]) and the handler's bytes to the transport, until the client
//! goes away, the handler returns, or the server shuts down.
//!
//! One task moves both directions; it never waits on one while the other could be stuck behind
//! it: a chunk the handler has no room for yet is held while the handler's output keeps flowing.

use std::sync::Arc;

use bytes::Bytes;
use hub_core::protocol::Protocol;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::endpoint::run::Attached;
use crate::endpoint::Endpoint;
use crate::handler::{ConnectionHandler, Outgoing, RawConnection};
use crate::transport::{TransportSink, TransportSource};

/// How many chunks of the client's bytes wait for the handler before the transport stops
/// reading.
const INCOMING_CHUNKS: usize = 16;

/// Runs `handler` for one connection until it ends.
pub(crate) async fn run<R: TransportSource, S: TransportSink>(
    endpoint: &Arc<Endpoint>,
    attached: Attached,
    mut source: R,
    mut sink: S,
    handler: Arc<dyn ConnectionHandler>,
) {
    let (incoming, handler_incoming) = mpsc::channel::<Bytes>(INCOMING_CHUNKS);
    let (handler_outgoing, mut outgoing) =
        mpsc::channel::<Outgoing>(endpoint.config.outbound_queue_capacity.max(1));
    let connection = RawConnection::new(
        attached.connection_id,
        attached.transport,
        attached.request,
        attached.identity.principal(),
        handler_incoming,
        handler_outgoing,
    );
    let returned = CancellationToken::new();
    let handler_returned = returned.clone();
    endpoint.tasks.spawn(async move {
        handler.on_connected(connection).await;
        handler_returned.cancel();
    });
    tracing::debug!("connection handler started");

    let mut incoming = Some(incoming);
    let mut held: Option<Bytes> = None;
    let mut frames = Frames::Text;
    loop {
        tokio::select! {
            chunk = source.next(), if incoming.is_some() && held.is_none() => match chunk {
                Some(Ok(bytes)) => {
                    if let Some(sender) = &incoming {
                        match sender.try_send(bytes) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(bytes)) => held = Some(bytes),
                            // The handler stopped reading: what the client sends is dropped.
                            Err(mpsc::error::TrySendError::Closed(_)) => {}
                        }
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(%error, "the transport failed");
                    break;
                }
                None => {
                    tracing::debug!("the client closed the connection");
                    break;
                }
            },
            permit = reserve(incoming.clone()), if held.is_some() => {
                match (permit, held.take()) {
                    (Some(permit), Some(bytes)) => {
                        permit.send(bytes);
                    }
                    _ => incoming = None,
                }
            }
            message = outgoing.recv() => match message {
                Some(message) => {
                    if !write(&mut sink, &mut frames, message).await {
                        break;
                    }
                }
                // Every sender is gone: the handler returned.
                None => break,
            },
            () = returned.cancelled() => {
                // The handler returned: what it sent before goes out, then the connection ends.
                while let Ok(message) = outgoing.try_recv() {
                    if !write(&mut sink, &mut frames, message).await {
                        break;
                    }
                }
                break;
            }
            () = endpoint.shutdown.token().cancelled() => {
                tracing::debug!("closing a handler's connection: the server is shutting down");
                break;
            }
        }
    }
    // The handler's `recv` gives `None` from now on, and its sends fail.
    drop(incoming);
    drop(outgoing);
    sink.close(false).await;
}

/// Room for one chunk in the handler's queue; `None` when the handler dropped it.
async fn reserve(sender: Option<mpsc::Sender<Bytes>>) -> Option<mpsc::OwnedPermit<Bytes>> {
    sender?.reserve_owned().await.ok()
}

/// Which WebSocket frames carry what the handler sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frames {
    /// Text frames for UTF-8 bytes, binary ones for the rest (a text frame must be UTF-8).
    Text,
    /// Binary frames ([`RawConnection::use_binary_frames`]).
    Binary,
}

/// Writes one thing the handler sent; false when the transport failed.
async fn write<S: TransportSink>(sink: &mut S, frames: &mut Frames, message: Outgoing) -> bool {
    match message {
        Outgoing::Data(bytes) => {
            // The sink sends binary WebSocket frames for a binary protocol, text ones otherwise
            // (other transports ignore it).
            let binary = *frames == Frames::Binary || std::str::from_utf8(&bytes).is_err();
            sink.set_protocol(if binary {
                Protocol::MessagePack
            } else {
                Protocol::Json
            });
            match sink.send(bytes).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::debug!(%error, "writing to the client failed");
                    false
                }
            }
        }
        Outgoing::Binary(binary) => {
            *frames = if binary { Frames::Binary } else { Frames::Text };
            true
        }
    }
}
