//! The load each scenario puts on a target, run on the generator's single-threaded runtime.
//!
//! Every connection is its own task on a `LocalSet`; they share one [`Shared`] (no locks).
//! Latencies go into one HdrHistogram in nanoseconds, measured with `Instant` (the monotonic
//! clock); only requests *sent* inside the measured window are recorded.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::client::WsConn;
use crate::proto::{Event, Proto, ANY_ID};

/// State shared by every connection task of one window.
pub(crate) struct Shared {
    measuring: Cell<bool>,
    stop: Cell<bool>,
    since: Cell<Instant>,
    pub(crate) ops: Cell<u64>,
    pub(crate) errors: Cell<u64>,
    pub(crate) hist: RefCell<Histogram<u64>>,
    /// Latencies of the deliveries to receivers on another node than the sender's (S6).
    pub(crate) remote_hist: RefCell<Histogram<u64>>,
    /// Fan-out deliveries whose sequence number was below one the receiver already had.
    pub(crate) reordered: Cell<u64>,
    /// S8: the broadcaster's latency, from a send's write to its completion (or ack).
    pub(crate) sender_hist: RefCell<Histogram<u64>>,
    /// Fan-out: the longest time (ns) between two consecutive deliveries to one receiver, both
    /// inside the window.
    pub(crate) max_gap_ns: Cell<u64>,
    /// When that longest gap ended.
    pub(crate) max_gap_end: Cell<Option<Instant>>,
    /// Fan-out messages the sender wrote so far.
    pub(crate) messages_sent: Cell<u64>,
    pub(crate) last_error: RefCell<Option<String>>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn new() -> Result<Rc<Shared>> {
        Ok(Rc::new(Shared {
            measuring: Cell::new(false),
            stop: Cell::new(false),
            since: Cell::new(Instant::now()),
            ops: Cell::new(0),
            errors: Cell::new(0),
            hist: RefCell::new(Histogram::new_with_bounds(1, 120_000_000_000, 3)?),
            remote_hist: RefCell::new(Histogram::new_with_bounds(1, 120_000_000_000, 3)?),
            reordered: Cell::new(0),
            sender_hist: RefCell::new(Histogram::new_with_bounds(1, 120_000_000_000, 3)?),
            max_gap_ns: Cell::new(0),
            max_gap_end: Cell::new(None),
            messages_sent: Cell::new(0),
            last_error: RefCell::new(None),
            tasks: RefCell::new(Vec::new()),
        }))
    }

    /// When recording started.
    pub(crate) fn since(&self) -> Instant {
        self.since.get()
    }

    /// Starts recording.
    pub(crate) fn begin(&self) {
        self.since.set(Instant::now());
        self.measuring.set(true);
    }

    /// Stops recording and tells the tasks to end.
    pub(crate) fn end(&self) {
        self.measuring.set(false);
        self.stop.set(true);
    }

    /// Aborts every connection task (dropping its socket).
    pub(crate) fn abort_all(&self) {
        for task in self.tasks.borrow_mut().drain(..) {
            task.abort();
        }
    }

    /// Whether the window ended.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.get()
    }

    pub(crate) fn record(&self, sent: Instant, now: Instant) {
        if self.measuring.get() && sent >= self.since.get() {
            self.ops.set(self.ops.get() + 1);
            let ns = u64::try_from(now.duration_since(sent).as_nanos()).unwrap_or(u64::MAX);
            self.hist.borrow_mut().saturating_record(ns.max(1));
        }
    }

    /// Records a delivery (as [`record`](Self::record)); `remote` when it crossed to another
    /// node, which also goes into [`remote_hist`](Self::remote_hist).
    fn record_delivery(&self, sent: Instant, now: Instant, remote: bool) {
        self.record(sent, now);
        if remote && self.measuring.get() && sent >= self.since.get() {
            let ns = u64::try_from(now.duration_since(sent).as_nanos()).unwrap_or(u64::MAX);
            self.remote_hist.borrow_mut().saturating_record(ns.max(1));
        }
    }

    /// Whether `at` is inside the window being measured.
    fn in_window(&self, at: Instant) -> bool {
        self.measuring.get() && at >= self.since.get()
    }

    fn fail(&self, error: &anyhow::Error) {
        if !self.stop.get() {
            self.errors.set(self.errors.get() + 1);
            self.last_error
                .borrow_mut()
                .get_or_insert_with(|| format!("{error:#}"));
        }
    }

    /// Runs `task` on the local set; an error counts unless the window already ended.
    pub(crate) fn spawn<F>(self: &Rc<Self>, task: F)
    where
        F: std::future::Future<Output = Result<()>> + 'static,
    {
        let shared = self.clone();
        let handle = tokio::task::spawn_local(async move {
            if let Err(error) = task.await {
                shared.fail(&error);
            }
        });
        self.tasks.borrow_mut().push(handle);
    }
}

/// Opens `count` connections, `concurrency` handshakes at a time, joining the group if `join`.
pub(crate) async fn open_many(
    proto: Proto,
    addr: SocketAddr,
    count: usize,
    join: bool,
) -> Result<Vec<WsConn>> {
    let results: Vec<Result<WsConn>> = futures_util::stream::iter(0..count)
        .map(|_| async move {
            let mut ws = proto.open(addr).await?;
            if join {
                proto.push_join(&mut ws, 1);
                ws.flush().await?;
                wait_reply(proto, &mut ws, 1).await?;
            }
            Ok(ws)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn wait_reply(proto: Proto, ws: &mut WsConn, id: u64) -> Result<()> {
    let mut events = Vec::new();
    loop {
        ws.read_batch(|op, payload| proto.parse(op, payload, &mut events))
            .await?;
        for event in events.drain(..) {
            match event {
                Event::Reply(r) if r == id || r == ANY_ID => return Ok(()),
                Event::Failed(_) => bail!("the request failed"),
                Event::Closed => bail!("closed by the target"),
                Event::Ping => proto.push_pong(ws),
                _ => {}
            }
        }
        ws.flush().await?;
    }
}

/// S1: each connection keeps one `Echo` call outstanding.
pub(crate) fn start_echo(proto: Proto, conns: Vec<WsConn>, payload: Rc<str>, shared: &Rc<Shared>) {
    for ws in conns {
        let shared2 = shared.clone();
        let payload = payload.clone();
        shared.spawn(echo_loop(proto, ws, payload, shared2));
    }
}

async fn echo_loop(
    proto: Proto,
    mut ws: WsConn,
    payload: Rc<str>,
    shared: Rc<Shared>,
) -> Result<()> {
    let mut events = Vec::with_capacity(4);
    let mut id = 0u64;
    while !shared.stop.get() {
        id += 1;
        proto.push_echo(&mut ws, id, &payload);
        let sent = Instant::now();
        ws.flush().await?;
        'reply: loop {
            ws.read_batch(|op, data| proto.parse(op, data, &mut events))
                .await?;
            let mut done = false;
            for event in events.drain(..) {
                match event {
                    Event::Reply(r) if r == id || r == ANY_ID => done = true,
                    Event::Failed(_) => bail!("Echo failed"),
                    Event::Closed => bail!("closed by the target"),
                    Event::Ping => proto.push_pong(&mut ws),
                    _ => {}
                }
            }
            if done {
                shared.record(sent, Instant::now());
                break 'reply;
            }
            if ws.has_pending() {
                ws.flush().await?;
            }
        }
    }
    Ok(())
}

/// S1b: every connection sends `Echo` on a fixed schedule (`rate` calls/s in total), replies
/// matched in order; latency from the moment the call was written.
pub(crate) fn start_paced(
    proto: Proto,
    conns: Vec<WsConn>,
    payload: Rc<str>,
    rate: f64,
    shared: &Rc<Shared>,
) {
    let n = conns.len().max(1);
    let interval = Duration::from_secs_f64(n as f64 / rate.max(1.0));
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    for (i, ws) in conns.into_iter().enumerate() {
        let first = start + interval.mul_f64(i as f64 / n as f64);
        let shared2 = shared.clone();
        shared.spawn(paced_loop(
            proto,
            ws,
            payload.clone(),
            interval,
            first,
            shared2,
        ));
    }
}

async fn paced_loop(
    proto: Proto,
    mut ws: WsConn,
    payload: Rc<str>,
    interval: Duration,
    first: tokio::time::Instant,
    shared: Rc<Shared>,
) -> Result<()> {
    let mut ticker = tokio::time::interval_at(first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut events = Vec::with_capacity(4);
    let mut id = 0u64;
    while !shared.stop.get() {
        let read = tokio::select! {
            _ = ticker.tick() => None,
            r = ws.read_batch(|op, data| proto.parse(op, data, &mut events)) => Some(r),
        };
        match read {
            None => {
                id += 1;
                proto.push_echo(&mut ws, id, &payload);
                pending.push_back((id, Instant::now()));
            }
            Some(r) => {
                r?;
                let now = Instant::now();
                for event in events.drain(..) {
                    match event {
                        Event::Reply(r) => {
                            while let Some((sent_id, sent)) = pending.pop_front() {
                                if sent_id == r || r == ANY_ID {
                                    shared.record(sent, now);
                                    break;
                                }
                            }
                        }
                        Event::Failed(_) => bail!("Echo failed"),
                        Event::Closed => bail!("closed by the target"),
                        Event::Ping => proto.push_pong(&mut ws),
                        Event::Delivery(_) => {}
                    }
                }
            }
        }
        if ws.has_pending() {
            ws.flush().await?;
        }
    }
    Ok(())
}

/// Messages in flight at once in S2 and S6 unless `--fanout-in-flight` says otherwise.
pub(crate) const FANOUT_IN_FLIGHT: usize = 4;
/// Sequence-number slots: a message's slot is reused this many messages later.
const SLOTS: usize = 64;
/// The most messages in flight `--fanout-in-flight` allows (a quarter of the slots, so a slot
/// is reused only long after its message should have completed).
pub(crate) const MAX_FANOUT_IN_FLIGHT: usize = SLOTS / 4;

/// S2/S6 bookkeeping: a message is in flight until every receiver got it. Message `seq` lives
/// in slot `seq % SLOTS` until the slot is reused, [`SLOTS`] messages later.
struct Fanout {
    receivers: u64,
    limit: usize,
    seq_of: RefCell<[u64; SLOTS]>,
    sent_at: RefCell<[Option<Instant>; SLOTS]>,
    got: RefCell<[u64; SLOTS]>,
    in_flight: Cell<usize>,
    progress: Cell<Instant>,
    wake: Notify,
}

/// S2, S6 and S8: joined receivers (`true`: on another node than the sender, S6), one sender
/// keeping `in_flight` messages in flight (at most [`MAX_FANOUT_IN_FLIGHT`]); latency per delivery from the moment the
/// send was written. Every receiver must get every message exactly once: a second copy, a copy
/// of a message no longer in flight, or a message still missing receivers when its slot comes
/// round again ([`SLOTS`] messages later) ends the connection's task with an error. With
/// `acked` (S8) each send is an invocation (SignalR) or acked event (Socket.IO), and the time
/// from its write to its completion goes into [`Shared::sender_hist`]; a failed one is an error.
pub(crate) fn start_fanout(
    proto: Proto,
    sender: WsConn,
    receivers: Vec<(WsConn, bool)>,
    payload: Rc<str>,
    in_flight: usize,
    acked: bool,
    shared: &Rc<Shared>,
) {
    let fanout = Rc::new(Fanout {
        receivers: receivers.len() as u64,
        limit: in_flight.clamp(1, MAX_FANOUT_IN_FLIGHT),
        seq_of: RefCell::new([0; SLOTS]),
        sent_at: RefCell::new([None; SLOTS]),
        got: RefCell::new([0; SLOTS]),
        in_flight: Cell::new(0),
        progress: Cell::new(Instant::now()),
        wake: Notify::new(),
    });
    for (ws, remote) in receivers {
        let (fanout, shared2) = (fanout.clone(), shared.clone());
        shared.spawn(receive_loop(proto, ws, remote, fanout, shared2));
    }
    shared.spawn(send_loop(
        proto,
        sender,
        payload,
        fanout,
        acked,
        shared.clone(),
    ));
}

async fn receive_loop(
    proto: Proto,
    mut ws: WsConn,
    remote: bool,
    fanout: Rc<Fanout>,
    shared: Rc<Shared>,
) -> Result<()> {
    let mut events = Vec::with_capacity(8);
    // The last sequence number this receiver got in each slot, and the highest overall.
    let mut seen = [0u64; SLOTS];
    let mut highest = 0u64;
    let mut last_delivery: Option<Instant> = None;
    loop {
        ws.read_batch(|op, data| proto.parse(op, data, &mut events))
            .await?;
        let now = Instant::now();
        if events.iter().any(|e| matches!(e, Event::Delivery(_))) {
            if let Some(last) = last_delivery.filter(|&last| shared.in_window(last)) {
                let gap = u64::try_from(now.duration_since(last).as_nanos()).unwrap_or(u64::MAX);
                if gap > shared.max_gap_ns.get() {
                    shared.max_gap_ns.set(gap);
                    shared.max_gap_end.set(Some(now));
                }
            }
            last_delivery = Some(now);
        }
        for event in events.drain(..) {
            match event {
                Event::Delivery(seq) => {
                    let slot = (seq as usize) % SLOTS;
                    if fanout.seq_of.borrow()[slot] != seq {
                        bail!(
                            "a delivery of message {seq}, which is not in flight (a duplicate, \
                             or {SLOTS} or more messages late)"
                        );
                    }
                    if seen[slot] == seq {
                        bail!("message {seq} delivered twice to one receiver");
                    }
                    seen[slot] = seq;
                    if seq < highest {
                        if shared.measuring.get() {
                            shared.reordered.set(shared.reordered.get() + 1);
                        }
                    } else {
                        highest = seq;
                    }
                    if let Some(sent) = fanout.sent_at.borrow()[slot] {
                        shared.record_delivery(sent, now, remote);
                    }
                    let mut got = fanout.got.borrow_mut();
                    got[slot] += 1;
                    if got[slot] == fanout.receivers {
                        fanout
                            .in_flight
                            .set(fanout.in_flight.get().saturating_sub(1));
                        fanout.progress.set(now);
                        fanout.wake.notify_one();
                    }
                }
                Event::Closed => bail!("closed by the target"),
                Event::Failed(_) => bail!("a request failed"),
                Event::Ping => proto.push_pong(&mut ws),
                Event::Reply(_) => {}
            }
        }
        if ws.has_pending() {
            ws.flush().await?;
        }
    }
}

async fn send_loop(
    proto: Proto,
    mut ws: WsConn,
    payload: Rc<str>,
    fanout: Rc<Fanout>,
    acked: bool,
    shared: Rc<Shared>,
) -> Result<()> {
    let mut seq = 0u64;
    let mut events = Vec::new();
    // Acked sends not yet completed: (sequence number = invocation id, written at).
    let mut unacked: VecDeque<(u64, Instant)> = VecDeque::new();
    fanout.progress.set(Instant::now());
    while !shared.stop.get() {
        while fanout.in_flight.get() < fanout.limit {
            seq += 1;
            let slot = (seq as usize) % SLOTS;
            let (previous, got) = (fanout.seq_of.borrow()[slot], fanout.got.borrow()[slot]);
            if previous != 0 && got < fanout.receivers {
                bail!(
                    "message {previous} reached {got} of {} receivers while the {} after it \
                     were sent: deliveries lost",
                    fanout.receivers,
                    SLOTS - 1
                );
            }
            fanout.seq_of.borrow_mut()[slot] = seq;
            fanout.got.borrow_mut()[slot] = 0;
            let now = Instant::now();
            fanout.sent_at.borrow_mut()[slot] = Some(now);
            proto.push_send_group(&mut ws, seq, acked.then_some(seq), &payload);
            if acked {
                unacked.push_back((seq, now));
            }
            fanout.in_flight.set(fanout.in_flight.get() + 1);
            shared.messages_sent.set(seq);
        }
        ws.flush().await?;
        let read = tokio::select! {
            () = fanout.wake.notified() => None,
            r = ws.read_batch(|op, data| proto.parse(op, data, &mut events)) => Some(r),
            () = tokio::time::sleep(Duration::from_secs(1)) => None,
        };
        if let Some(r) = read {
            r?;
            let now = Instant::now();
            for event in events.drain(..) {
                match event {
                    Event::Closed => bail!("closed by the target"),
                    Event::Ping => proto.push_pong(&mut ws),
                    Event::Reply(id) if acked => {
                        // In order from the hub (one invocation at a time); Socket.IO acks
                        // may come in any order: looked up by id either way.
                        if let Some(i) = unacked.iter().position(|&(s, _)| s == id) {
                            if let Some((_, sent)) = unacked.remove(i) {
                                if shared.in_window(sent) {
                                    let ns = u64::try_from(now.duration_since(sent).as_nanos())
                                        .unwrap_or(u64::MAX);
                                    shared.sender_hist.borrow_mut().saturating_record(ns.max(1));
                                }
                            }
                        }
                    }
                    Event::Failed(_) if acked => bail!("a send to the group failed"),
                    _ => {}
                }
            }
        }
        if fanout.progress.get().elapsed() > Duration::from_secs(5) {
            let (seq_of, got) = (fanout.seq_of.borrow(), fanout.got.borrow());
            let missing: Vec<String> = (0..SLOTS)
                .filter(|&i| seq_of[i] != 0 && got[i] < fanout.receivers)
                .map(|i| format!("{} ({} of {})", seq_of[i], got[i], fanout.receivers))
                .collect();
            bail!(
                "fan-out stalled: no message completed for 5 s; incomplete: {}",
                missing.join(", ")
            );
        }
    }
    Ok(())
}

/// S3: holds connections open, answering pings and sending keep-alives every 15 s.
pub(crate) fn start_idle(proto: Proto, conns: Vec<WsConn>, shared: &Rc<Shared>) {
    spawn_idle(proto, conns, None, shared);
}

/// S7: idle connections (as [`start_idle`]) that close together when told
/// ([`IdleGroup::close`]).
pub(crate) struct IdleGroup {
    close: watch::Sender<bool>,
    live: Rc<Cell<usize>>,
    ended: Rc<Notify>,
}

/// Counts a connection task of an [`IdleGroup`] as ended when dropped (done or aborted).
struct Live {
    live: Rc<Cell<usize>>,
    ended: Rc<Notify>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live.set(self.live.get().saturating_sub(1));
        self.ended.notify_one();
    }
}

/// S7: holds `conns` open as [`start_idle`] does, until [`IdleGroup::close`].
pub(crate) fn start_idle_group(proto: Proto, conns: Vec<WsConn>, shared: &Rc<Shared>) -> IdleGroup {
    let (close, watch) = watch::channel(false);
    let group = IdleGroup {
        close,
        live: Rc::new(Cell::new(conns.len())),
        ended: Rc::new(Notify::new()),
    };
    let live = (group.live.clone(), group.ended.clone());
    spawn_idle(proto, conns, Some((watch, live)), shared);
    group
}

impl IdleGroup {
    /// Tells every connection to close (a WebSocket Close, then its socket dropped once the
    /// target ended the stream, or after 2 s) and waits until all are closed or `limit` passed;
    /// returns how many were still open.
    pub(crate) async fn close(&self, limit: Duration) -> usize {
        let _ = self.close.send(true);
        let deadline = tokio::time::Instant::now() + limit;
        while self.live.get() > 0 {
            if tokio::time::timeout_at(deadline, self.ended.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        self.live.get()
    }
}

type CloseSignal = (watch::Receiver<bool>, (Rc<Cell<usize>>, Rc<Notify>));

fn spawn_idle(proto: Proto, conns: Vec<WsConn>, close: Option<CloseSignal>, shared: &Rc<Shared>) {
    let count = conns.len().max(1);
    let period = Duration::from_secs(15);
    for (i, ws) in conns.into_iter().enumerate() {
        let first = tokio::time::Instant::now() + period.mul_f64(i as f64 / count as f64);
        let close = close.as_ref().map(|(watch, (live, ended))| {
            (
                watch.clone(),
                Live {
                    live: live.clone(),
                    ended: ended.clone(),
                },
            )
        });
        shared.spawn(idle_loop(proto, ws, first, period, close));
    }
}

async fn idle_loop(
    proto: Proto,
    mut ws: WsConn,
    first: tokio::time::Instant,
    period: Duration,
    close: Option<(watch::Receiver<bool>, Live)>,
) -> Result<()> {
    let (mut close, _live) = close.unzip();
    let mut ticker = tokio::time::interval_at(first, period);
    let mut events = Vec::new();
    loop {
        let told_to_close = async {
            match &mut close {
                // The group's sender dropped counts as told.
                Some(watch) => {
                    let _ = watch.wait_for(|&closed| closed).await;
                }
                None => std::future::pending().await,
            }
        };
        let read = tokio::select! {
            _ = ticker.tick() => None,
            r = ws.read_batch(|op, data| proto.parse(op, data, &mut events)) => Some(r),
            () = told_to_close => {
                ws.close(Duration::from_secs(2)).await;
                return Ok(());
            }
        };
        match read {
            None => proto.push_keepalive(&mut ws),
            Some(r) => {
                r?;
                for event in events.drain(..) {
                    match event {
                        Event::Closed => bail!("closed by the target"),
                        Event::Ping => proto.push_pong(&mut ws),
                        _ => {}
                    }
                }
            }
        }
        if ws.has_pending() {
            ws.flush().await?;
        }
    }
}
