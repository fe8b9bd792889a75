//! One WebSocket, driven directly: tungstenite's protocol state over the upgraded connection,
//! shared by the connection's reads and writes.
//!
//! tokio-tungstenite registers the caller's waker in two waker proxies on every poll, and
//! splitting its stream puts a `BiLock` in front of every read and write. Here the socket sits
//! behind a plain mutex, held for one non-blocking call into tungstenite, and each poll registers
//! the polling task's own waker with the socket — the connection's task reads, and writes unless
//! a stateful-reconnect connection's writer task does.
//!
//! Only one case needs more: tungstenite writes while it reads (the Pong to a Ping, the reply to a
//! Close), and tokio keeps one waker per direction. When such a reply has to wait for the client
//! while a writer task waits to write too, the reply waits with a [`ReplyWaker`], which wakes
//! both: whichever runs first flushes everything tungstenite holds.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{
    CloseFrame, Role, WebSocketConfig, WebSocketContext,
};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::transport::TransportError;

/// A WebSocket shared by its reading and writing halves.
pub(super) struct SharedSocket<T>(Arc<Mutex<Socket<T>>>);

impl<T> Clone for SharedSocket<T> {
    fn clone(&self) -> Self {
        SharedSocket(self.0.clone())
    }
}

/// The socket and the protocol state, as the holder of the lock sees them.
pub(super) struct Socket<T> {
    io: T,
    protocol: WebSocketContext,
    /// The waker of the last write that had to wait: a reply written while reading wakes it too.
    writer: Option<Waker>,
    /// Made the first time a reply written while reading has to wait.
    replies: Option<Arc<ReplyWaker>>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> SharedSocket<T> {
    /// A server's WebSocket over `io`, whose upgrade is done.
    pub(super) fn new(io: T, config: WebSocketConfig) -> Self {
        SharedSocket(Arc::new(Mutex::new(Socket {
            io,
            protocol: WebSocketContext::new(Role::Server, Some(config)),
            writer: None,
            replies: None,
        })))
    }

    /// The socket, for one non-blocking call. A panic inside tungstenite while the lock was held
    /// leaves its state unknown: the socket is then failed for both halves.
    pub(super) fn lock(&self) -> Result<MutexGuard<'_, Socket<T>>, TransportError> {
        self.0
            .lock()
            .map_err(|_| TransportError("the WebSocket failed earlier".to_owned()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Socket<T> {
    /// The next message from the client; `Ready(None)` once the socket is closed. Sends what
    /// tungstenite has to answer (Pongs, the Close reply) on the way.
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>> {
        let mut reading = Reading {
            io: &mut self.io,
            cx,
            writer: &self.writer,
            replies: &mut self.replies,
        };
        match self.protocol.read(&mut reading) {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    /// Hands `message` to tungstenite, which writes it as far as the socket takes it without
    /// waiting; [`poll_flush`](Self::poll_flush) writes the rest.
    pub(super) fn start_send(&mut self, message: Message) -> Result<(), WsError> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut writing = Writing {
            io: &mut self.io,
            cx: &mut cx,
        };
        match self.protocol.write(&mut writing, message) {
            // Taken: what the socket did not take waits in tungstenite's buffer.
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Writes what tungstenite holds. `cx` is woken when the socket takes more.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let result = {
            let mut writing = Writing {
                io: &mut self.io,
                cx,
            };
            self.protocol.flush(&mut writing)
        };
        self.settle(result, cx)
    }

    /// Sends a Close frame with `frame` (once) and writes what tungstenite holds.
    pub(super) fn poll_close(
        &mut self,
        frame: &CloseFrame,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WsError>> {
        let result = {
            let mut writing = Writing {
                io: &mut self.io,
                cx,
            };
            // After the first call (or the client's Close) this only flushes.
            self.protocol.close(&mut writing, Some(frame.clone()))
        };
        self.settle(result, cx)
    }

    /// What a write's result means for the writer: a write that has to wait keeps `cx`'s waker
    /// for a reply to wake; a socket closed by the handshake's end has nothing left to write.
    fn settle(
        &mut self,
        result: Result<(), WsError>,
        cx: &Context<'_>,
    ) -> Poll<Result<(), WsError>> {
        match result {
            Ok(()) | Err(WsError::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                let waker = cx.waker();
                if !self.writer.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    self.writer = Some(waker.clone());
                }
                if let Some(replies) = &self.replies {
                    replies.writer.register(waker);
                }
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

/// Wakes both the reader, whose reply (a Pong, a Close) waits to be written, and the writer that
/// last waited: tokio wakes one waker per direction.
#[derive(Default)]
pub(super) struct ReplyWaker {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Wake for ReplyWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reader.wake();
        self.writer.wake();
    }
}

/// The socket as tungstenite's blocking `Read + Write` while reading: reads register the
/// reader's waker; writes (replies) register a [`ReplyWaker`].
struct Reading<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
    writer: &'a Option<Waker>,
    replies: &'a mut Option<Arc<ReplyWaker>>,
}

impl<T> Reading<'_, '_, T> {
    /// The waker a reply waits with: wakes this reader and the writer that last waited.
    fn reply_waker(&mut self) -> Waker {
        let replies = self.replies.get_or_insert_with(|| {
            let replies = Arc::new(ReplyWaker::default());
            if let Some(writer) = self.writer {
                replies.writer.register(writer);
            }
            replies
        });
        replies.reader.register(self.cx.waker());
        Waker::from(replies.clone())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Read for Reading<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(error)) => Err(error),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Write for Reading<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let waker = self.reply_waker();
        let mut cx = Context::from_waker(&waker);
        would_block(Pin::new(&mut *self.io).poll_write(&mut cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        let waker = self.reply_waker();
        let mut cx = Context::from_waker(&waker);
        would_block(Pin::new(&mut *self.io).poll_flush(&mut cx))
    }
}

/// The socket as tungstenite's blocking `Read + Write` while writing: writes register the
/// writer's waker. tungstenite does not read while writing.
struct Writing<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
}

impl<T> Read for Writing<'_, '_, T> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl<T: AsyncWrite + Unpin> Write for Writing<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        would_block(Pin::new(&mut *self.io).poll_write(self.cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        would_block(Pin::new(&mut *self.io).poll_flush(self.cx))
    }
}

/// A poll as a blocking call's result: `Pending` is `WouldBlock`.
fn would_block<R>(poll: Poll<io::Result<R>>) -> io::Result<R> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}
