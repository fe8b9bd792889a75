//! The WebSocket transport: hyper's upgrade, then tungstenite's frames over the upgraded
//! connection, driven by [`socket`].
//!
//! Incoming frame types are ignored (the hub protocol decides how bytes are read; the JavaScript
//! client sends its handshake as text even for MessagePack). Outgoing frames are text for JSON and
//! binary for MessagePack, each holding only whole messages.

mod socket;

use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hub_core::protocol::Protocol;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use self::socket::SharedSocket;
use super::{TransportError, TransportSink, TransportSource, TrySend};

/// The connection a WebSocket runs over, once upgraded.
type Io = TokioIo<Upgraded>;

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

/// The reading and writing halves of an upgraded connection, with the hub's WebSocket settings.
pub(crate) fn split(upgraded: Upgraded, limits: WsLimits) -> (WsSource, WsSink) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message))
        .max_frame_size(Some(limits.max_message))
        .read_buffer_size(limits.read_buffer);
    halves(SharedSocket::new(TokioIo::new(upgraded), config))
}

/// The two halves of one socket.
fn halves<T>(socket: SharedSocket<T>) -> (WsSource<T>, WsSink<T>) {
    (
        WsSource {
            socket: socket.clone(),
            ended: false,
        },
        WsSink {
            socket,
            binary: false,
        },
    )
}

/// The reading half of a WebSocket.
pub(crate) struct WsSource<T = Io> {
    socket: SharedSocket<T>,
    /// The socket closed or failed: nothing more is read.
    ended: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> WsSource<T> {
    /// The next data message's payload; control messages are answered (by tungstenite) and
    /// skipped.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, TransportError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut socket = match self.socket.lock() {
            Ok(socket) => socket,
            Err(error) => {
                self.ended = true;
                return Poll::Ready(Some(Err(error)));
            }
        };
        loop {
            let message = match socket.poll_read(cx) {
                Poll::Ready(Some(Ok(message))) => message,
                Poll::Ready(Some(Err(error))) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(TransportError(error.to_string()))));
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            };
            return Poll::Ready(match message {
                Message::Text(text) => Some(Ok(Bytes::from(text))),
                Message::Binary(bytes) => Some(Ok(bytes)),
                Message::Close(_) => {
                    self.ended = true;
                    None
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            });
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> TransportSource for WsSource<T> {
    async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

/// The writing half of a WebSocket.
pub(crate) struct WsSink<T = Io> {
    socket: SharedSocket<T>,
    binary: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> WsSink<T> {
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

    /// Writes what tungstenite holds, waiting for the client as long as it takes.
    async fn flush_socket(&self) -> Result<(), TransportError> {
        std::future::poll_fn(|cx| self.socket.lock()?.poll_flush(cx).map_err(failed)).await
    }
}

/// A tungstenite error as a transport error.
fn failed(error: WsError) -> TransportError {
    TransportError(error.to_string())
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> TransportSink for WsSink<T> {
    fn set_protocol(&mut self, protocol: Protocol) {
        self.binary = protocol == Protocol::MessagePack;
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), TransportError> {
        let message = self.message(frame)?;
        // What an earlier write left goes first.
        self.flush_socket().await?;
        self.socket.lock()?.start_send(message).map_err(failed)?;
        self.flush_socket().await
    }

    fn try_send(&mut self, frame: Bytes) -> TrySend {
        let message = match self.message(frame) {
            Ok(message) => message,
            Err(error) => return TrySend::Failed(error),
        };
        let mut socket = match self.socket.lock() {
            Ok(socket) => socket,
            Err(error) => return TrySend::Failed(error),
        };
        if let Err(error) = socket.start_send(message) {
            return TrySend::Failed(failed(error));
        }
        // Polled once, with a waker that does nothing: what has to wait is left to `flush`, which
        // the writer awaits.
        match socket.poll_flush(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => TrySend::Sent,
            Poll::Ready(Err(error)) => TrySend::Failed(failed(error)),
            Poll::Pending => TrySend::Flushing,
        }
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        self.flush_socket().await
    }

    async fn close(&mut self, internal_error: bool) {
        let frame = CloseFrame {
            code: if internal_error {
                CloseCode::Error
            } else {
                CloseCode::Normal
            },
            reason: Utf8Bytes::from_static(""),
        };
        let closed = std::future::poll_fn(|cx| match self.socket.lock() {
            Ok(mut socket) => socket.poll_close(&frame, cx).map_err(failed),
            Err(error) => Poll::Ready(Err(error)),
        })
        .await;
        if let Err(error) = closed {
            tracing::debug!(%error, "the WebSocket's Close frame was not sent");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::WebSocketStream;

    use super::*;

    /// The server's halves over an in-memory pipe holding at most `capacity` bytes each way, and
    /// the client's end.
    async fn pair(
        capacity: usize,
    ) -> (
        WsSource<tokio::io::DuplexStream>,
        WsSink<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (server, client) = tokio::io::duplex(capacity);
        let (source, sink) = halves(SharedSocket::new(server, WebSocketConfig::default()));
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (source, sink, client)
    }

    #[tokio::test]
    async fn frames_go_both_ways_and_a_ping_is_answered() {
        let (mut source, mut sink, mut client) = pair(1024).await;
        client.send(Message::text("hello")).await.unwrap();
        client
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        client
            .send(Message::binary(&b"\x01\x02"[..]))
            .await
            .unwrap();
        assert_eq!(
            source.next().await.unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            source.next().await.unwrap().unwrap(),
            Bytes::from_static(b"\x01\x02")
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Pong(Bytes::from_static(b"p"))
        );
        sink.send(Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("{}"));
        sink.set_protocol(Protocol::MessagePack);
        assert!(matches!(
            sink.try_send(Bytes::from_static(b"\x90")),
            TrySend::Sent
        ));
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::binary(&b"\x90"[..])
        );
        sink.close(false).await;
        match client.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("expected a Close frame, got {other:?}"),
        }
        // The client's reply ends the server's reads.
        drop(client);
        assert!(source.next().await.is_none_or(|read| read.is_err()));
    }

    /// A writer task waits for room while the reader's Pong has to wait too: tokio keeps one
    /// waker per direction, so the Pong's wait must not take the writer's wake-up away.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_pong_does_not_strand_a_waiting_writer() {
        let (mut source, mut sink, client) = pair(64).await;
        let (mut client_sink, mut client_stream) = client.split();
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });
        let writer = tokio::spawn(async move { sink.send(Bytes::from(vec![b'x'; 4096])).await });
        // The writer fills the pipe and waits; then the Ping arrives and its Pong waits as well.
        tokio::time::sleep(Duration::from_millis(100)).await;
        client_sink
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The client reads: the frame, then the Pong.
        let frame = client_stream.next().await.unwrap().unwrap();
        assert_eq!(frame.len(), 4096);
        let pong = client_stream.next().await.unwrap().unwrap();
        assert_eq!(pong, Message::Pong(Bytes::from_static(b"p")));
        tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the writer is woken once its frame is written")
            .unwrap()
            .unwrap();
        reader.abort();
    }
}
