//! The generator's own minimal WebSocket and HTTP/1.1 clients.
//!
//! Hand-rolled so the generator stays cheaper per message than any server: one read syscall
//! hands every complete frame in the buffer to the caller, writes are batched in an outgoing
//! buffer and flushed once, and buffers start small (idle connections in S3 cost little here).

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// WebSocket opcodes the generator cares about.
pub(crate) const OP_TEXT: u8 = 1;
pub(crate) const OP_BINARY: u8 = 2;
pub(crate) const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x8e];
const MAX_FRAME: usize = 16 << 20;

/// One client WebSocket connection.
pub(crate) struct WsConn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    pong: Option<Vec<u8>>,
}

impl WsConn {
    /// Opens a TCP connection to `addr` and upgrades it at `path`.
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<WsConn> {
        let mut stream = TcpStream::connect(addr).await.context("connecting")?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = vec![0u8; 2048];
        let mut end = 0;
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf[..end], b"\r\n\r\n") {
                break i + 4;
            }
            if end == buf.len() {
                bail!("upgrade response headers too long");
            }
            let n = stream.read(&mut buf[end..]).await?;
            if n == 0 {
                bail!("connection closed during the WebSocket upgrade");
            }
            end += n;
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            let line = String::from_utf8_lossy(&buf[..head_end.min(80)]).into_owned();
            bail!("WebSocket upgrade refused: {line}");
        }
        Ok(WsConn {
            stream,
            buf,
            start: head_end,
            end,
            out: Vec::with_capacity(256),
            pong: None,
        })
    }

    /// This end's local port.
    pub(crate) fn local_port(&self) -> u16 {
        self.stream.local_addr().map_or(0, |a| a.port())
    }

    /// Appends one masked frame to the outgoing buffer (sent by [`flush`](Self::flush)).
    pub(crate) fn push(&mut self, opcode: u8, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.out.push(0x80 | opcode);
        if len < 126 {
            self.out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            self.out.push(0x80 | 126);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(0x80 | 127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.out.extend_from_slice(&MASK);
        let mut i = 0;
        for part in parts {
            for byte in part.iter() {
                self.out.push(byte ^ MASK[i & 3]);
                i += 1;
            }
        }
    }

    /// Whether frames are waiting in the outgoing buffer.
    pub(crate) fn has_pending(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes the outgoing buffer.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if let Some(pong) = self.pong.take() {
            self.push(OP_PONG, &[&pong]);
        }
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Closes the connection as a client should: sends a WebSocket Close (1000), then reads
    /// until the target ends the stream (so the target closes the TCP connection first and the
    /// `TIME_WAIT` is on its side), for at most `wait`. Errors only mean the connection is gone.
    pub(crate) async fn close(mut self, wait: std::time::Duration) {
        self.push(OP_CLOSE, &[&1000u16.to_be_bytes()]);
        if self.flush().await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(wait, async {
            while self.read_batch(|_, _| {}).await.is_ok() {}
        })
        .await;
    }

    /// Waits for at least one complete frame, then hands every complete frame in the buffer to
    /// `f(opcode, payload)`. WebSocket pings are answered on the next flush. Cancel-safe.
    pub(crate) async fn read_batch(&mut self, mut f: impl FnMut(u8, &[u8])) -> Result<()> {
        loop {
            let mut any = false;
            while let Some((opcode, header, len)) = parse_header(&self.buf[self.start..self.end])? {
                let payload = self.start + header;
                let data = &self.buf[payload..payload + len];
                match opcode {
                    OP_PING => self.pong = Some(data.to_vec()),
                    OP_PONG => {}
                    _ => f(opcode, data),
                }
                self.start = payload + len;
                any = true;
            }
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            if any {
                return Ok(());
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let grown = (self.buf.len() * 2).min(MAX_FRAME + 16);
                if grown == self.buf.len() {
                    bail!("a frame larger than {MAX_FRAME} bytes");
                }
                self.buf.resize(grown, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            self.end += n;
        }
    }
}

/// `(opcode, header length, payload length)` of a complete unmasked server frame, if buffered.
fn parse_header(data: &[u8]) -> Result<Option<(u8, usize, usize)>> {
    if data.len() < 2 {
        return Ok(None);
    }
    if data[0] & 0x80 == 0 || data[0] & 0x0f == 0 {
        bail!("fragmented WebSocket frames are not supported by the generator");
    }
    let opcode = data[0] & 0x0f;
    let (header, len) = match data[1] & 0x7f {
        126 if data.len() >= 4 => (4, u16::from_be_bytes([data[2], data[3]]) as usize),
        127 if data.len() >= 10 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&data[2..10]);
            (10, usize::try_from(u64::from_be_bytes(raw))?)
        }
        126 | 127 => return Ok(None),
        short => (2, short as usize),
    };
    if data[1] & 0x80 != 0 {
        bail!("a masked frame from the server");
    }
    if len > MAX_FRAME {
        bail!("a frame of {len} bytes");
    }
    Ok((data.len() >= header + len).then_some((opcode, header, len)))
}

/// A complete HTTP/1.1 response.
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// One HTTP/1.1 keep-alive connection (requests in sequence).
pub(crate) struct HttpConn {
    stream: TcpStream,
    addr: SocketAddr,
    buf: Vec<u8>,
}

impl HttpConn {
    /// Connects to `addr`.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<HttpConn> {
        let stream = TcpStream::connect(addr).await.context("connecting")?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            stream,
            addr,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Sends a request and reads the whole response (Content-Length or chunked bodies).
    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse> {
        let headers = if content_type.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {content_type}\r\n")
        };
        self.send_head(method, path, &headers, body).await?;
        let (status, head_len, length, chunked) = self.read_head().await?;
        self.buf.drain(..head_len);
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let (size, line) = loop {
                    if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n") {
                        let text = std::str::from_utf8(&self.buf[..i])?;
                        let size = usize::from_str_radix(text.split(';').next().unwrap_or(""), 16)
                            .map_err(|_| anyhow!("bad chunk size `{text}`"))?;
                        break (size, i + 2);
                    }
                    self.fill().await?;
                };
                while self.buf.len() < line + size + 2 {
                    self.fill().await?;
                }
                body.extend_from_slice(&self.buf[line..line + size]);
                self.buf.drain(..line + size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            let length = length.unwrap_or(0);
            while self.buf.len() < length {
                self.fill().await?;
            }
            self.buf.drain(..length).collect()
        };
        Ok(HttpResponse { status, body })
    }

    /// Opens a streaming GET (Server-Sent Events); returns the status. Then call
    /// [`read_chunks`](Self::read_chunks).
    pub(crate) async fn open_event_stream(&mut self, path: &str) -> Result<u16> {
        self.send_head("GET", path, "Accept: text/event-stream\r\n", b"")
            .await?;
        let (status, head_len, _, _) = self.read_head().await?;
        self.buf.drain(..head_len);
        Ok(status)
    }

    /// Waits for at least one whole chunk of a chunked response body and appends every whole
    /// chunk buffered to `out`.
    pub(crate) async fn read_chunks(&mut self, out: &mut Vec<u8>) -> Result<()> {
        loop {
            let mut progress = false;
            while let Some(i) = memchr::memmem::find(&self.buf, b"\r\n") {
                let text = std::str::from_utf8(&self.buf[..i])?;
                let size = usize::from_str_radix(text.split(';').next().unwrap_or(""), 16)
                    .map_err(|_| anyhow!("bad chunk size `{text}`"))?;
                if size == 0 {
                    bail!("the event stream ended");
                }
                if self.buf.len() < i + 2 + size + 2 {
                    break;
                }
                out.extend_from_slice(&self.buf[i + 2..i + 2 + size]);
                self.buf.drain(..i + 2 + size + 2);
                progress = true;
            }
            if progress {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    async fn send_head(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<()> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{headers}\r\n",
            self.addr,
            body.len()
        );
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// `(status, head length, content length, chunked)`.
    async fn read_head(&mut self) -> Result<(u16, usize, Option<usize>, bool)> {
        let head_len = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_len])?;
        let status = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad HTTP status line"))?;
        let mut length = None;
        let mut chunked = false;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        Ok((status, head_len, length, chunked))
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the HTTP connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
