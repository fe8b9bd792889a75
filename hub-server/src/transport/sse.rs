//! Server-Sent Events: `GET {hub}?id=<token>` with `Accept: text/event-stream` opens a streaming
//! response that carries the server's messages; the client sends with POST (see [`super::http`]).
//!
//! The response starts with the comment `:\r\n` (browsers fire `open` on it, and the JavaScript
//! client sends its handshake only then). Each transport frame (one or more whole messages) then
//! becomes one event: every line of the payload prefixed with `data: ` and ended with `\r\n`, then
//! a blank line. Text only. The connection ends by finishing the response; a client that closes
//! its event stream ends the connection.
//!
//! Memory stays bounded: the response body is fed by a channel of one frame, so the connection's
//! writer waits for hyper to take each event (and gives up after the hub's send timeout).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;
use hub_core::protocol::Protocol;
use tokio::sync::mpsc;

use super::http::{Gone, GoneOnDrop};
use super::{TransportError, TransportSink, TrySend};

/// The first bytes of every event stream: a comment, so that the client sees the stream open.
const OPENING: &[u8] = b":\r\n";

/// Whether a GET asks for an event stream (its `Accept` header lists `text/event-stream`): this is
/// what tells Server-Sent Events from a long poll.
pub(crate) fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Formats one payload as one event, as ASP.NET Core's `ServerSentEventsMessageFormatter`:
/// each `\n`-separated line (a trailing `\r` dropped) as `data: <line>\r\n`, then `\r\n`.
pub(crate) fn format_event(payload: &[u8]) -> Bytes {
    let mut event = BytesMut::with_capacity(payload.len() + 10);
    if !payload.is_empty() {
        for line in payload.split(|&b| b == b'\n') {
            let line = match line {
                [rest @ .., b'\r'] if !rest.is_empty() => rest,
                line => line,
            };
            event.put_slice(b"data: ");
            event.put_slice(line);
            event.put_slice(b"\r\n");
        }
    }
    event.put_slice(b"\r\n");
    event.freeze()
}

/// Opens an event stream: the response body and the sink that feeds it. `gone` fires when the
/// body is dropped (the client went away, or the response finished).
pub(crate) fn open(gone: Arc<Gone>) -> (SseBody, SseSink) {
    let (sender, receiver) = mpsc::channel(1);
    (
        SseBody {
            opening: Some(Bytes::from_static(OPENING)),
            receiver,
            _gone: GoneOnDrop(gone),
        },
        SseSink {
            sender: Some(sender),
        },
    )
}

/// The streaming body of an event-stream response.
pub(crate) struct SseBody {
    opening: Option<Bytes>,
    receiver: mpsc::Receiver<Bytes>,
    _gone: GoneOnDrop,
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(opening) = this.opening.take() {
            return Poll::Ready(Some(Ok(Frame::data(opening))));
        }
        this.receiver
            .poll_recv(cx)
            .map(|event| event.map(|event| Ok(Frame::data(event))))
    }
}

/// The sending half: frames become events of the response body.
pub(crate) struct SseSink {
    /// `None` once closed: the response is finished.
    sender: Option<mpsc::Sender<Bytes>>,
}

impl TransportSink for SseSink {
    fn set_protocol(&mut self, _protocol: Protocol) {}

    async fn send(&mut self, frame: Bytes) -> Result<(), TransportError> {
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| TransportError("the event stream is closed".to_owned()))?;
        sender
            .send(format_event(&frame))
            .await
            .map_err(|_| TransportError("the client closed the event stream".to_owned()))
    }

    fn try_send(&mut self, frame: Bytes) -> TrySend {
        let Some(sender) = &self.sender else {
            return TrySend::Failed(TransportError("the event stream is closed".to_owned()));
        };
        match sender.try_reserve() {
            Ok(permit) => {
                permit.send(format_event(&frame));
                TrySend::Sent
            }
            Err(mpsc::error::TrySendError::Full(())) => TrySend::Busy(frame),
            Err(mpsc::error::TrySendError::Closed(())) => TrySend::Failed(TransportError(
                "the client closed the event stream".to_owned(),
            )),
        }
    }

    async fn close(&mut self, _internal_error: bool) {
        self.sender = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_without_newlines_is_one_data_line() {
        assert_eq!(
            &format_event(b"{\"type\":6}\x1e")[..],
            b"data: {\"type\":6}\x1e\r\n\r\n"
        );
    }

    #[test]
    fn every_line_gets_a_data_prefix() {
        assert_eq!(
            &format_event(b"a\nb\r\nc")[..],
            b"data: a\r\ndata: b\r\ndata: c\r\n\r\n"
        );
        assert_eq!(&format_event(b"a\n")[..], b"data: a\r\ndata: \r\n\r\n");
        assert_eq!(&format_event(b"")[..], b"\r\n");
    }

    #[test]
    fn the_accept_header_decides() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_event_stream(&headers));
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("text/html, Text/Event-Stream; q=0.9"),
        );
        assert!(accepts_event_stream(&headers));
        headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("*/*"));
        assert!(!accepts_event_stream(&headers));
    }
}
