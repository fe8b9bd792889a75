//! Rounds × cases × targets: one measured window per target process.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::client::WsConn;
use crate::http_load::{self, HttpTransport};
use crate::load::{self, Shared};
use crate::procs::{self, Launch, Nginx, RedisServer, Target};
use crate::proto::{Dialect, Event, Proto, Wire};

/// A scenario of the issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scenario {
    /// Invoke echo, one call outstanding per connection.
    S1,
    /// Invoke echo at a fixed offered rate.
    S1b,
    /// Group fan-out.
    S2,
    /// Idle connections.
    S3,
    /// Invoke echo over Server-Sent Events.
    S4Sse,
    /// Invoke echo over long polling.
    S4Lp,
    /// Cross-node group fan-out: S2 with the receivers split over the target's nodes and the
    /// sender on the first (one node: the same as S2, the single-node reference).
    S6,
    /// Churn: K idle connections opened and closed, a few times; does the RSS come back?
    S7,
    /// Slow consumer, the reference: S2-style fan-out with an acked sender, no receiver stalled.
    S8,
    /// Slow consumer: S8 with one more receiver that joined and then never reads.
    S8Stalled,
}

/// One scenario with its parameter (N, M or K max) and wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Case {
    pub(crate) scenario: Scenario,
    pub(crate) param: usize,
    pub(crate) wire: Wire,
}

impl Case {
    pub(crate) fn label(&self) -> String {
        let (name, letter) = match self.scenario {
            Scenario::S1 => ("S1 echo", "N"),
            Scenario::S1b => ("S1b fixed-rate echo", "N"),
            Scenario::S2 => ("S2 fan-out", "M"),
            Scenario::S3 => ("S3 idle", "K≤"),
            Scenario::S4Sse => ("S4 SSE echo", "N"),
            Scenario::S4Lp => ("S4 long-polling echo", "N"),
            Scenario::S6 => ("S6 cross-node fan-out", "M"),
            Scenario::S7 => ("S7 churn", "K"),
            Scenario::S8 => ("S8 slow consumer, none stalled", "M"),
            Scenario::S8Stalled => ("S8 slow consumer, 1 stalled", "M"),
        };
        let wire = match self.wire {
            Wire::Json => "",
            Wire::Msgpack => " msgpack",
        };
        format!("{name} {letter}={}{wire}", self.param)
    }

    /// What the summary compares, and whether more is better.
    pub(crate) fn metric(&self) -> (&'static str, bool) {
        match self.scenario {
            Scenario::S1 => ("calls/s", true),
            Scenario::S1b => ("p99 µs", false),
            Scenario::S2 | Scenario::S6 => ("deliveries/s", true),
            Scenario::S3 => ("bytes/conn", false),
            Scenario::S4Sse | Scenario::S4Lp => ("calls/s", true),
            Scenario::S7 => ("RSS after/baseline", false),
            Scenario::S8 | Scenario::S8Stalled => ("broadcaster p99 µs", false),
        }
    }
}

/// A target and how to start it.
#[derive(Clone, Debug)]
pub(crate) struct TargetSpec {
    pub(crate) name: &'static str,
    pub(crate) dialect: Dialect,
    /// Processes started from `launch` for each window (2 for the targets on Redis).
    pub(crate) nodes: usize,
    pub(crate) launch: Launch,
    /// The `redis-server` program a Redis of the window's own is started from, for targets
    /// on a backplane.
    pub(crate) redis_server: Option<PathBuf>,
    /// The load balancer in front of the nodes (`hub-lb`, `hub-lb-sticky`): the clients reach
    /// the nodes only through it, and the nodes share a random connection token key.
    pub(crate) balancer: Option<Balancer>,
}

/// An nginx started for each window in front of a target's nodes ([`procs::nginx_config`]).
#[derive(Clone, Debug)]
pub(crate) struct Balancer {
    /// The `nginx` program.
    pub(crate) program: PathBuf,
    /// `ip_hash` (every loopback client on one node: affinity) instead of round robin.
    pub(crate) sticky: bool,
}

/// The targets of the cross-node scenario (S6): the two servers on one process and on two
/// processes sharing a Redis.
pub(crate) const CROSS_NODE_TARGETS: [&str; 4] =
    ["hub", "hub-redis", "socketioxide", "socketioxide-redis"];

impl TargetSpec {
    pub(crate) fn supports(&self, case: &Case) -> bool {
        match case.scenario {
            // What forwarding costs: only the HTTP transports, whose requests are forwarded.
            _ if self.balancer.is_some() => {
                matches!(case.scenario, Scenario::S4Sse | Scenario::S4Lp) && case.wire == Wire::Json
            }
            Scenario::S6 => {
                CROSS_NODE_TARGETS.contains(&self.name)
                    && (case.wire == Wire::Json || matches!(self.name, "hub" | "hub-redis"))
            }
            _ if self.nodes > 1 || self.redis_server.is_some() => false,
            // What the recorder costs a call and a fan-out.
            _ if self.name == "hub-metrics" => {
                matches!(case.scenario, Scenario::S1 | Scenario::S1b | Scenario::S2)
                    && case.wire == Wire::Json
            }
            // Needs completions of the sends: the hub's invocations.
            // (socketioxide acks no `send`, and closes any socket whose 128-packet buffer is full
            // at its 25 s heartbeat, which sustained fan-out at full load hits: see BENCHMARKS.md.)
            Scenario::S8 | Scenario::S8Stalled => case.wire == Wire::Json && self.name == "hub",
            Scenario::S4Sse | Scenario::S4Lp => matches!(self.name, "hub" | "ref-http"),
            _ if self.name == "ref-http" => false,
            _ => case.wire == Wire::Json || matches!(self.name, "hub" | "ref-ws"),
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) profile: String,
    pub(crate) rounds: usize,
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
    pub(crate) cases: Vec<Case>,
    pub(crate) targets: Vec<TargetSpec>,
    pub(crate) s3_steps: Vec<usize>,
    pub(crate) s3_settle: Duration,
    pub(crate) payload: String,
    pub(crate) pin: bool,
    /// S1b offered rate when no S1 window at the same N ran first.
    pub(crate) fallback_rate: f64,
    /// Before each window, wait up to this long for the machine to be quiet (other processes
    /// using under a quarter of a core).
    pub(crate) quiet_wait: Duration,
    /// Targets asked for that cannot run here, each with the reason.
    pub(crate) skipped: Vec<String>,
    /// Messages the S2/S6 sender keeps in flight.
    pub(crate) fanout_in_flight: usize,
    /// S7: how many times K connections are opened and closed.
    pub(crate) churn_cycles: usize,
    /// S7: after closing, how long the RSS may take to come back within +10% of the baseline.
    pub(crate) churn_wait: Duration,
    /// S8's measured window (long enough for the stalled client to be closed by the hub).
    pub(crate) slow_window: Duration,
    /// S8: how long to wait, at most, for the stalled receiver's socket buffers to fill before
    /// the window (zero: do not wait).
    pub(crate) stall_fill_limit: Duration,
}

/// S7: one cycle of opening and closing K connections.
#[derive(Clone, Debug)]
pub(crate) struct ChurnCycle {
    /// The most RSS seen while the K connections were open.
    pub(crate) peak_rss: u64,
    /// RSS at the end of the wait after closing.
    pub(crate) end_rss: u64,
    /// Seconds from the first Close sent until the RSS was within +10% of the baseline.
    pub(crate) back_s: Option<f64>,
    /// Seconds until every connection was closed (the target ended each stream).
    pub(crate) close_s: f64,
}

/// S7's numbers: the baseline and each cycle.
#[derive(Clone, Debug)]
pub(crate) struct Churn {
    pub(crate) baseline_rss: u64,
    pub(crate) cycles: Vec<ChurnCycle>,
}

impl Churn {
    /// The last cycle's end RSS minus the first's, in bytes.
    pub(crate) fn growth(&self) -> f64 {
        match (self.cycles.first(), self.cycles.last()) {
            (Some(first), Some(last)) => last.end_rss as f64 - first.end_rss as f64,
            _ => f64::NAN,
        }
    }

    /// The S7 goal: after the last cycle's wait the RSS is within +10% of the baseline, and it
    /// grew over the cycles by at most 5% of what one cycle added (first peak − baseline).
    pub(crate) fn met(&self) -> bool {
        let Some(first) = self.cycles.first() else {
            return false;
        };
        let footprint = first.peak_rss.saturating_sub(self.baseline_rss) as f64;
        self.ratio() <= 1.10 && self.growth() <= 0.05 * footprint
    }

    /// RSS after the last cycle's wait over the baseline.
    pub(crate) fn ratio(&self) -> f64 {
        self.cycles.last().map_or(f64::NAN, |c| {
            c.end_rss as f64 / self.baseline_rss.max(1) as f64
        })
    }
}

/// S8: what became of the stalled receiver.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stalled {
    /// Deliveries it had received (read after the window).
    pub(crate) received: u64,
    /// Messages the sender wrote by the end of the window.
    pub(crate) sent: u64,
    /// Whether the target had closed it: a Close message, or the stream's end, in what it
    /// had been sent (read for at most 2 s after the window).
    pub(crate) closed: bool,
    /// Seconds from the sender's start until the socket buffers towards it were full (the
    /// target's writes to it blocked; the window starts then), if they filled within
    /// [`Plan::stall_fill_limit`].
    pub(crate) fill_s: Option<f64>,
    /// What the target's socket to it held then (bytes written, not acknowledged).
    pub(crate) send_queue: u64,
}

/// S8: waits until the target's socket to the stalled receiver stops taking more (its send
/// queue the same for 500 ms: the kernel's buffers on both ends are full, and the target's own
/// queue for it starts to fill), at most `limit` from `since`; returns when it was reached and
/// what the socket held.
async fn wait_stall_full(
    server_port: u16,
    client_port: u16,
    since: Instant,
    limit: Duration,
) -> (Option<f64>, u64) {
    let mut last = 0u64;
    let mut steady_since = Instant::now();
    while since.elapsed() < limit {
        // Each read of /proc/net/tcp walks the kernel's whole table (~3 ms here): not often.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some((true, queued)) = procs::tcp_server_socket(server_port, client_port) else {
            // Closed already (a target that gives up on it sooner).
            return (Some(since.elapsed().as_secs_f64()), last);
        };
        if queued != last || queued == 0 {
            last = queued;
            steady_since = Instant::now();
        } else if steady_since.elapsed() >= Duration::from_millis(500) {
            return (Some(since.elapsed().as_secs_f64()), queued);
        }
    }
    (None, last)
}

/// The result of one window.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub(crate) round: usize,
    pub(crate) case: Case,
    pub(crate) target: &'static str,
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) rate: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    /// S6 on two nodes: p50/p99 of the deliveries to receivers on the other node only.
    pub(crate) remote_p50_us: Option<f64>,
    pub(crate) remote_p99_us: Option<f64>,
    /// Fan-out deliveries that arrived after a later message of the same sender.
    pub(crate) reordered: u64,
    pub(crate) server_cpu_us_per_op: f64,
    pub(crate) server_util: f64,
    pub(crate) generator_util: f64,
    pub(crate) other_util: f64,
    pub(crate) rss_bytes: u64,
    pub(crate) offered_rate: Option<f64>,
    pub(crate) connect_rate: Option<f64>,
    /// S8: the broadcaster's latency, from a send's write to its completion.
    pub(crate) sender_p50_us: Option<f64>,
    pub(crate) sender_p99_us: Option<f64>,
    /// S8: the longest interval between two deliveries to one (non-stalled) receiver, and when
    /// (seconds into the window) it ended.
    pub(crate) max_gap_us: Option<f64>,
    pub(crate) max_gap_at_s: Option<f64>,
    /// S8 with a stalled receiver: what became of it.
    pub(crate) stalled: Option<Stalled>,
    /// S7's cycles.
    pub(crate) churn: Option<Churn>,
    pub(crate) metric: f64,
    pub(crate) flags: Vec<&'static str>,
    pub(crate) error: Option<String>,
}

impl Outcome {
    fn failed(round: usize, case: Case, target: &'static str, error: &anyhow::Error) -> Outcome {
        Outcome {
            round,
            case,
            target,
            ops: 0,
            errors: 1,
            elapsed_s: 0.0,
            rate: 0.0,
            p50_us: 0.0,
            p99_us: 0.0,
            p999_us: 0.0,
            remote_p50_us: None,
            remote_p99_us: None,
            reordered: 0,
            server_cpu_us_per_op: 0.0,
            server_util: 0.0,
            generator_util: 0.0,
            other_util: 0.0,
            rss_bytes: 0,
            offered_rate: None,
            connect_rate: None,
            sender_p50_us: None,
            sender_p99_us: None,
            max_gap_us: None,
            max_gap_at_s: None,
            stalled: None,
            churn: None,
            metric: f64::NAN,
            flags: vec!["errors"],
            error: Some(format!("{error:#}")),
        }
    }

    /// One JSON line.
    pub(crate) fn json(&self) -> serde_json::Value {
        let finite = |v: f64| if v.is_finite() { Some(v) } else { None };
        let mut line = serde_json::json!({
            "round": self.round,
            "scenario": format!("{:?}", self.case.scenario),
            "param": self.case.param,
            "protocol": self.case.wire.name(),
            "case": self.case.label(),
            "target": self.target,
            "ops": self.ops,
            "errors": self.errors,
            "window_s": self.elapsed_s,
            "rate_per_s": self.rate,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "remote_p50_us": self.remote_p50_us,
            "remote_p99_us": self.remote_p99_us,
            "reordered": self.reordered,
            "server_cpu_us_per_op": self.server_cpu_us_per_op,
            "server_cpu_util": self.server_util,
            "generator_cpu_util": self.generator_util,
            "other_cpu_util": self.other_util,
            "server_rss_bytes": self.rss_bytes,
            "offered_rate_per_s": self.offered_rate,
            "connect_rate_per_s": self.connect_rate,
            "metric": finite(self.metric),
            "metric_name": self.case.metric().0,
            "flags": self.flags,
            "error": self.error,
        });
        if self.sender_p99_us.is_some() {
            line["broadcaster_p50_us"] = serde_json::json!(self.sender_p50_us);
            line["broadcaster_p99_us"] = serde_json::json!(self.sender_p99_us);
            line["max_gap_us"] = serde_json::json!(self.max_gap_us);
            line["max_gap_at_s"] = serde_json::json!(self.max_gap_at_s);
        }
        if let Some(stalled) = self.stalled {
            line["stalled_received"] = stalled.received.into();
            line["stalled_sent"] = stalled.sent.into();
            line["stalled_closed"] = stalled.closed.into();
            line["stalled_fill_s"] = serde_json::json!(stalled.fill_s);
            line["stalled_send_queue_bytes"] = stalled.send_queue.into();
        }
        if let Some(churn) = &self.churn {
            line["baseline_rss_bytes"] = churn.baseline_rss.into();
            line["growth_bytes"] = serde_json::json!(finite(churn.growth()));
            line["goal_met"] = churn.met().into();
            line["cycles"] = churn
                .cycles
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "peak_rss_bytes": c.peak_rss,
                        "end_rss_bytes": c.end_rss,
                        "back_within_10pct_s": c.back_s,
                        "close_s": c.close_s,
                    })
                })
                .collect();
        }
        line
    }
}

/// A reading of the CPU clocks at one instant.
struct Snapshot {
    at: Instant,
    server_ns: u64,
    generator_ns: u64,
    busy_ticks: u64,
    steal_ticks: u64,
}

impl Snapshot {
    /// The clocks now; the server's is the sum over `pids` (a target's nodes and its Redis).
    fn take(pids: &[u32]) -> Snapshot {
        let (busy_ticks, steal_ticks) = procs::machine_ticks();
        Snapshot {
            at: Instant::now(),
            server_ns: pids.iter().map(|&pid| procs::cpu_ns(pid)).sum(),
            generator_ns: procs::self_cpu_ns(),
            busy_ticks,
            steal_ticks,
        }
    }
}

/// How many times a noisy window is measured at most.
const MAX_ATTEMPTS: usize = 3;

/// Runs the plan; every window is appended to `jsonl` as it ends.
pub(crate) async fn run(plan: &Plan, jsonl: Option<PathBuf>) -> Result<Vec<Outcome>> {
    let mut file = match &jsonl {
        Some(path) => Some(std::fs::File::create(path)?),
        None => None,
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut s1b_rates: BTreeMap<usize, f64> = BTreeMap::new();
    for round in 0..plan.rounds {
        for case in &plan.cases {
            let mut targets: Vec<&TargetSpec> =
                plan.targets.iter().filter(|t| t.supports(case)).collect();
            if targets.is_empty() {
                continue;
            }
            let shift = round % targets.len();
            targets.rotate_left(shift);
            let offered = if case.scenario == Scenario::S1b {
                let rate = *s1b_rates.entry(case.param).or_insert_with(|| {
                    // Half the slowest target's S1 rate at the same N, from this run so far.
                    outcomes
                        .iter()
                        .filter(|o| {
                            o.case.scenario == Scenario::S1
                                && o.case.param == case.param
                                && o.case.wire == case.wire
                                && o.errors == 0
                        })
                        .map(|o| o.rate)
                        .fold(None, |min: Option<f64>, r| {
                            Some(min.map_or(r, |m| m.min(r)))
                        })
                        .map_or(plan.fallback_rate, |slowest| slowest / 2.0)
                });
                Some(rate)
            } else {
                None
            };
            for target in targets {
                // A window disturbed by other processes is measured again (up to twice more).
                let mut attempt = 0;
                let outcome = loop {
                    attempt += 1;
                    let outcome = match run_window(plan, round, *case, target, offered).await {
                        Ok(outcome) => outcome,
                        Err(error) => Outcome::failed(round, *case, target.name, &error),
                    };
                    if !outcome.flags.contains(&"noisy") || attempt == MAX_ATTEMPTS {
                        break outcome;
                    }
                    eprintln!(
                        "round {round} {} {}: noisy window (other processes {:.0}% of a core), measuring again",
                        case.label(),
                        target.name,
                        outcome.other_util * 100.0
                    );
                    if let Some(file) = &mut file {
                        let mut line = outcome.json();
                        line["superseded"] = serde_json::Value::Bool(true);
                        writeln!(file, "{line}")?;
                    }
                };
                let metric = if outcome.metric.abs() < 10.0 {
                    format!("{:>12.2}", outcome.metric)
                } else {
                    format!("{:>12.0}", outcome.metric)
                };
                eprintln!(
                    "round {round} {:<28} {:<14} {metric} {:<13} p99 {:>8.0} µs  cpu {:>5.1} µs/op  server {:>3.0}%  gen {:>3.0}%  other {:>3.0}% {}{}",
                    case.label(),
                    target.name,
                    case.metric().0,
                    outcome.p99_us,
                    outcome.server_cpu_us_per_op,
                    outcome.server_util * 100.0,
                    outcome.generator_util * 100.0,
                    outcome.other_util * 100.0,
                    outcome.flags.join(","),
                    outcome.error.as_deref().map(|e| format!(" error: {e}")).unwrap_or_default(),
                );
                if let Some(file) = &mut file {
                    writeln!(file, "{}", outcome.json())?;
                }
                outcomes.push(outcome);
            }
        }
    }
    Ok(outcomes)
}

async fn run_window(
    plan: &Plan,
    round: usize,
    case: Case,
    spec: &TargetSpec,
    offered: Option<f64>,
) -> Result<Outcome> {
    wait_quiet(plan.quiet_wait).await;
    // S7 measures whether memory goes back to the system: our targets' allocator (mimalloc, see
    // `main.rs`) is told to return free pages at once. Elsewhere it keeps its default delay.
    let purge_at_once = case.scenario == Scenario::S7;
    let mut target = Deployment::start(spec, plan.pin, purge_at_once)?;
    let proto = Proto {
        dialect: spec.dialect,
        wire: case.wire,
    };
    let shared = Shared::new()?;
    let result = match case.scenario {
        Scenario::S3 => idle_window(plan, round, case, spec, &target, proto, &shared).await,
        Scenario::S7 => churn_window(plan, round, case, spec, &target, proto, &shared).await,
        _ => load_window(plan, round, case, spec, &target, proto, offered, &shared).await,
    };
    // The target goes first, so the TIME_WAIT sockets are on its side.
    target.stop();
    shared.abort_all();
    tokio::task::yield_now().await;
    result
}

/// The processes of one target for one window: its nodes, the Redis they share and the nginx
/// in front of them, all pinned to the targets' core.
struct Deployment {
    nodes: Vec<Target>,
    redis: Option<RedisServer>,
    proxy: Option<Nginx>,
}

impl Deployment {
    /// Starts the Redis (if any), then each node (behind a balancer: all with one random
    /// connection token key), then the balancer (if any), and waits until each accepts
    /// connections (`purge_at_once`: see [`Target::start`]).
    fn start(spec: &TargetSpec, pin: bool, purge_at_once: bool) -> Result<Deployment> {
        let redis = match &spec.redis_server {
            Some(program) => Some(RedisServer::start(program, pin)?),
            None => None,
        };
        let url = redis.as_ref().map(RedisServer::url);
        let mut launch = spec.launch.clone();
        if spec.balancer.is_some() {
            launch
                .args
                .extend(["--token-key".to_owned(), procs::random_token_key()?]);
        }
        let nodes = (0..spec.nodes.max(1))
            .map(|_| Target::start(&launch, pin, url.as_deref(), purge_at_once))
            .collect::<Result<Vec<_>>>()?;
        let proxy = match &spec.balancer {
            Some(balancer) => {
                let upstreams: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
                Some(Nginx::start(
                    &balancer.program,
                    &upstreams,
                    balancer.sticky,
                    pin,
                )?)
            }
            None => None,
        };
        Ok(Deployment {
            nodes,
            redis,
            proxy,
        })
    }

    /// Where the clients connect: the balancer, else the first node (the only one, or the
    /// sender's in S6).
    fn addr(&self) -> SocketAddr {
        if let Some(proxy) = &self.proxy {
            return proxy.addr;
        }
        self.nodes
            .first()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |n| n.addr)
    }

    /// Every process whose CPU and memory count as the server's: the nodes, the Redis and the
    /// balancer.
    fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .map(|n| n.pid)
            .chain(self.redis.as_ref().map(|r| r.pid))
            .chain(self.proxy.as_ref().map(|p| p.pid))
            .collect()
    }

    /// What the balancer answered with an error status so far (see [`Nginx::failures`]).
    fn proxy_failures(&self) -> Option<(usize, String)> {
        self.proxy.as_ref().and_then(Nginx::failures)
    }

    /// The summed RSS of [`pids`](Self::pids).
    fn rss_bytes(&self) -> u64 {
        self.pids().into_iter().map(procs::rss_bytes).sum()
    }

    /// Kills the balancer, then the nodes, then the Redis.
    fn stop(&mut self) {
        if let Some(proxy) = &mut self.proxy {
            proxy.stop();
        }
        for node in &mut self.nodes {
            node.stop();
        }
        if let Some(redis) = &mut self.redis {
            redis.stop();
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn load_window(
    plan: &Plan,
    round: usize,
    case: Case,
    spec: &TargetSpec,
    target: &Deployment,
    proto: Proto,
    offered: Option<f64>,
    shared: &Rc<Shared>,
) -> Result<Outcome> {
    let addr = target.addr();
    let payload: Rc<str> = Rc::from(plan.payload.as_str());
    let mut stalled: Option<WsConn> = None;
    match case.scenario {
        Scenario::S1 => {
            let conns = load::open_many(proto, addr, case.param, false).await?;
            load::start_echo(proto, conns, payload, shared);
        }
        Scenario::S1b => {
            let conns = load::open_many(proto, addr, case.param, false).await?;
            let rate = offered.unwrap_or(plan.fallback_rate);
            load::start_paced(proto, conns, payload, rate, shared);
        }
        Scenario::S2 | Scenario::S6 => {
            // S6: receivers split evenly over the nodes (S2 and one node: all on it), each
            // joined (its join acknowledged) before the sender, on the first node, starts.
            let nodes = target.nodes.len().max(1);
            let mut receivers = Vec::with_capacity(case.param);
            for (i, node) in target.nodes.iter().enumerate() {
                let count = case.param / nodes + usize::from(i < case.param % nodes);
                let conns = load::open_many(proto, node.addr, count, true).await?;
                receivers.extend(conns.into_iter().map(|ws| (ws, i > 0)));
            }
            let sender = load::open_many(proto, addr, 1, false)
                .await?
                .pop()
                .ok_or_else(|| anyhow!("no sender connection"))?;
            load::start_fanout(
                proto,
                sender,
                receivers,
                payload,
                plan.fanout_in_flight,
                false,
                shared,
            );
        }
        Scenario::S8 | Scenario::S8Stalled => {
            // The stalled receiver joins (its join acknowledged) first, then never reads.
            if case.scenario == Scenario::S8Stalled {
                stalled = load::open_many(proto, addr, 1, true).await?.pop();
            }
            let receivers = load::open_many(proto, addr, case.param, true).await?;
            let sender = load::open_many(proto, addr, 1, false)
                .await?
                .pop()
                .ok_or_else(|| anyhow!("no sender connection"))?;
            load::start_fanout(
                proto,
                sender,
                receivers.into_iter().map(|ws| (ws, false)).collect(),
                payload,
                plan.fanout_in_flight,
                true,
                shared,
            );
        }
        Scenario::S4Sse | Scenario::S4Lp => {
            let transport = if case.scenario == Scenario::S4Sse {
                HttpTransport::Sse
            } else {
                HttpTransport::LongPolling
            };
            let signalr = spec.dialect == Dialect::SignalR;
            let sessions = http_load::open_many(addr, signalr, transport, case.param).await?;
            http_load::start_echo(sessions, payload, shared);
        }
        Scenario::S3 | Scenario::S7 => bail!("{:?} has its own window", case.scenario),
    }
    let slow = matches!(case.scenario, Scenario::S8 | Scenario::S8Stalled);
    let started = Instant::now();
    tokio::time::sleep(plan.warmup).await;
    // S8: the window covers what the target does once the stalled receiver's socket takes no
    // more: its queue for the receiver fills, and it gives up on it (or not).
    let stall_fill = match &stalled {
        Some(ws) => Some(
            wait_stall_full(addr.port(), ws.local_port(), started, plan.stall_fill_limit).await,
        ),
        None => None,
    };
    let pids = target.pids();
    let before = Snapshot::take(&pids);
    shared.begin();
    tokio::time::sleep(if slow { plan.slow_window } else { plan.window }).await;
    shared.end();
    let after = Snapshot::take(&pids);
    let rss = target.rss_bytes();
    let proxy_failures = target.proxy_failures();
    let stalled = match stalled {
        Some(ws) => {
            let (fill_s, send_queue) = stall_fill.unwrap_or((None, 0));
            Some(Stalled {
                fill_s,
                send_queue,
                ..drain_stalled(proto, ws, shared.messages_sent.get()).await
            })
        }
        None => None,
    };

    let elapsed = after.at.duration_since(before.at).as_secs_f64();
    let ops = shared.ops.get();
    let hist = shared.hist.borrow();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let remote = shared.remote_hist.borrow();
    let remote_us = |q: f64| {
        (target.nodes.len() > 1 && !remote.is_empty())
            .then(|| remote.value_at_quantile(q) as f64 / 1000.0)
    };
    let server_s = after.server_ns.saturating_sub(before.server_ns) as f64 / 1e9;
    let generator_s = after.generator_ns.saturating_sub(before.generator_ns) as f64 / 1e9;
    let busy_s = after.busy_ticks.saturating_sub(before.busy_ticks) as f64 / procs::TICKS_PER_SEC;
    let steal_s =
        after.steal_ticks.saturating_sub(before.steal_ticks) as f64 / procs::TICKS_PER_SEC;
    let rate = ops as f64 / elapsed;
    let mut outcome = Outcome {
        round,
        case,
        target: spec.name,
        ops,
        errors: shared.errors.get(),
        elapsed_s: elapsed,
        rate,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        remote_p50_us: remote_us(0.5),
        remote_p99_us: remote_us(0.99),
        reordered: shared.reordered.get(),
        server_cpu_us_per_op: if ops > 0 {
            server_s * 1e6 / ops as f64
        } else {
            0.0
        },
        server_util: server_s / elapsed,
        generator_util: generator_s / elapsed,
        other_util: ((busy_s - server_s - generator_s).max(0.0) + steal_s) / elapsed,
        rss_bytes: rss,
        offered_rate: offered.filter(|_| case.scenario == Scenario::S1b),
        connect_rate: None,
        sender_p50_us: None,
        sender_p99_us: None,
        max_gap_us: None,
        max_gap_at_s: None,
        stalled,
        churn: None,
        metric: match case.scenario {
            Scenario::S1b => us(0.99),
            _ => rate,
        },
        flags: Vec::new(),
        error: shared.last_error.borrow().clone(),
    };
    if slow {
        let sender = shared.sender_hist.borrow();
        if !sender.is_empty() {
            outcome.sender_p50_us = Some(sender.value_at_quantile(0.5) as f64 / 1000.0);
            outcome.sender_p99_us = Some(sender.value_at_quantile(0.99) as f64 / 1000.0);
        }
        outcome.max_gap_us = Some(shared.max_gap_ns.get() as f64 / 1000.0);
        outcome.max_gap_at_s = shared
            .max_gap_end
            .get()
            .map(|end| end.saturating_duration_since(shared.since()).as_secs_f64());
        outcome.metric = outcome.sender_p99_us.unwrap_or(f64::NAN);
    }
    // A request the balancer answered with an error status failed the client too; its log
    // says which request it was, which node answered and with what.
    if let Some((count, text)) = proxy_failures {
        if outcome.errors == 0 {
            outcome.errors = count as u64;
        }
        outcome.error = Some(match outcome.error.take() {
            Some(error) => format!("{error}; {text}"),
            None => text,
        });
    }
    flag(&mut outcome);
    Ok(outcome)
}

/// S8: after the window, reads what reached the stalled receiver (for at most 2 s) and whether
/// the target closed it.
async fn drain_stalled(proto: Proto, mut ws: WsConn, sent: u64) -> Stalled {
    let mut received = 0u64;
    let mut closed = false;
    let mut events = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if ws
                .read_batch(|op, data| proto.parse(op, data, &mut events))
                .await
                .is_err()
            {
                closed = true;
                return;
            }
            for event in events.drain(..) {
                match event {
                    Event::Delivery(_) => received += 1,
                    Event::Closed => closed = true,
                    _ => {}
                }
            }
            if closed {
                return;
            }
        }
    })
    .await;
    Stalled {
        received,
        sent,
        closed,
        fill_s: None,
        send_queue: 0,
    }
}

#[allow(clippy::too_many_arguments)]
async fn idle_window(
    plan: &Plan,
    round: usize,
    case: Case,
    spec: &TargetSpec,
    target: &Deployment,
    proto: Proto,
    shared: &Rc<Shared>,
) -> Result<Outcome> {
    let addr = target.addr();
    let pids = target.pids();
    let before = Snapshot::take(&pids);
    tokio::time::sleep(plan.s3_settle).await;
    let mut points = vec![(0.0, target.rss_bytes() as f64)];
    let mut held = 0usize;
    let mut connect_time = 0.0;
    for &step in plan.s3_steps.iter().filter(|&&k| k <= case.param) {
        let started = Instant::now();
        let conns = load::open_many(proto, addr, step - held, false).await?;
        connect_time += started.elapsed().as_secs_f64();
        load::start_idle(proto, conns, shared);
        held = step;
        tokio::time::sleep(plan.s3_settle).await;
        points.push((held as f64, target.rss_bytes() as f64));
    }
    let after = Snapshot::take(&pids);
    let slope = least_squares_slope(&points);
    let elapsed = after.at.duration_since(before.at).as_secs_f64();
    let server_s = after.server_ns.saturating_sub(before.server_ns) as f64 / 1e9;
    let generator_s = after.generator_ns.saturating_sub(before.generator_ns) as f64 / 1e9;
    let busy_s = after.busy_ticks.saturating_sub(before.busy_ticks) as f64 / procs::TICKS_PER_SEC;
    let mut outcome = Outcome {
        round,
        case,
        target: spec.name,
        ops: held as u64,
        errors: shared.errors.get(),
        elapsed_s: elapsed,
        rate: 0.0,
        p50_us: 0.0,
        p99_us: 0.0,
        p999_us: 0.0,
        remote_p50_us: None,
        remote_p99_us: None,
        reordered: 0,
        server_cpu_us_per_op: if held > 0 {
            server_s * 1e6 / held as f64
        } else {
            0.0
        },
        server_util: server_s / elapsed,
        generator_util: generator_s / elapsed,
        other_util: (busy_s - server_s - generator_s).max(0.0) / elapsed,
        rss_bytes: points.last().map_or(0, |p| p.1 as u64),
        offered_rate: None,
        connect_rate: Some(held as f64 / connect_time.max(1e-9)),
        sender_p50_us: None,
        sender_p99_us: None,
        max_gap_us: None,
        max_gap_at_s: None,
        stalled: None,
        churn: None,
        metric: slope,
        flags: Vec::new(),
        error: shared.last_error.borrow().clone(),
    };
    outcome.rate = outcome.connect_rate.unwrap_or(0.0);
    // Connecting is the only load here; the generator being busy while connecting is expected.
    if outcome.errors > 0 {
        outcome.flags.push("errors");
    }
    Ok(outcome)
}

/// S7: after a settle, the baseline RSS; then [`Plan::churn_cycles`] times: K idle connections
/// opened (as S3) and held for a settle (the peak RSS read after opening and after the settle),
/// then all closed (a WebSocket Close each, the socket dropped once the target ended the
/// stream), then the RSS read every 500 ms until it is within +10% of the baseline or
/// [`Plan::churn_wait`] passed.
#[allow(clippy::too_many_arguments)]
async fn churn_window(
    plan: &Plan,
    round: usize,
    case: Case,
    spec: &TargetSpec,
    target: &Deployment,
    proto: Proto,
    shared: &Rc<Shared>,
) -> Result<Outcome> {
    let addr = target.addr();
    let pids = target.pids();
    let before = Snapshot::take(&pids);
    tokio::time::sleep(plan.s3_settle).await;
    let baseline = target.rss_bytes();
    let within = baseline as f64 * 1.10;
    let mut cycles = Vec::with_capacity(plan.churn_cycles);
    let mut connect_time = 0.0;
    for _ in 0..plan.churn_cycles {
        let started = Instant::now();
        let conns = load::open_many(proto, addr, case.param, false).await?;
        connect_time += started.elapsed().as_secs_f64();
        let group = load::start_idle_group(proto, conns, shared);
        let mut peak = target.rss_bytes();
        tokio::time::sleep(plan.s3_settle).await;
        peak = peak.max(target.rss_bytes());
        let closing = Instant::now();
        let still_open = group.close(Duration::from_secs(10)).await;
        if still_open > 0 {
            bail!("{still_open} connections still open 10 s after their Close");
        }
        let close_s = closing.elapsed().as_secs_f64();
        let (end_rss, back_s) = loop {
            let rss = target.rss_bytes();
            if rss as f64 <= within {
                break (rss, Some(closing.elapsed().as_secs_f64()));
            }
            if closing.elapsed() >= plan.churn_wait {
                break (rss, None);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        cycles.push(ChurnCycle {
            peak_rss: peak,
            end_rss,
            back_s,
            close_s,
        });
    }
    let after = Snapshot::take(&pids);
    let elapsed = after.at.duration_since(before.at).as_secs_f64();
    let server_s = after.server_ns.saturating_sub(before.server_ns) as f64 / 1e9;
    let generator_s = after.generator_ns.saturating_sub(before.generator_ns) as f64 / 1e9;
    let busy_s = after.busy_ticks.saturating_sub(before.busy_ticks) as f64 / procs::TICKS_PER_SEC;
    let opened = (case.param * cycles.len()) as u64;
    let churn = Churn {
        baseline_rss: baseline,
        cycles,
    };
    let connect_rate = opened as f64 / connect_time.max(1e-9);
    let mut outcome = Outcome {
        round,
        case,
        target: spec.name,
        ops: opened,
        errors: shared.errors.get(),
        elapsed_s: elapsed,
        rate: connect_rate,
        p50_us: 0.0,
        p99_us: 0.0,
        p999_us: 0.0,
        remote_p50_us: None,
        remote_p99_us: None,
        reordered: 0,
        server_cpu_us_per_op: if opened > 0 {
            server_s * 1e6 / opened as f64
        } else {
            0.0
        },
        server_util: server_s / elapsed,
        generator_util: generator_s / elapsed,
        other_util: (busy_s - server_s - generator_s).max(0.0) / elapsed,
        rss_bytes: churn.cycles.last().map_or(0, |c| c.end_rss),
        offered_rate: None,
        connect_rate: Some(connect_rate),
        sender_p50_us: None,
        sender_p99_us: None,
        max_gap_us: None,
        max_gap_at_s: None,
        stalled: None,
        metric: churn.ratio(),
        churn: Some(churn),
        flags: Vec::new(),
        error: shared.last_error.borrow().clone(),
    };
    // As in S3: connecting is the load, the generator being busy then is expected.
    if outcome.errors > 0 {
        outcome.flags.push("errors");
    }
    Ok(outcome)
}

/// Waits (at most `limit`) until other processes use less than a quarter of a core.
async fn wait_quiet(limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        let (before, _) = procs::machine_ticks();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (after, _) = procs::machine_ticks();
        let cores = after.saturating_sub(before) as f64 / procs::TICKS_PER_SEC / 0.5;
        if cores < 0.25 {
            return;
        }
    }
}

/// Marks windows whose numbers say more about the generator or the machine than the target.
fn flag(outcome: &mut Outcome) {
    if outcome.errors > 0 {
        outcome.flags.push("errors");
    }
    if outcome.generator_util > 0.9 {
        outcome.flags.push("generator-bound");
    }
    if outcome.other_util > 0.15 {
        outcome.flags.push("noisy");
    }
}

/// The slope of the least-squares line through `points`.
pub(crate) fn least_squares_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return f64::NAN;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    sxy / sxx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &'static str, nodes: usize, on_redis: bool) -> TargetSpec {
        TargetSpec {
            name,
            dialect: Dialect::SignalR,
            nodes,
            launch: Launch {
                program: PathBuf::from("target"),
                args: Vec::new(),
                dir: None,
                port_env: None,
                redis: None,
            },
            redis_server: on_redis.then(|| PathBuf::from("redis-server")),
            balancer: None,
        }
    }

    #[test]
    fn redis_targets_run_the_cross_node_scenario_only() {
        let case = |scenario, wire| Case {
            scenario,
            param: 100,
            wire,
        };
        let s2 = case(Scenario::S2, Wire::Json);
        let s6 = case(Scenario::S6, Wire::Json);
        let s6_msgpack = case(Scenario::S6, Wire::Msgpack);
        let hub_redis = spec("hub-redis", 2, true);
        let socketioxide_redis = spec("socketioxide-redis", 2, true);
        assert!(hub_redis.supports(&s6) && hub_redis.supports(&s6_msgpack));
        assert!(socketioxide_redis.supports(&s6) && !socketioxide_redis.supports(&s6_msgpack));
        assert!(!hub_redis.supports(&s2) && !socketioxide_redis.supports(&s2));
        assert!(spec("hub", 1, false).supports(&s6) && spec("hub", 1, false).supports(&s2));
        assert!(!spec("ref-ws", 1, false).supports(&s6));
    }

    #[test]
    fn balanced_targets_run_the_http_transports_only() {
        let case = |scenario, wire| Case {
            scenario,
            param: 64,
            wire,
        };
        for sticky in [false, true] {
            let lb = TargetSpec {
                balancer: Some(Balancer {
                    program: PathBuf::from("nginx"),
                    sticky,
                }),
                ..spec(if sticky { "hub-lb-sticky" } else { "hub-lb" }, 3, true)
            };
            assert!(lb.supports(&case(Scenario::S4Sse, Wire::Json)));
            assert!(lb.supports(&case(Scenario::S4Lp, Wire::Json)));
            assert!(!lb.supports(&case(Scenario::S4Sse, Wire::Msgpack)));
            assert!(!lb.supports(&case(Scenario::S4Lp, Wire::Msgpack)));
            for scenario in [
                Scenario::S1,
                Scenario::S1b,
                Scenario::S2,
                Scenario::S3,
                Scenario::S6,
                Scenario::S7,
                Scenario::S8,
                Scenario::S8Stalled,
            ] {
                assert!(!lb.supports(&case(scenario, Wire::Json)), "{scenario:?}");
                assert!(!lb.supports(&case(scenario, Wire::Msgpack)), "{scenario:?}");
            }
        }
        // The same three nodes on Redis without a balancer would run no S4 (as hub-redis).
        assert!(!spec("hub-redis", 2, true).supports(&case(Scenario::S4Sse, Wire::Json)));
        assert!(spec("hub", 1, false).supports(&case(Scenario::S4Lp, Wire::Json)));
    }

    #[test]
    fn churn_and_slow_consumer_targets() {
        let case = |scenario| Case {
            scenario,
            param: 100,
            wire: Wire::Json,
        };
        let (s7, s8, s8_stalled) = (
            case(Scenario::S7),
            case(Scenario::S8),
            case(Scenario::S8Stalled),
        );
        let hub = spec("hub", 1, false);
        assert!(hub.supports(&s7) && hub.supports(&s8) && hub.supports(&s8_stalled));
        for peer in ["ref-ws", "socketioxide", "socketio-node"] {
            let peer = spec(peer, 1, false);
            assert!(peer.supports(&s7) && !peer.supports(&s8) && !peer.supports(&s8_stalled));
        }
        assert!(!spec("ref-http", 1, false).supports(&s7));
        assert!(!spec("hub-redis", 2, true).supports(&s7));
        assert!(!spec("hub-redis", 2, true).supports(&s8));
    }

    #[test]
    fn churn_goal() {
        let cycle = |peak, end| ChurnCycle {
            peak_rss: peak,
            end_rss: end,
            back_s: None,
            close_s: 0.1,
        };
        let back = Churn {
            baseline_rss: 100,
            cycles: vec![cycle(1000, 105), cycle(1000, 106)],
        };
        assert!((back.ratio() - 1.06).abs() < 1e-9);
        assert!((back.growth() - 1.0).abs() < 1e-9);
        assert!(back.met());
        let kept = Churn {
            baseline_rss: 100,
            cycles: vec![cycle(1000, 900), cycle(1000, 905)],
        };
        assert!(!kept.met());
        // Back within +10%, but growing by more than 5% of what one cycle added (500).
        let growing = Churn {
            baseline_rss: 1000,
            cycles: vec![cycle(1500, 1000), cycle(1500, 1050), cycle(1500, 1099)],
        };
        assert!(growing.ratio() <= 1.10 && !growing.met());
    }

    #[test]
    fn slope_of_a_line() {
        let points = [(0.0, 100.0), (10.0, 300.0), (20.0, 500.0)];
        assert!((least_squares_slope(&points) - 20.0).abs() < 1e-9);
    }
}
