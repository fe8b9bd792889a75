//! `ref-http`: the physical limit for S4, on the same hyper/hyper-util server stack as the hub.
//!
//! `POST /send?id=X` queues its body for connection `X` (200, empty); `GET /sse?id=X` streams
//! every queued body as one Server-Sent Event (`data: …\r\n\r\n`, after a `:\r\n` comment, as the
//! hub does); `GET /poll?id=X` answers with everything queued, waiting for at least one body.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;

/// One connection's queue; the receiver is taken by the SSE stream or by each poll in turn.
struct Queue {
    sender: mpsc::Sender<Bytes>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Bytes>>>,
}

#[derive(Clone, Default)]
struct State {
    queues: Arc<Mutex<HashMap<String, Queue>>>,
}

impl State {
    fn queue(
        &self,
        id: &str,
    ) -> (
        mpsc::Sender<Bytes>,
        Arc<tokio::sync::Mutex<mpsc::Receiver<Bytes>>>,
    ) {
        let mut queues = match self.queues.lock() {
            Ok(queues) => queues,
            Err(poisoned) => poisoned.into_inner(),
        };
        let queue = queues.entry(id.to_owned()).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(1024);
            Queue {
                sender,
                receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
            }
        });
        (queue.sender.clone(), queue.receiver.clone())
    }
}

/// Serves until killed.
pub(crate) async fn serve(listener: TcpListener) -> Result<()> {
    let state = State::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = hyper::service::service_fn(move |request| handle(state.clone(), request));
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed()
}

async fn handle(state: State, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let id = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("id=")))
        .unwrap_or("")
        .to_owned();
    let path = request.uri().path().to_owned();
    let mut response = match path.as_str() {
        "/send" => {
            let (sender, _) = state.queue(&id);
            match request.into_body().collect().await {
                Ok(body) => {
                    let _ = sender.send(body.to_bytes()).await;
                    Response::new(full(Bytes::new()))
                }
                Err(_) => status(StatusCode::BAD_REQUEST),
            }
        }
        "/sse" => {
            let (_, receiver) = state.queue(&id);
            let guard = receiver.lock_owned().await;
            let opening = futures_util::stream::once(async {
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b":\r\n")))
            });
            let events = futures_util::stream::unfold(guard, |mut guard| async move {
                let body = guard.recv().await?;
                let mut event = BytesMut::with_capacity(body.len() + 10);
                event.put_slice(b"data: ");
                event.put_slice(&body);
                event.put_slice(b"\r\n\r\n");
                Some((Ok(Frame::data(event.freeze())), guard))
            });
            let body = StreamBody::new(futures_util::StreamExt::chain(opening, events));
            let mut response = Response::new(BodyExt::boxed(body));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/event-stream"),
            );
            response
        }
        "/poll" => {
            let (_, receiver) = state.queue(&id);
            let mut receiver = receiver.lock().await;
            match receiver.recv().await {
                Some(first) => {
                    let mut body = BytesMut::from(&first[..]);
                    while let Ok(next) = receiver.try_recv() {
                        body.put_slice(&next);
                    }
                    Response::new(full(body.freeze()))
                }
                None => status(StatusCode::NO_CONTENT),
            }
        }
        _ => status(StatusCode::NOT_FOUND),
    };
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = code;
    response
}
