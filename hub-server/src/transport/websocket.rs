//! The WebSocket transport: hyper's upgrade, then tokio-tungstenite frames.
//!
//! Incoming frame types are ignored (the hub protocol decides how bytes are read; the JavaScript
//! client sends its handshake as text even for MessagePack). Outgoing frames are text for JSON and
//! binary for MessagePack, each holding only whole messages.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hub_core::protocol::Protocol;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::{TransportError, TransportSink, TransportSource, TrySend};

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Whether a request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    let has_token = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .map(|v| {
                    v.split(',')
                        .any(|part| part.trim().eq_ignore_ascii_case(token))
                })
                .unwrap_or(false)
        })
    };
    has_token(http::header::CONNECTION, "upgrade") && has_token(http::header::UPGRADE, "websocket")
}

/// The 101 response for a valid upgrade request, or the status to reject it with.
pub(crate) fn accept_response(headers: &HeaderMap) -> Result<Response<()>, StatusCode> {
    let version_ok = headers
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let key = headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .ok_or(StatusCode::BAD_REQUEST)?;
    if !version_ok {
        return Err(StatusCode::BAD_REQUEST);
    }
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        http::header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?,
    );
    Ok(response)
}

/// The WebSocket settings of a hub: one WebSocket message is limited to `max_message` bytes (the
/// hub protocol's own limit applies to each hub message inside); reads go through a buffer of
/// `read_buffer` bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsLimits {
    pub(crate) max_message: usize,
    pub(crate) read_buffer: usize,
}

/// Wraps an upgraded connection with the hub's WebSocket settings.
pub(crate) fn split(
    upgraded: Upgraded,
    limits: WsLimits,
) -> impl std::future::Future<Output = (WsSource, WsSink)> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message))
        .max_frame_size(Some(limits.max_message))
        .read_buffer_size(limits.read_buffer);
    async move {
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let (sink, stream) = socket.split();
        (
            WsSource { stream },
            WsSink {
                sink: Box::new(sink),
                binary: false,
            },
        )
    }
}

pub(crate) struct WsSource {
    stream: SplitStream<Socket>,
}

impl TransportSource for WsSource {
    async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        loop {
            return match self.stream.next().await? {
                Ok(Message::Text(text)) => Some(Ok(Bytes::from(text))),
                Ok(Message::Binary(bytes)) => Some(Ok(bytes)),
                Ok(Message::Close(_)) => None,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(error) => Some(Err(TransportError(error.to_string()))),
            };
        }
    }
}

pub(crate) struct WsSink {
    /// Boxed: the sink moves through a connection's task (and is kept there) several times.
    sink: Box<SplitSink<Socket, Message>>,
    binary: bool,
}

impl WsSink {
    /// A frame as a WebSocket message: binary for MessagePack, text for JSON.
    fn message(&self, frame: Bytes) -> Result<Message, TransportError> {
        Ok(if self.binary {
            Message::Binary(frame)
        } else {
            Message::Text(
                Utf8Bytes::try_from(frame)
                    .map_err(|_| TransportError("a text frame was not UTF-8".to_owned()))?,
            )
        })
    }
}

impl TransportSink for WsSink {
    fn set_protocol(&mut self, protocol: Protocol) {
        self.binary = protocol == Protocol::MessagePack;
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), TransportError> {
        let message = self.message(frame)?;
        self.sink
            .send(message)
            .await
            .map_err(|error| TransportError(error.to_string()))
    }

    fn try_send(&mut self, frame: Bytes) -> TrySend {
        // Polled once, with a waker that does nothing: what has to wait is left to `flush` (or,
        // handed back, to `send`), which the writer task awaits.
        let mut cx = Context::from_waker(Waker::noop());
        let mut sink = Pin::new(&mut *self.sink);
        match sink.as_mut().poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => return TrySend::Failed(TransportError(error.to_string())),
            Poll::Pending => return TrySend::Busy(frame),
        }
        let message = match self.message(frame) {
            Ok(message) => message,
            Err(error) => return TrySend::Failed(error),
        };
        let mut sink = Pin::new(&mut *self.sink);
        if let Err(error) = sink.as_mut().start_send(message) {
            return TrySend::Failed(TransportError(error.to_string()));
        }
        match sink.poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => TrySend::Sent,
            Poll::Ready(Err(error)) => TrySend::Failed(TransportError(error.to_string())),
            Poll::Pending => TrySend::Flushing,
        }
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        self.sink
            .flush()
            .await
            .map_err(|error| TransportError(error.to_string()))
    }

    async fn close(&mut self, internal_error: bool) {
        let code = if internal_error {
            CloseCode::Error
        } else {
            CloseCode::Normal
        };
        let _ = self
            .sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(""),
            })))
            .await;
        let _ = self.sink.close().await;
    }
}
