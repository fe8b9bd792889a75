//! Shared helpers of the hub-server integration tests: a server on port 0, a hyper HTTP client
//! for negotiate and friends, and a raw WebSocket hub client that checks framing on every frame.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_server::protocol::handshake::HandshakeRequest;
use hub_server::protocol::{
    Close, Completion, CompletionOutcome, EncodeArguments, EncodeMessage, FrameDecoder, HubMessage,
    HubProtocol, Invocation, Protocol,
};
use hub_server::{
    Context, HubConfig, HubContext, HubError, HubMethods, HubServer, HubServerBuilder,
    ShutdownHandle,
};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// How long any single wait of a test may take before it counts as a failure.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the test hub is mapped.
pub const PATH: &str = "/hub";

/// The Close message of a protocol violation, client timeout or overflow (JSON, no separator).
pub const CLOSE_WITH_ERROR: &str =
    r#"{"type":7,"error":"Connection closed with an error.","allowReconnect":true}"#;

/// The record separator.
pub const RS: char = '\u{1e}';

// ------------------------------------------------------------------------------------------------
// Server
// ------------------------------------------------------------------------------------------------

/// A server serving in a spawned task.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
    /// The context of the hub at [`PATH`].
    pub hub: HubContext,
    /// The `serve()` task.
    pub serve: JoinHandle<Result<(), hub_server::ServerError>>,
}

impl TestServer {
    /// Serves `hub` at [`PATH`] with `config` on 127.0.0.1, port 0.
    pub async fn start(hub: HubMethods<Context>, config: HubConfig) -> Self {
        Self::start_with(HubServer::builder().hub(PATH, hub).config(config)).await
    }

    /// Serves whatever `builder` maps (it must map a hub at [`PATH`]).
    pub async fn start_with(builder: HubServerBuilder) -> Self {
        let server = builder.bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let hub = server.hub_context(PATH).expect("a hub is mapped at PATH");
        let serve = tokio::spawn(server.serve());
        TestServer {
            addr,
            shutdown,
            hub,
            serve,
        }
    }

    /// Negotiates (v1), opens a WebSocket with the token and completes a handshake.
    ///
    /// The server registers the connection (for `all()`, groups, counts) just after it sends the
    /// handshake reply: use [`wait_for_connection_count`](Self::wait_for_connection_count) or a
    /// round trip before relying on that.
    pub async fn client(&self, protocol: Protocol) -> WsClient {
        let token = negotiate_token(self.addr, PATH).await;
        let mut client = WsClient::connect(self.addr, &format!("{PATH}?id={token}")).await;
        client.handshake(protocol).await;
        client
    }

    /// A JSON client.
    pub async fn json_client(&self) -> WsClient {
        self.client(Protocol::Json).await
    }

    /// Waits until the hub has `count` connections (panics after [`TIMEOUT`]).
    pub async fn wait_for_connection_count(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let now = self.hub.connection_count().await.unwrap();
            if now == count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the hub still has {now} connections, expected {count}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// The hub most tests use.
pub fn test_hub() -> HubMethods<Context> {
    HubMethods::new()
        .method("Echo", |_, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .method("Void", |_, (): ()| async { Ok::<_, HubError>(()) })
        .method("Throw", |_, (): ()| async {
            Err::<(), _>(HubError::from(io::Error::other("the database is down")))
        })
        .method("Sleep", |cx: Context, (ms,): (u64,)| async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(ms),
                () = cx.cancellation().cancelled() => Err(HubError::new("cancelled")),
            }
        })
        .method("ConnectionId", |cx: Context, (): ()| async move {
            Ok::<_, HubError>(cx.connection_id().to_owned())
        })
        .method("JoinGroup", |cx: Context, (group,): (String,)| async move {
            cx.groups().add(cx.connection_id(), &group).await?;
            Ok::<_, HubError>(())
        })
        .method("Push", |cx: Context, (n,): (u32,)| async move {
            // n pushes to the caller, then the result: each its own queued message.
            for i in 0..n {
                cx.clients().caller().send("Item", (i,)).await?;
            }
            Ok::<_, HubError>(n)
        })
}

// ------------------------------------------------------------------------------------------------
// HTTP
// ------------------------------------------------------------------------------------------------

/// One HTTP/1.1 request on a fresh connection: status, headers, whole body.
pub async fn http(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (StatusCode, HeaderMap, Bytes) {
    http_within(addr, method, path_and_query, headers, body, TIMEOUT).await
}

/// `POST {path}/negotiate?{query}`: status and body.
pub async fn negotiate(addr: SocketAddr, path: &str, query: &str) -> (StatusCode, Bytes) {
    let uri = if query.is_empty() {
        format!("{path}/negotiate")
    } else {
        format!("{path}/negotiate?{query}")
    };
    let (status, _, body) = http(addr, Method::POST, &uri, &[], b"").await;
    (status, body)
}

/// Negotiates version 1 and returns the parsed response (asserting 200).
pub async fn negotiate_v1(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = negotiate(addr, path, "negotiateVersion=1").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("negotiate JSON")
}

/// Negotiates version 1 as `user` (`Authorization: Bearer <user>`) and returns the connection
/// token.
pub async fn negotiate_token_as(addr: SocketAddr, path: &str, user: &str) -> String {
    let auth = format!("Bearer {user}");
    let (status, _, body) = http(
        addr,
        Method::POST,
        &format!("{path}/negotiate?negotiateVersion=1"),
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let body: serde_json::Value = serde_json::from_slice(&body).expect("negotiate JSON");
    body["connectionToken"]
        .as_str()
        .expect("a connectionToken")
        .to_owned()
}

/// Negotiates version 1 and returns the connection token.
pub async fn negotiate_token(addr: SocketAddr, path: &str) -> String {
    let body = negotiate_v1(addr, path).await;
    body["connectionToken"]
        .as_str()
        .expect("a connectionToken")
        .to_owned()
}

/// Negotiates version 1 asking for stateful reconnect and returns the token, asserting the server
/// granted it.
pub async fn negotiate_stateful_token(addr: SocketAddr, path: &str) -> String {
    let (status, body) =
        negotiate(addr, path, "negotiateVersion=1&useStatefulReconnect=true").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let body: serde_json::Value = serde_json::from_slice(&body).expect("negotiate JSON");
    assert_eq!(
        body["useStatefulReconnect"], true,
        "stateful reconnect was not granted: {body}"
    );
    body["connectionToken"]
        .as_str()
        .expect("a connectionToken")
        .to_owned()
}

/// Sends a WebSocket upgrade request through hyper and returns what came back without upgrading:
/// for checking the status and body of a refused upgrade.
pub async fn refused_upgrade(addr: SocketAddr, path_and_query: &str) -> (StatusCode, Bytes) {
    let (status, _, body) = http(
        addr,
        Method::GET,
        path_and_query,
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    )
    .await;
    assert_ne!(
        status,
        StatusCode::SWITCHING_PROTOCOLS,
        "the upgrade was accepted"
    );
    (status, body)
}

// ------------------------------------------------------------------------------------------------
// WebSocket hub client
// ------------------------------------------------------------------------------------------------

pub type Ws = WebSocketStream<TcpStream>;

/// One hub message the server sent, with its raw bytes (JSON: the text without the separator).
#[derive(Debug)]
pub struct Received {
    pub raw: Bytes,
    pub message: HubMessage,
    /// Whether it came in a binary WebSocket frame.
    pub binary: bool,
}

impl Received {
    /// The raw JSON text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.raw).expect("a JSON message is UTF-8")
    }
}

/// What the next WebSocket read gave.
#[derive(Debug)]
pub enum Frame {
    Data { binary: bool, bytes: Bytes },
    Closed(Option<CloseFrame>),
    End,
    Error(String),
}

/// A raw hub client over one WebSocket.
pub struct WsClient {
    pub ws: Ws,
    protocol: Protocol,
    decoder: Option<FrameDecoder>,
    pending: VecDeque<Received>,
    next_id: u64,
}

impl WsClient {
    /// Opens a WebSocket to `ws://addr{path_and_query}`, panicking if the upgrade is refused.
    pub async fn connect(addr: SocketAddr, path_and_query: &str) -> Self {
        match Self::try_connect(addr, path_and_query, &[]).await {
            Ok(client) => client,
            Err((status, body)) => panic!(
                "the upgrade to {path_and_query} was refused: {status} {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    /// Opens a WebSocket, or returns the status and body of the refusal.
    pub async fn try_connect(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, (StatusCode, Vec<u8>)> {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self::try_connect_on(stream, addr, path_and_query, headers).await
    }

    /// As [`try_connect`](Self::try_connect), over a stream the caller set up.
    pub async fn try_connect_on(
        stream: TcpStream,
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, (StatusCode, Vec<u8>)> {
        let mut request = format!("ws://{addr}{path_and_query}")
            .into_client_request()
            .expect("a WebSocket request");
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(value).expect("header value"),
            );
        }
        let connected =
            tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(request, stream))
                .await
                .expect("the upgrade took too long");
        match connected {
            Ok((ws, _response)) => Ok(WsClient {
                ws,
                protocol: Protocol::Json,
                decoder: None,
                pending: VecDeque::new(),
                next_id: 1000,
            }),
            Err(tungstenite::Error::Http(response)) => Err((
                response.status(),
                response.body().clone().unwrap_or_default(),
            )),
            Err(error) => panic!("the WebSocket upgrade failed: {error}"),
        }
    }

    /// The protocol picked by the handshake.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("send a text frame");
    }

    /// Sends any WebSocket message.
    pub async fn send_frame(&mut self, frame: Message) {
        self.ws.send(frame).await.expect("send a frame");
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send a binary frame");
    }

    /// Sends `message` encoded in the connection's protocol, as one frame (text for JSON).
    pub async fn send_message(&mut self, message: &dyn EncodeMessage) {
        let bytes = self.protocol.encode_to_bytes(message).expect("encode");
        match self.protocol {
            Protocol::Json => {
                self.send_text(std::str::from_utf8(&bytes).expect("JSON is UTF-8"))
                    .await
            }
            Protocol::MessagePack => self.send_binary(&bytes).await,
        }
    }

    /// Invokes `target` with id `id`.
    pub async fn invoke<A: EncodeArguments>(&mut self, id: &str, target: &str, arguments: A) {
        self.send_message(&Invocation::new(target, arguments).with_id(id))
            .await;
    }

    /// Invokes `target` without an id (non-blocking: `send()`).
    pub async fn send_call<A: EncodeArguments>(&mut self, target: &str, arguments: A) {
        self.send_message(&Invocation::new(target, arguments)).await;
    }

    /// The next WebSocket frame of data or the end of the socket; protocol-level pings and pongs
    /// are skipped. Panics after [`TIMEOUT`].
    pub async fn recv_frame(&mut self) -> Frame {
        self.recv_frame_within(TIMEOUT)
            .await
            .expect("no WebSocket frame arrived in time")
    }

    /// The next frame, or `None` if nothing arrived within `wait`.
    pub async fn recv_frame_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match next {
                None => Frame::End,
                Some(Ok(Message::Text(text))) => Frame::Data {
                    binary: false,
                    bytes: Bytes::from(text),
                },
                Some(Ok(Message::Binary(bytes))) => Frame::Data {
                    binary: true,
                    bytes,
                },
                Some(Ok(Message::Close(frame))) => Frame::Closed(frame),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Err(error)) => Frame::Error(error.to_string()),
            });
        }
    }

    /// Sends the handshake for `protocol` (as a text frame, as the JS client does, also for
    /// MessagePack) and expects exactly `{}␞` back, in a text frame for JSON and a binary frame
    /// for MessagePack.
    pub async fn handshake(&mut self, protocol: Protocol) {
        let mut request = Vec::new();
        HandshakeRequest::new(protocol.name(), 1).encode(&mut request);
        self.send_text(std::str::from_utf8(&request).unwrap()).await;
        self.expect_handshake_accepted(protocol).await;
    }

    /// As [`handshake`](Self::handshake), asking for protocol version `version` (2: stateful
    /// reconnect).
    pub async fn handshake_version(&mut self, protocol: Protocol, version: i64) {
        let mut request = Vec::new();
        HandshakeRequest::new(protocol.name(), version).encode(&mut request);
        self.send_text(std::str::from_utf8(&request).unwrap()).await;
        self.expect_handshake_accepted(protocol).await;
    }

    /// Opens a WebSocket that continues a stateful-reconnect connection: no handshake, and the
    /// server's frames are in `protocol` from the start.
    pub async fn resume(addr: SocketAddr, path_and_query: &str, protocol: Protocol) -> Self {
        let mut client = Self::connect(addr, path_and_query).await;
        client.protocol = protocol;
        client.decoder = Some(FrameDecoder::new(protocol.framing(), usize::MAX / 2));
        client
    }

    /// Reads the handshake response and expects `{}␞` in the frame type of `protocol`; whatever
    /// follows it in the same frame is decoded as hub messages.
    pub async fn expect_handshake_accepted(&mut self, protocol: Protocol) {
        let (binary, bytes) = match self.recv_frame().await {
            Frame::Data { binary, bytes } => (binary, bytes),
            other => panic!("expected the handshake response, got {other:?}"),
        };
        assert!(
            bytes.starts_with(b"{}\x1e"),
            "expected the handshake response {{}}\\x1e, got {:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(
            binary,
            protocol == Protocol::MessagePack,
            "the handshake response of {} came in the wrong frame type (binary: {binary})",
            protocol.name()
        );
        self.protocol = protocol;
        self.decoder = Some(FrameDecoder::new(protocol.framing(), usize::MAX / 2));
        let rest = bytes.slice(3..);
        if !rest.is_empty() {
            self.decode_frame(binary, rest);
        }
    }

    /// Expects a handshake error response `{"error":"<text>"}␞` in a text frame, then the close of
    /// the socket.
    pub async fn expect_handshake_error(&mut self, text: &str) {
        let expected = format!(
            "{{\"error\":{}}}\u{1e}",
            serde_json::to_string(text).unwrap()
        );
        match self.recv_frame().await {
            Frame::Data {
                binary: false,
                bytes,
            } => assert_eq!(String::from_utf8_lossy(&bytes), expected),
            other => panic!("expected the handshake error {expected:?} as text, got {other:?}"),
        }
        self.expect_ws_closed().await;
    }

    fn decode_frame(&mut self, binary: bool, bytes: Bytes) {
        assert_eq!(
            binary,
            self.protocol == Protocol::MessagePack,
            "a {} message came in the wrong frame type (binary: {binary})",
            self.protocol.name()
        );
        let decoder = self
            .decoder
            .as_mut()
            .expect("hub messages before the handshake");
        decoder.push(bytes.clone());
        while let Some(raw) = decoder.next_frame().expect("the server's framing is valid") {
            let message = self
                .protocol
                .decode(raw.clone())
                .expect("the server's message decodes")
                .expect("the server sent a known message type");
            self.pending.push_back(Received {
                raw,
                message,
                binary,
            });
        }
        assert!(
            !decoder.has_partial_frame(),
            "a server frame ended in the middle of a message: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }

    /// The messages of the next data frame (or what is left of the last one). Panics if the socket
    /// closes or nothing arrives within [`TIMEOUT`].
    pub async fn recv_messages(&mut self) -> Vec<Received> {
        if self.pending.is_empty() {
            match self.recv_frame().await {
                Frame::Data { binary, bytes } => self.decode_frame(binary, bytes),
                other => panic!("expected hub messages, got {other:?}"),
            }
        }
        self.pending.drain(..).collect()
    }

    /// The next message, or `None` if the socket closed or nothing arrived within `wait`.
    pub async fn try_recv_within(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        while self.pending.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_frame_within(left).await? {
                Frame::Data { binary, bytes } => self.decode_frame(binary, bytes),
                _ => return None,
            }
        }
        self.pending.pop_front()
    }

    /// The next message.
    pub async fn recv(&mut self) -> Received {
        if self.pending.is_empty() {
            let messages = self.recv_messages().await;
            self.pending.extend(messages);
        }
        self.pending.pop_front().expect("a message")
    }

    /// The next message that is not a Ping.
    pub async fn recv_skip_pings(&mut self) -> Received {
        loop {
            let received = self.recv().await;
            if !matches!(received.message, HubMessage::Ping) {
                return received;
            }
        }
    }

    /// The next non-Ping message, which must be the Completion of `id`.
    pub async fn expect_completion(&mut self, id: &str) -> Completion {
        let received = self.recv_skip_pings().await;
        match received.message {
            HubMessage::Completion(completion) => {
                assert_eq!(&*completion.invocation_id, id, "{:?}", received.raw);
                completion
            }
            other => panic!("expected the Completion of {id:?}, got {other:?}"),
        }
    }

    /// Sends one JSON record as a text frame (the record separator is appended).
    pub async fn send_json(&mut self, json: &str) {
        self.send_text(&format!("{json}{RS}")).await;
    }

    /// The raw JSON text of the next non-Ping message.
    pub async fn recv_text(&mut self) -> String {
        self.recv_skip_pings().await.text().to_owned()
    }

    /// Expects no message of types 1–5 for `wait` (stateful reconnect: Pings, Acks and Sequences
    /// may come).
    pub async fn expect_silence_of_tracked(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_recv_within(left).await {
                None => return,
                Some(received)
                    if matches!(
                        received.message,
                        HubMessage::Ping | HubMessage::Ack(_) | HubMessage::Sequence(_)
                    ) => {}
                Some(received) => panic!(
                    "expected silence, got {:?}",
                    String::from_utf8_lossy(&received.raw)
                ),
            }
        }
    }

    /// Asserts that nothing but Pings arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_recv_within(left).await {
                None => return,
                Some(received) if matches!(received.message, HubMessage::Ping) => {}
                Some(received) => panic!(
                    "expected silence, got {:?}",
                    String::from_utf8_lossy(&received.raw)
                ),
            }
        }
    }

    /// Invokes Echo and checks the answer.
    pub async fn echo_works(&mut self, text: &str) {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.invoke(&id, "Echo", (text,)).await;
        let completion = self.expect_completion(&id).await;
        assert_eq!(result::<String>(&completion), text);
    }

    /// Reads messages until a Close arrives (anything before it is returned too), then expects the
    /// WebSocket to close.
    pub async fn expect_close_message(&mut self) -> (Received, Vec<Received>) {
        let mut before = Vec::new();
        loop {
            let received = self.recv().await;
            if matches!(received.message, HubMessage::Close(_)) {
                assert!(
                    self.pending.is_empty(),
                    "messages after the Close: {:?}",
                    self.pending
                );
                self.expect_ws_closed().await;
                return (received, before);
            }
            before.push(received);
        }
    }

    /// Expects the server's Close with error and reconnect allowed, then the socket to close.
    pub async fn expect_close_with_error(&mut self) {
        let (close, _) = self.expect_close_message().await;
        assert_close_with_error(&close);
    }

    /// Expects a close frame (1000 or without code) or the end of the stream, and no more data.
    pub async fn expect_ws_closed(&mut self) {
        match self.recv_frame().await {
            Frame::Closed(None) | Frame::End => {}
            Frame::Closed(Some(frame)) => assert_eq!(
                frame.code,
                CloseCode::Normal,
                "the WebSocket closed with {frame:?}"
            ),
            other => panic!("expected the WebSocket to close, got {other:?}"),
        }
    }
}

/// Asserts `close` is `{"type":7,"error":"Connection closed with an error.","allowReconnect":true}`
/// (exactly, for JSON).
pub fn assert_close_with_error(close: &Received) {
    match &close.message {
        HubMessage::Close(c) => assert_eq!(c, &Close::with_error()),
        other => panic!("expected a Close, got {other:?}"),
    }
    if !close.binary {
        assert_eq!(close.text(), CLOSE_WITH_ERROR);
    }
}

/// The result of a Completion, deserialized.
pub fn result<T: DeserializeOwned>(completion: &Completion) -> T {
    match &completion.outcome {
        CompletionOutcome::Result(value) => value.deserialize().expect("the result deserializes"),
        other => panic!("expected a result, got {other:?}"),
    }
}

/// The error text of a Completion.
pub fn error(completion: &Completion) -> String {
    match &completion.outcome {
        CompletionOutcome::Error(text) => text.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The arguments of an Invocation, deserialized as one tuple or value sequence.
pub fn invocation_args<T: DeserializeOwned>(received: &Received, target: &str) -> T {
    match &received.message {
        HubMessage::Invocation(invocation) => {
            assert_eq!(&*invocation.target, target);
            assert!(invocation.invocation_id.is_none());
            let values: Vec<serde_json::Value> = invocation
                .arguments
                .iter()
                .map(|value| value.deserialize().expect("an argument deserializes"))
                .collect();
            serde_json::from_value(serde_json::Value::Array(values)).expect("the arguments")
        }
        other => panic!("expected an Invocation of {target}, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP transports (Server-Sent Events, long polling)
// ------------------------------------------------------------------------------------------------

/// [`http`] with a custom wait for the response head (for polls that are held).
pub async fn http_within(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    wait: Duration,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(http::header::HOST, addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let response = tokio::time::timeout(wait, sender.send_request(request))
        .await
        .expect("the response took too long")
        .expect("send the request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(TIMEOUT, response.into_body().collect())
        .await
        .expect("the body took too long")
        .expect("read the body")
        .to_bytes();
    (status, headers, body)
}

/// The value of a response header as text ("" if absent).
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|value| value.to_str().expect("an ASCII header"))
        .unwrap_or("")
}

/// An open event stream (`GET` with `Accept: text/event-stream`), read chunk by chunk.
pub struct EventStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
    /// Bytes received but not yet returned as an event.
    buffer: Vec<u8>,
    /// Every raw chunk of the body so far, in order.
    pub chunks: Vec<Bytes>,
}

impl EventStream {
    /// Opens `path_and_query` as an event stream; `Err` with status, headers and body if the
    /// server answered with anything but 200.
    pub async fn open(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<EventStream, (StatusCode, HeaderMap, Bytes)> {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(path_and_query)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::ACCEPT, "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::new())).expect("request");
        let response = tokio::time::timeout(TIMEOUT, sender.send_request(request))
            .await
            .expect("the response took too long")
            .expect("send the request");
        let status = response.status();
        let headers = response.headers().clone();
        if status != StatusCode::OK {
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            return Err((status, headers, body));
        }
        Ok(EventStream {
            status,
            headers,
            body: response.into_body(),
            buffer: Vec::new(),
            chunks: Vec::new(),
        })
    }

    /// The next raw chunk of the body; `None` at its end. Panics after `wait`.
    pub async fn next_chunk_within(&mut self, wait: Duration) -> Option<Bytes> {
        loop {
            let frame = tokio::time::timeout(wait, self.body.frame())
                .await
                .expect("no event-stream data in time")?
                .expect("the event stream failed");
            if let Ok(data) = frame.into_data() {
                self.chunks.push(data.clone());
                return Some(data);
            }
        }
    }

    /// The payload of the next event (its `data:` lines joined with `\n`), checking the framing:
    /// every line starts with `data: ` and ends with `\r\n`, and a blank line ends the event.
    /// `None` when the stream ends.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 4).collect();
                let block = &block[..block.len() - 4];
                let mut payload = Vec::new();
                for (i, line) in block.split(|&b| b == b'\n').enumerate() {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if i == 0 && line == b":" {
                        // The opening comment: `:\r\n` then the first event.
                        continue;
                    }
                    let data = line.strip_prefix(b"data: ").unwrap_or_else(|| {
                        panic!(
                            "an event line without `data: `: {:?}",
                            String::from_utf8_lossy(line)
                        )
                    });
                    if !payload.is_empty() {
                        payload.push(b'\n');
                    }
                    payload.extend_from_slice(data);
                }
                return Some(payload);
            }
            let chunk = self.next_chunk_within(wait).await?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next event's payload; panics if the stream ends or nothing arrives within [`TIMEOUT`].
    pub async fn next_event(&mut self) -> Vec<u8> {
        self.next_event_within(TIMEOUT)
            .await
            .expect("the event stream ended")
    }

    /// Expects the end of the response body (the server ended the connection).
    pub async fn expect_end(&mut self) {
        assert!(
            self.next_chunk_within(TIMEOUT).await.is_none(),
            "expected the end of the event stream"
        );
    }
}

/// How a [`HttpHub`] receives.
pub enum Down {
    Sse(EventStream),
    LongPolling,
}

/// A hub client over Server-Sent Events or long polling, sending with POST; it checks that every
/// event / poll body holds only whole messages.
pub struct HttpHub {
    pub addr: SocketAddr,
    pub path: String,
    pub token: String,
    pub connection_id: String,
    pub protocol: Protocol,
    pub down: Down,
    decoder: Option<FrameDecoder>,
    pending: VecDeque<Received>,
    next_id: u64,
}

impl HttpHub {
    /// Negotiates at [`PATH`], opens an event stream (checking its opening `:\r\n`) and completes
    /// a handshake for `protocol` (JSON).
    pub async fn sse(addr: SocketAddr) -> HttpHub {
        let mut hub = HttpHub::open_sse(addr, PATH).await;
        hub.handshake(Protocol::Json).await;
        hub
    }

    /// Negotiates at `path` and opens an event stream, without a handshake.
    pub async fn open_sse(addr: SocketAddr, path: &str) -> HttpHub {
        let negotiated = negotiate_v1(addr, path).await;
        let token = negotiated["connectionToken"].as_str().unwrap().to_owned();
        let mut events = EventStream::open(addr, &format!("{path}?id={token}"), &[])
            .await
            .unwrap_or_else(|(status, _, body)| {
                panic!("the event stream was refused: {status} {body:?}")
            });
        let first = events
            .next_chunk_within(TIMEOUT)
            .await
            .expect("a first write");
        assert_eq!(&first[..], b":\r\n", "the first write of an event stream");
        HttpHub {
            addr,
            path: path.to_owned(),
            token,
            connection_id: negotiated["connectionId"].as_str().unwrap().to_owned(),
            protocol: Protocol::Json,
            down: Down::Sse(events),
            decoder: None,
            pending: VecDeque::new(),
            next_id: 1000,
        }
    }

    /// Negotiates at [`PATH`], makes the first poll (which must return at once, empty) and
    /// completes a handshake for `protocol`.
    pub async fn long_polling(addr: SocketAddr, protocol: Protocol) -> HttpHub {
        let mut hub = HttpHub::open_long_polling(addr, PATH).await;
        hub.handshake(protocol).await;
        hub
    }

    /// Negotiates at `path` and makes the first poll, without a handshake.
    pub async fn open_long_polling(addr: SocketAddr, path: &str) -> HttpHub {
        let negotiated = negotiate_v1(addr, path).await;
        let token = negotiated["connectionToken"].as_str().unwrap().to_owned();
        let hub = HttpHub {
            addr,
            path: path.to_owned(),
            token,
            connection_id: negotiated["connectionId"].as_str().unwrap().to_owned(),
            protocol: Protocol::Json,
            down: Down::LongPolling,
            decoder: None,
            pending: VecDeque::new(),
            next_id: 1000,
        };
        let (status, headers, body) = tokio::time::timeout(Duration::from_secs(1), hub.poll())
            .await
            .expect("the first poll must return at once");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header_str(&headers, "content-length"), "0");
        assert!(body.is_empty());
        hub
    }

    /// The transport URL of this connection.
    pub fn url(&self) -> String {
        format!("{}?id={}", self.path, self.token)
    }

    /// One poll (`GET` without `Accept: text/event-stream`), waiting up to 10 s.
    pub async fn poll(&self) -> (StatusCode, HeaderMap, Bytes) {
        let url = format!("{}&_=1", self.url());
        http_within(
            self.addr,
            Method::GET,
            &url,
            &[],
            b"",
            Duration::from_secs(10),
        )
        .await
    }

    /// `POST` of raw bytes: status and body.
    pub async fn post(&self, body: &[u8]) -> (StatusCode, Bytes) {
        let content_type = match self.protocol {
            Protocol::Json => "text/plain;charset=UTF-8",
            Protocol::MessagePack => "application/octet-stream",
        };
        let (status, _, body) = http(
            self.addr,
            Method::POST,
            &self.url(),
            &[("content-type", content_type)],
            body,
        )
        .await;
        (status, body)
    }

    /// `DELETE`: status.
    pub async fn delete(&self) -> StatusCode {
        http(self.addr, Method::DELETE, &self.url(), &[], b"")
            .await
            .0
    }

    /// Posts encoded messages (one body) and expects 200 with an empty body.
    pub async fn post_ok(&self, body: &[u8]) {
        let (status, reply) = self.post(body).await;
        assert_eq!(status, StatusCode::OK, "{reply:?}");
        assert!(reply.is_empty(), "a POST reply must be empty: {reply:?}");
    }

    /// Encodes `message` in the connection's protocol.
    pub fn encode(&self, message: &dyn EncodeMessage) -> Bytes {
        self.protocol.encode_to_bytes(message).expect("encode")
    }

    /// Posts one message.
    pub async fn send_message(&self, message: &dyn EncodeMessage) {
        self.post_ok(&self.encode(message)).await;
    }

    /// Invokes `target` with id `id`.
    pub async fn invoke<A: EncodeArguments>(&self, id: &str, target: &str, arguments: A) {
        self.send_message(&Invocation::new(target, arguments).with_id(id))
            .await;
    }

    /// Sends the handshake (JSON text, as every client does) and expects exactly `{}␞` back as the
    /// start of the next event / poll body.
    pub async fn handshake(&mut self, protocol: Protocol) {
        let mut request = Vec::new();
        HandshakeRequest::new(protocol.name(), 1).encode(&mut request);
        self.post_ok(&request).await;
        let data = self.recv_raw().await.expect("the handshake reply");
        assert!(
            data.starts_with(b"{}\x1e"),
            "expected the handshake response {{}}\\x1e, got {:?}",
            String::from_utf8_lossy(&data)
        );
        self.protocol = protocol;
        self.decoder = Some(FrameDecoder::new(protocol.framing(), usize::MAX / 2));
        let rest = data.slice(3..);
        if !rest.is_empty() {
            self.decode(rest);
        }
    }

    /// The next event payload, or the next non-empty poll body; `None` when the event stream ends
    /// or a poll gets 204. Panics if nothing arrives in time.
    pub async fn recv_raw(&mut self) -> Option<Bytes> {
        match &mut self.down {
            Down::Sse(events) => events.next_event_within(TIMEOUT).await.map(Bytes::from),
            Down::LongPolling => loop {
                let (status, headers, body) = self.poll().await;
                match status {
                    StatusCode::NO_CONTENT => return None,
                    StatusCode::OK if body.is_empty() => continue,
                    StatusCode::OK => {
                        assert_eq!(
                            header_str(&headers, "content-type"),
                            "application/octet-stream"
                        );
                        return Some(body);
                    }
                    other => panic!("a poll got {other}: {body:?}"),
                }
            },
        }
    }

    fn decode(&mut self, bytes: Bytes) {
        let decoder = self
            .decoder
            .as_mut()
            .expect("hub messages before the handshake");
        decoder.push(bytes.clone());
        while let Some(raw) = decoder.next_frame().expect("the server's framing is valid") {
            let message = self
                .protocol
                .decode(raw.clone())
                .expect("the server's message decodes")
                .expect("the server sent a known message type");
            self.pending.push_back(Received {
                raw,
                message,
                binary: self.protocol == Protocol::MessagePack,
            });
        }
        assert!(
            !decoder.has_partial_frame(),
            "an event or poll body ended in the middle of a message: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }

    /// The next message; `None` if the connection ended first.
    pub async fn try_recv(&mut self) -> Option<Received> {
        while self.pending.is_empty() {
            let data = self.recv_raw().await?;
            self.decode(data);
        }
        self.pending.pop_front()
    }

    /// The next message.
    pub async fn recv(&mut self) -> Received {
        self.try_recv().await.expect("the connection ended")
    }

    /// The next message that is not a Ping.
    pub async fn recv_skip_pings(&mut self) -> Received {
        loop {
            let received = self.recv().await;
            if !matches!(received.message, HubMessage::Ping) {
                return received;
            }
        }
    }

    /// The next non-Ping message, which must be the Completion of `id`.
    pub async fn expect_completion(&mut self, id: &str) -> Completion {
        let received = self.recv_skip_pings().await;
        match received.message {
            HubMessage::Completion(completion) => {
                assert_eq!(&*completion.invocation_id, id, "{:?}", received.raw);
                completion
            }
            other => panic!("expected the Completion of {id:?}, got {other:?}"),
        }
    }

    /// Invokes Echo and checks the answer.
    pub async fn echo_works(&mut self, text: &str) {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.invoke(&id, "Echo", (text,)).await;
        let completion = self.expect_completion(&id).await;
        assert_eq!(result::<String>(&completion), text);
    }
}
