//! What the generator says to each kind of target, and the little it reads back.
//!
//! Requests are written from pre-built pieces; replies are scanned only for what the scenario
//! needs: the invocation/ack id of a completion, the sequence number of a delivery, pings.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Result};
use memchr::memmem;

use crate::client::{HttpConn, WsConn, OP_BINARY, OP_CLOSE, OP_TEXT};

/// The dialect a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `ref-ws`: frames echoed verbatim (`J` joins, `B…` broadcasts the rest).
    Raw,
    /// SignalR over WebSockets: negotiate, handshake, hub messages.
    SignalR,
    /// Socket.IO v5 over Engine.IO v4 WebSockets.
    SocketIo,
}

/// The hub protocol on the wire (for `Raw`: which bytes are echoed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Wire {
    Json,
    Msgpack,
}

impl Wire {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Wire::Json => "json",
            Wire::Msgpack => "msgpack",
        }
    }
}

/// Something a target sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A completion, ack or echo of the request with this id (`ANY_ID` when the reply has none).
    Reply(u64),
    /// A failed completion.
    Failed(u64),
    /// A group delivery with this sequence number.
    Delivery(u64),
    /// The target asked for a reply (Engine.IO ping).
    Ping,
    /// The target closed the connection.
    Closed,
}

/// The id of replies that carry none (`ref-ws` join).
pub(crate) const ANY_ID: u64 = u64::MAX;

const RS: u8 = 0x1e;
/// The group every fan-out scenario uses.
pub(crate) const GROUP: &str = "g";

/// A target's dialect and wire protocol.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proto {
    pub(crate) dialect: Dialect,
    pub(crate) wire: Wire,
}

impl Proto {
    /// Connects and completes the dialect's handshake.
    pub(crate) async fn open(self, addr: SocketAddr) -> Result<WsConn> {
        match self.dialect {
            Dialect::Raw => WsConn::connect(addr, "/").await,
            Dialect::SocketIo => {
                let mut ws = WsConn::connect(addr, "/socket.io/?EIO=4&transport=websocket").await?;
                expect_frame(&mut ws, |p| p.first() == Some(&b'0')).await?;
                ws.push(OP_TEXT, &[b"40"]);
                ws.flush().await?;
                expect_frame(&mut ws, |p| p.starts_with(b"40")).await?;
                Ok(ws)
            }
            Dialect::SignalR => {
                let mut ws = if skip_negotiation() {
                    WsConn::connect(addr, "/hub").await?
                } else {
                    let token = negotiate(addr).await?;
                    WsConn::connect(addr, &format!("/hub?id={token}")).await?
                };
                let handshake: &[u8] = match self.wire {
                    Wire::Json => b"{\"protocol\":\"json\",\"version\":1}\x1e",
                    Wire::Msgpack => b"{\"protocol\":\"messagepack\",\"version\":1}\x1e",
                };
                ws.push(OP_TEXT, &[handshake]);
                ws.flush().await?;
                expect_frame(&mut ws, |p| p.first() == Some(&b'{') && p.contains(&RS)).await?;
                Ok(ws)
            }
        }
    }

    fn opcode(self) -> u8 {
        match self.wire {
            Wire::Json => OP_TEXT,
            Wire::Msgpack => OP_BINARY,
        }
    }

    /// Queues an `Echo(payload)` call with id `id`.
    pub(crate) fn push_echo(self, ws: &mut WsConn, id: u64, payload: &str) {
        let ids = itoa(id);
        let id = ids.as_str();
        match (self.dialect, self.wire) {
            (Dialect::SocketIo, _) => {
                ws.push(
                    OP_TEXT,
                    &[
                        b"42",
                        id.as_bytes(),
                        b"[\"echo\",\"",
                        payload.as_bytes(),
                        b"\"]",
                    ],
                );
            }
            (_, Wire::Json) => ws.push(
                OP_TEXT,
                &[
                    b"{\"type\":1,\"invocationId\":\"",
                    id.as_bytes(),
                    b"\",\"target\":\"Echo\",\"arguments\":[\"",
                    payload.as_bytes(),
                    b"\"]}\x1e",
                ],
            ),
            (_, Wire::Msgpack) => {
                let mut body = Vec::with_capacity(32 + payload.len());
                body.extend_from_slice(&[0x95, 0x01, 0x80]);
                mp_str(&mut body, id);
                mp_str(&mut body, "Echo");
                body.push(0x91);
                mp_str(&mut body, payload);
                let prefix = varint(body.len());
                ws.push(OP_BINARY, &[&prefix, &body]);
            }
        }
    }

    /// Queues joining [`GROUP`] (request id `id`).
    pub(crate) fn push_join(self, ws: &mut WsConn, id: u64) {
        let id = itoa(id);
        match (self.dialect, self.wire) {
            (Dialect::Raw, _) => ws.push(self.opcode(), &[b"J"]),
            (Dialect::SocketIo, _) => {
                ws.push(
                    OP_TEXT,
                    &[
                        b"42",
                        id.as_bytes(),
                        b"[\"join\",\"",
                        GROUP.as_bytes(),
                        b"\"]",
                    ],
                );
            }
            (Dialect::SignalR, Wire::Json) => ws.push(
                OP_TEXT,
                &[
                    b"{\"type\":1,\"invocationId\":\"",
                    id.as_bytes(),
                    b"\",\"target\":\"JoinGroup\",\"arguments\":[\"",
                    GROUP.as_bytes(),
                    b"\"]}\x1e",
                ],
            ),
            (Dialect::SignalR, Wire::Msgpack) => {
                let mut body = Vec::with_capacity(32);
                body.extend_from_slice(&[0x95, 0x01, 0x80]);
                mp_str(&mut body, &id);
                mp_str(&mut body, "JoinGroup");
                body.push(0x91);
                mp_str(&mut body, GROUP);
                ws.push(OP_BINARY, &[&varint(body.len()), &body]);
            }
        }
    }

    /// Queues a send of `Recv(seq, payload)` to [`GROUP`]: fire-and-forget, or with `id` an
    /// invocation (SignalR) or acked event (Socket.IO) whose completion or ack carries `id`
    /// (`ref-ws` answers no broadcast: `id` is ignored there).
    pub(crate) fn push_send_group(self, ws: &mut WsConn, seq: u64, id: Option<u64>, payload: &str) {
        let seq_text = itoa(seq);
        let id_text = id.map(itoa).unwrap_or_default();
        match (self.dialect, self.wire) {
            (Dialect::SocketIo, _) => ws.push(
                OP_TEXT,
                &[
                    b"42",
                    id_text.as_bytes(),
                    b"[\"send\",\"",
                    GROUP.as_bytes(),
                    b"\",",
                    seq_text.as_bytes(),
                    b",\"",
                    payload.as_bytes(),
                    b"\"]",
                ],
            ),
            (Dialect::Raw, Wire::Json) => ws.push(
                OP_TEXT,
                &[
                    b"B{\"type\":1,\"target\":\"Recv\",\"arguments\":[",
                    seq_text.as_bytes(),
                    b",\"",
                    payload.as_bytes(),
                    b"\"]}\x1e",
                ],
            ),
            (Dialect::SignalR, Wire::Json) => {
                let head: &[u8] = if id.is_some() {
                    b"{\"type\":1,\"invocationId\":\""
                } else {
                    b"{\"type\":1"
                };
                let tail: &[u8] = if id.is_some() { b"\"" } else { b"" };
                ws.push(
                    OP_TEXT,
                    &[
                        head,
                        id_text.as_bytes(),
                        tail,
                        b",\"target\":\"SendToGroup\",\"arguments\":[\"",
                        GROUP.as_bytes(),
                        b"\",",
                        seq_text.as_bytes(),
                        b",\"",
                        payload.as_bytes(),
                        b"\"]}\x1e",
                    ],
                );
            }
            (Dialect::Raw, Wire::Msgpack) => {
                let mut body = Vec::with_capacity(32 + payload.len());
                body.extend_from_slice(&[0x94, 0x01, 0x80, 0xc0]);
                mp_str(&mut body, "Recv");
                body.push(0x92);
                mp_uint(&mut body, seq);
                mp_str(&mut body, payload);
                ws.push(OP_BINARY, &[b"B", &varint(body.len()), &body]);
            }
            (Dialect::SignalR, Wire::Msgpack) => {
                let mut body = Vec::with_capacity(32 + payload.len());
                body.extend_from_slice(&[0x96, 0x01, 0x80]);
                match id {
                    Some(_) => mp_str(&mut body, &id_text),
                    None => body.push(0xc0),
                }
                mp_str(&mut body, "SendToGroup");
                body.push(0x93);
                mp_str(&mut body, GROUP);
                mp_uint(&mut body, seq);
                mp_str(&mut body, payload);
                body.push(0x90);
                ws.push(OP_BINARY, &[&varint(body.len()), &body]);
            }
        }
    }

    /// Queues a keep-alive (SignalR ping; the others need none from the client).
    pub(crate) fn push_keepalive(self, ws: &mut WsConn) {
        match (self.dialect, self.wire) {
            (Dialect::SignalR, Wire::Json) => ws.push(OP_TEXT, &[b"{\"type\":6}\x1e"]),
            (Dialect::SignalR, Wire::Msgpack) => ws.push(OP_BINARY, &[&[0x02, 0x91, 0x06]]),
            _ => {}
        }
    }

    /// Queues the answer to [`Event::Ping`].
    pub(crate) fn push_pong(self, ws: &mut WsConn) {
        if self.dialect == Dialect::SocketIo {
            ws.push(OP_TEXT, &[b"3"]);
        }
    }

    /// Scans one frame, pushing what it carries onto `events`.
    pub(crate) fn parse(self, opcode: u8, payload: &[u8], events: &mut Vec<Event>) {
        if opcode == OP_CLOSE {
            events.push(Event::Closed);
            return;
        }
        if self.dialect == Dialect::Raw && payload == b"J" {
            events.push(Event::Reply(ANY_ID));
            return;
        }
        match (self.dialect, self.wire) {
            (Dialect::SocketIo, _) => parse_socketio(payload, events),
            (_, Wire::Json) => {
                for record in payload.split(|b| *b == RS).filter(|r| !r.is_empty()) {
                    parse_json_record(record, events);
                }
            }
            (_, Wire::Msgpack) => parse_msgpack(payload, events),
        }
    }
}

/// POSTs the negotiate request; returns the connection token.
pub(crate) async fn negotiate(addr: SocketAddr) -> Result<String> {
    let mut http = HttpConn::connect(addr).await?;
    let response = http
        .request(
            "POST",
            "/hub/negotiate?negotiateVersion=1",
            "text/plain",
            b"",
        )
        .await?;
    if response.status != 200 {
        bail!(
            "negotiate answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(200)]).trim()
        );
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body)?;
    body.get("connectionToken")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("negotiate gave no connectionToken"))
}

/// Whether SignalR connections skip the negotiate request and open their WebSocket at once (as
/// the official clients do with `skipNegotiation: true`), when `HUB_BENCH_SKIP_NEGOTIATION=1`:
/// an experiment knob (BENCHMARKS.md, S3's set-up rate).
fn skip_negotiation() -> bool {
    static SKIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SKIP.get_or_init(|| std::env::var("HUB_BENCH_SKIP_NEGOTIATION").is_ok_and(|v| v == "1"))
}

/// Reads frames until one satisfies `accept` (a handshake step).
async fn expect_frame(ws: &mut WsConn, accept: impl Fn(&[u8]) -> bool) -> Result<()> {
    let mut seen = false;
    let mut bad = None;
    while !seen {
        ws.read_batch(|opcode, payload| {
            if opcode == OP_CLOSE {
                bad = Some("closed during the handshake".to_owned());
            } else if accept(payload) {
                seen = true;
            } else if payload.starts_with(b"{\"error\"") || payload.starts_with(b"44") {
                bad = Some(String::from_utf8_lossy(payload).into_owned());
            }
        })
        .await?;
        if let Some(bad) = bad.take() {
            bail!("handshake failed: {bad}");
        }
    }
    Ok(())
}

pub(crate) fn parse_json_record(record: &[u8], events: &mut Vec<Event>) {
    let kind = memmem::find(record, b"\"type\":")
        .and_then(|i| record.get(i + 7))
        .copied();
    let id =
        || memmem::find(record, b"\"invocationId\":\"").and_then(|i| digits(&record[i + 16..]));
    match kind {
        Some(b'1') => {
            if let Some(id) = id() {
                events.push(Event::Reply(id));
            } else if let Some(seq) =
                memmem::find(record, b"\"arguments\":[").and_then(|i| digits(&record[i + 13..]))
            {
                events.push(Event::Delivery(seq));
            }
        }
        Some(b'3') => {
            let id = id().unwrap_or(ANY_ID);
            if memmem::find(record, b"\"error\":").is_some() {
                events.push(Event::Failed(id));
            } else {
                events.push(Event::Reply(id));
            }
        }
        Some(b'7') => events.push(Event::Closed),
        _ => {}
    }
}

fn parse_msgpack(mut data: &[u8], events: &mut Vec<Event>) {
    while let Some((len, used)) = read_varint(data) {
        let Some(record) = data.get(used..used + len) else {
            return;
        };
        if let Some(event) = parse_msgpack_record(record) {
            events.push(event);
        }
        data = &data[used + len..];
    }
}

/// `[1, headers, id|nil, target, [seq, …], …]` or `[3, headers, id, kind, …]`, empty headers.
fn parse_msgpack_record(record: &[u8]) -> Option<Event> {
    let kind = *record.get(1)?;
    if record.get(2) != Some(&0x80) {
        return None;
    }
    let rest = record.get(3..)?;
    match kind {
        1 => {
            if rest.first() == Some(&0xc0) {
                let (_, after_target) = mp_read_str(rest.get(1..)?)?;
                let args = after_target.get(1..)?;
                Some(Event::Delivery(mp_read_uint(args)?))
            } else {
                let (id, _) = mp_read_str(rest)?;
                Some(Event::Reply(digits(id)?))
            }
        }
        3 => {
            let (id, after) = mp_read_str(rest)?;
            let id = digits(id)?;
            Some(if after.first() == Some(&1) {
                Event::Failed(id)
            } else {
                Event::Reply(id)
            })
        }
        7 => Some(Event::Closed),
        _ => None,
    }
}

fn parse_socketio(payload: &[u8], events: &mut Vec<Event>) {
    match payload {
        [b'2', ..] => events.push(Event::Ping),
        [b'1', ..] | [b'4', b'1', ..] => events.push(Event::Closed),
        [b'4', b'3', rest @ ..] => {
            if let Some(id) = digits(rest) {
                events.push(Event::Reply(id));
            }
        }
        [b'4', b'4', ..] => events.push(Event::Failed(ANY_ID)),
        [b'4', b'2', rest @ ..] => {
            if let Some(seq) = memchr::memchr(b',', rest).and_then(|i| digits(&rest[i + 1..])) {
                events.push(Event::Delivery(seq));
            }
        }
        _ => {}
    }
}

/// The decimal number at the start of `data`.
fn digits(data: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut any = false;
    for &b in data {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

fn itoa(value: u64) -> String {
    value.to_string()
}

fn varint(mut len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(data: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for (i, &b) in data.iter().enumerate().take(5) {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((len, i + 1));
        }
    }
    None
}

fn mp_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len < 256 {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn mp_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A MessagePack string at the start of `data` and what follows it.
fn mp_read_str(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, start) = match *data.first()? {
        b @ 0xa0..=0xbf => (usize::from(b & 0x1f), 1),
        0xd9 => (usize::from(*data.get(1)?), 2),
        0xda => (
            usize::from(u16::from_be_bytes([*data.get(1)?, *data.get(2)?])),
            3,
        ),
        _ => return None,
    };
    Some((data.get(start..start + len)?, data.get(start + len..)?))
}

/// A MessagePack unsigned integer at the start of `data`.
fn mp_read_uint(data: &[u8]) -> Option<u64> {
    let be = |n: usize| -> Option<u64> {
        let bytes = data.get(1..1 + n)?;
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    match *data.first()? {
        b @ 0x00..=0x7f => Some(u64::from(b)),
        0xcc => be(1),
        0xcd => be(2),
        0xce => be(4),
        0xcf => be(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_completion_and_delivery() {
        let mut events = Vec::new();
        parse_json_record(
            br#"{"type":3,"invocationId":"42","result":"x"}"#,
            &mut events,
        );
        parse_json_record(
            br#"{"type":1,"target":"Recv","arguments":[7,"p"]}"#,
            &mut events,
        );
        parse_json_record(
            br#"{"type":3,"invocationId":"5","error":"no"}"#,
            &mut events,
        );
        assert_eq!(
            events,
            [Event::Reply(42), Event::Delivery(7), Event::Failed(5)]
        );
    }

    #[test]
    fn msgpack_completion_and_delivery() {
        let mut events = Vec::new();
        // [3, {}, "12", 3, "x"]
        let mut body = vec![0x95, 3, 0x80];
        mp_str(&mut body, "12");
        body.extend_from_slice(&[3]);
        mp_str(&mut body, "x");
        let mut frame = varint(body.len());
        frame.extend_from_slice(&body);
        // [1, {}, nil, "Recv", [300, "p"]]
        let mut body = vec![0x95, 1, 0x80, 0xc0];
        mp_str(&mut body, "Recv");
        body.push(0x92);
        mp_uint(&mut body, 300);
        mp_str(&mut body, "p");
        frame.extend_from_slice(&varint(body.len()));
        frame.extend_from_slice(&body);
        parse_msgpack(&frame, &mut events);
        assert_eq!(events, [Event::Reply(12), Event::Delivery(300)]);
    }

    #[test]
    fn socketio_packets() {
        let mut events = Vec::new();
        parse_socketio(b"4317[\"x\"]", &mut events);
        parse_socketio(b"42[\"recv\",9,\"p\"]", &mut events);
        parse_socketio(b"2", &mut events);
        assert_eq!(events, [Event::Reply(17), Event::Delivery(9), Event::Ping]);
    }
}
