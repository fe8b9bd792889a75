//! The up-channel of the HTTP transports (Server-Sent Events and long polling): the client sends
//! with `POST {hub}?id=<token>`, each body holding one or more whole messages.
//!
//! Bodies are handed to the connection's [`HttpSource`] through a channel of one slot, in the order
//! the requests took the connection's send lock (a fair, first-come-first-served lock, as ASP.NET
//! Core's): concurrent POSTs queue rather than fail. A POST is answered once its bytes are in the
//! channel, so a client that sends faster than its connection reads waits for its POSTs' answers.
//! Memory per connection stays bounded: at most one body in the channel and one being read, each
//! at most the hub's request body limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{mpsc, Mutex};

use super::{TransportError, TransportSource};

/// Why a POST body was not delivered.
#[derive(Debug)]
pub(crate) enum DeliverError {
    /// The connection has ended (404).
    Closed,
    /// The body is larger than the limit (413).
    TooLarge,
    /// Reading the body failed, e.g. the client went away (400).
    Body(String),
}

/// Where the POSTs of one connection go.
#[derive(Debug)]
pub(crate) struct Inbound {
    sender: Mutex<mpsc::Sender<Bytes>>,
}

impl Inbound {
    /// A new up-channel and the receiving end for the connection's source.
    pub(crate) fn new() -> (Inbound, mpsc::Receiver<Bytes>) {
        let (sender, receiver) = mpsc::channel(1);
        (
            Inbound {
                sender: Mutex::new(sender),
            },
            receiver,
        )
    }

    /// Reads `body` (at most `limit` bytes) and hands it to the connection, after the POSTs that
    /// came first.
    pub(crate) async fn deliver<B>(&self, body: B, limit: usize) -> Result<(), DeliverError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let sender = self.sender.lock().await;
        if sender.is_closed() {
            return Err(DeliverError::Closed);
        }
        let mut collect = std::pin::pin!(Limited::new(body, limit).collect());
        // Most bodies have arrived with their request; one that trickles in must not outlive its
        // connection (or delay shutdown).
        let collected = match futures_util::FutureExt::now_or_never(collect.as_mut()) {
            Some(collected) => collected,
            None => tokio::select! {
                collected = collect => collected,
                () = sender.closed() => return Err(DeliverError::Closed),
            },
        };
        let bytes = match collected {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(DeliverError::TooLarge)
            }
            Err(error) => return Err(DeliverError::Body(error.to_string())),
        };
        if bytes.is_empty() {
            return Ok(());
        }
        sender.send(bytes).await.map_err(|_| DeliverError::Closed)
    }
}

/// That the client of an HTTP transport is gone: its event stream closed, it sent DELETE, or it
/// stopped polling. A flag, cheap to look at on every send and poll, and a wake-up for the
/// connection's source, which then ends.
#[derive(Debug, Default)]
pub(crate) struct Gone {
    gone: AtomicBool,
    source: AtomicWaker,
}

impl Gone {
    /// Whether the client is gone.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// The client is gone: the source ends.
    pub(crate) fn set(&self) {
        self.gone.store(true, Ordering::Release);
        self.source.wake();
    }

    /// Ready once the client is gone; otherwise `cx` is woken when it goes.
    fn poll_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_gone() {
            return Poll::Ready(());
        }
        self.source.register(cx.waker());
        if self.is_gone() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Marks the client gone when dropped (with an event stream's body).
#[derive(Debug)]
pub(crate) struct GoneOnDrop(pub(crate) Arc<Gone>);

impl Drop for GoneOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// The receiving half of an HTTP transport: POST bodies, in order, until the client is gone.
pub(crate) struct HttpSource {
    receiver: mpsc::Receiver<Bytes>,
    gone: Arc<Gone>,
    /// Set when it is gone because it stopped polling (long polling only).
    expired: Option<Arc<AtomicBool>>,
}

impl HttpSource {
    pub(crate) fn new(
        receiver: mpsc::Receiver<Bytes>,
        gone: Arc<Gone>,
        expired: Option<Arc<AtomicBool>>,
    ) -> Self {
        HttpSource {
            receiver,
            gone,
            expired,
        }
    }
}

impl TransportSource for HttpSource {
    async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        // What was sent before the client went is read first.
        std::future::poll_fn(|cx| match self.receiver.poll_recv(cx) {
            Poll::Ready(chunk) => Poll::Ready(chunk.map(Ok)),
            Poll::Pending => self.gone.poll_gone(cx).map(|()| None),
        })
        .await
    }

    fn timed_out(&self) -> bool {
        self.expired
            .as_ref()
            .is_some_and(|expired| expired.load(Ordering::Acquire))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_source_reads_what_was_sent_then_ends_when_its_client_is_gone() {
        let (inbound, receiver) = Inbound::new();
        let gone = Arc::new(Gone::default());
        let mut source = HttpSource::new(receiver, gone.clone(), None);
        inbound
            .deliver(
                http_body_util::Full::new(Bytes::from_static(b"first")),
                1024,
            )
            .await
            .unwrap();
        // A source waiting for more is woken when the client goes.
        let reader = tokio::spawn(async move {
            let first = source.next().await.unwrap().unwrap();
            (first, source.next().await.is_none())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!reader.is_finished());
        gone.set();
        let (first, ended) = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the waiting source is woken")
            .unwrap();
        assert_eq!(first, Bytes::from_static(b"first"));
        assert!(ended);
        drop(GoneOnDrop(gone.clone()));
        assert!(gone.is_gone());
    }
}
