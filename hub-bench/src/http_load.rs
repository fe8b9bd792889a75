//! S4: invoke echo over Server-Sent Events and long polling, one call outstanding per
//! connection. For the hub: negotiate, POST the handshake, then POST each invocation and read
//! its completion from the event stream or the next poll. For `ref-http`: the same requests
//! without negotiate or handshake, echoed back verbatim.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use futures_util::StreamExt;

use crate::client::HttpConn;
use crate::load::Shared;
use crate::proto::{self, Event, ANY_ID};

/// Which HTTP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HttpTransport {
    Sse,
    LongPolling,
}

/// One logical connection: a keep-alive connection for POSTs and one for the stream or polls.
pub(crate) struct Session {
    transport: HttpTransport,
    post: HttpConn,
    receive: HttpConn,
    send_path: String,
    receive_path: String,
    decoded: Vec<u8>,
}

impl Session {
    /// Opens a session on the hub (`signalr`) or on `ref-http`.
    pub(crate) async fn open(
        addr: SocketAddr,
        signalr: bool,
        transport: HttpTransport,
        id: usize,
    ) -> Result<Session> {
        let (send_path, receive_path) = if signalr {
            let token = proto::negotiate(addr).await?;
            (format!("/hub?id={token}"), format!("/hub?id={token}"))
        } else {
            let path = match transport {
                HttpTransport::Sse => "/sse",
                HttpTransport::LongPolling => "/poll",
            };
            (format!("/send?id={id}"), format!("{path}?id={id}"))
        };
        let mut session = Session {
            transport,
            post: HttpConn::connect(addr).await?,
            receive: HttpConn::connect(addr).await?,
            send_path,
            receive_path,
            decoded: Vec::new(),
        };
        if transport == HttpTransport::Sse {
            let status = session
                .receive
                .open_event_stream(&session.receive_path)
                .await?;
            if status != 200 {
                bail!(
                    "the event stream (GET {}) answered {status}",
                    session.receive_path
                );
            }
        }
        if signalr && transport == HttpTransport::LongPolling {
            // The first poll attaches the transport and returns at once.
            let path = session.receive_path.clone();
            let response = session.receive.request("GET", &path, "", b"").await?;
            if response.status != 200 {
                bail!(
                    "the first poll (GET {path}) answered {}{}",
                    response.status,
                    body_text(&response.body)
                );
            }
        }
        if signalr {
            session
                .post_body(b"{\"protocol\":\"json\",\"version\":1}\x1e")
                .await?;
            let mut records = Vec::new();
            'handshake: loop {
                session.receive_records(&mut records).await?;
                for record in records.drain(..) {
                    if record.starts_with(b"{}") {
                        break 'handshake;
                    }
                    if record.starts_with(b"{\"error\"") {
                        bail!("handshake failed: {}", String::from_utf8_lossy(&record));
                    }
                }
            }
        }
        Ok(session)
    }

    async fn post_body(&mut self, body: &[u8]) -> Result<()> {
        let path = self.send_path.clone();
        let response = self
            .post
            .request("POST", &path, "text/plain", body)
            .await
            .with_context(|| format!("a send (POST {path})"))?;
        if response.status != 200 {
            bail!(
                "a send (POST {path}, {} bytes) answered {}{}",
                body.len(),
                response.status,
                body_text(&response.body)
            );
        }
        Ok(())
    }

    /// Waits for the next batch of records (event-stream events or one poll's body).
    async fn receive_records(&mut self, records: &mut Vec<Vec<u8>>) -> Result<()> {
        match self.transport {
            HttpTransport::LongPolling => loop {
                let path = self.receive_path.clone();
                let response = self
                    .receive
                    .request("GET", &path, "", b"")
                    .await
                    .with_context(|| format!("a poll (GET {path})"))?;
                match response.status {
                    200 => {
                        split_records(&response.body, records);
                        if !records.is_empty() {
                            return Ok(());
                        }
                    }
                    204 => bail!("the poll (GET {path}) says the connection is over (204)"),
                    other => bail!(
                        "the poll (GET {path}) answered {other}{}",
                        body_text(&response.body)
                    ),
                }
            },
            HttpTransport::Sse => loop {
                self.receive
                    .read_chunks(&mut self.decoded)
                    .await
                    .with_context(|| format!("the event stream (GET {})", self.receive_path))?;
                let mut used = 0;
                while let Some(end) = memchr::memmem::find(&self.decoded[used..], b"\r\n\r\n") {
                    let event = &self.decoded[used..used + end];
                    let mut data = Vec::with_capacity(event.len());
                    for line in event.split(|b| *b == b'\n') {
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        if let Some(payload) = line.strip_prefix(b"data: ") {
                            if !data.is_empty() {
                                data.push(b'\n');
                            }
                            data.extend_from_slice(payload);
                        }
                    }
                    split_records(&data, records);
                    used += end + 4;
                }
                self.decoded.drain(..used);
                if !records.is_empty() {
                    return Ok(());
                }
            },
        }
    }
}

/// `": <body>"` (its first 200 bytes, lossy UTF-8) for an error message, or nothing.
fn body_text(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    format!(": {}", text.trim())
}

fn split_records(data: &[u8], records: &mut Vec<Vec<u8>>) {
    records.extend(
        data.split(|b| *b == 0x1e)
            .filter(|r| !r.is_empty())
            .map(<[u8]>::to_vec),
    );
}

/// Opens `count` sessions, 32 at a time.
pub(crate) async fn open_many(
    addr: SocketAddr,
    signalr: bool,
    transport: HttpTransport,
    count: usize,
) -> Result<Vec<Session>> {
    let results: Vec<Result<Session>> = futures_util::stream::iter(0..count)
        .map(|i| Session::open(addr, signalr, transport, i))
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Starts one echo loop per session.
pub(crate) fn start_echo(sessions: Vec<Session>, payload: Rc<str>, shared: &Rc<Shared>) {
    for session in sessions {
        shared.spawn(echo_loop(session, payload.clone(), shared.clone()));
    }
}

async fn echo_loop(mut session: Session, payload: Rc<str>, shared: Rc<Shared>) -> Result<()> {
    let mut records = Vec::new();
    let mut events = Vec::new();
    let mut id = 0u64;
    while !shared.stopped() {
        id += 1;
        let body = format!(
            "{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"Echo\",\"arguments\":[\"{payload}\"]}}\x1e"
        );
        let sent = Instant::now();
        session.post_body(body.as_bytes()).await?;
        'reply: loop {
            session.receive_records(&mut records).await?;
            for record in records.drain(..) {
                proto::parse_json_record(&record, &mut events);
            }
            for event in events.drain(..) {
                match event {
                    Event::Reply(r) if r == id || r == ANY_ID => {
                        shared.record(sent, Instant::now());
                        break 'reply;
                    }
                    Event::Failed(_) => bail!("Echo failed"),
                    Event::Closed => bail!("closed by the target"),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
