//! `hub-bench`: our hubs against a raw WebSocket echo and two peers, side by side.
//!
//! ```text
//! hub-bench run [--profile quick|full] [--targets hub,ref-ws,...] [--scenarios s1,s1b,s2,s3,s4,s5,s6,s7,s8]
//!               [--rounds N] [--window SECS] [--s8-window SECS] [--warmup SECS] [--quiet-wait SECS]
//!               [--fanout-in-flight N] [--out DIR] [--no-pin]
//! hub-bench smoke                       one short round: hub, ref-ws, ref-http (and hub-redis
//!                                       where redis-server is installed); fails on errors
//! hub-bench serve hub|ref-ws|ref-http --port P [--redis URL] [--token-key SECRET]
//!                                       run one of our targets (the harness does this)
//! ```
//!
//! Targets: hub, ref-ws, ref-http, socketioxide, socketio-node, hub-redis, socketioxide-redis,
//! hub-lb, hub-lb-sticky (the last two: S4 only, three `hub` nodes on one Redis behind nginx,
//! round robin or `ip_hash`: what forwarding a request to the connection's owner costs).
//!
//! See `BENCHMARKS.md` at the repository root for what each number means.

// A command-line tool whose output is its measurements: it prints the summary to stdout and
// progress to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod client;
mod http_load;
mod load;
mod peers;
mod procs;
mod proto;
mod refhttp;
mod report;
mod runner;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::proto::{Dialect, Wire};
use crate::runner::{Case, Plan, Scenario, TargetSpec};

/// Every process of the harness (the load generator and the targets it starts) allocates with
/// mimalloc; in S7 the targets run with `MIMALLOC_PURGE_DELAY=0` ([`procs::Target::start`]), so
/// that what closed connections freed goes back to the system at once (BENCHMARKS.md compares
/// allocators).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hub-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("serve") => {
            let name = args
                .get(1)
                .ok_or_else(|| anyhow!("serve needs a target name"))?;
            let port = flag_value(&args[2..], "--port")?
                .ok_or_else(|| anyhow!("serve needs --port"))?
                .parse()?;
            let redis = flag_value(&args[2..], "--redis")?;
            let token_key = flag_value(&args[2..], "--token-key")?;
            serve::serve(name, port, redis, token_key)
        }
        Some("run") => run(&args[1..], false),
        Some("smoke") => run(&args[1..], true),
        _ => {
            println!(
                "usage: hub-bench run [--profile quick|full] [--targets LIST] [--scenarios LIST] \
                 [--rounds N] [--window SECS] [--s8-window SECS] [--warmup SECS] [--quiet-wait SECS] [--fanout-in-flight N] [--out DIR] [--no-pin]\n       \
                 hub-bench smoke\n       hub-bench serve hub|ref-ws|ref-http --port PORT [--redis URL] [--token-key SECRET]\n\n\
                 targets: hub, ref-ws, ref-http, socketioxide, socketio-node, hub-redis, socketioxide-redis,\n         \
                 hub-lb, hub-lb-sticky (S4 only: 3 hub nodes on one Redis behind nginx, round robin / ip_hash)\n\
                 scenarios: s1, s1b, s2, s3, s4, s5, s6, s7, s8"
            );
            Ok(())
        }
    }
}

fn flag_value(args: &[String], name: &str) -> Result<Option<String>> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .ok_or_else(|| anyhow!("{name} needs a value")),
        None => Ok(None),
    }
}

/// S8's window in the quick and full profiles, in seconds: it starts once the stalled receiver's
/// socket takes no more, and the hub closes such a client within its send timeout (10 s) of
/// that, sooner when its queue and overflow (1024 messages each) fill first (see BENCHMARKS.md).
const SLOW_WINDOW_S: u64 = 12;

/// The two profiles of the issue, and the smoke run.
fn profile(name: &str) -> Result<Plan> {
    let json = |scenario, param| Case {
        scenario,
        param,
        wire: Wire::Json,
    };
    let msgpack = |scenario, param| Case {
        scenario,
        param,
        wire: Wire::Msgpack,
    };
    let base = Plan {
        profile: name.to_owned(),
        rounds: 3,
        warmup: Duration::from_millis(500),
        window: Duration::from_millis(1500),
        cases: Vec::new(),
        targets: Vec::new(),
        s3_steps: vec![1000, 5000, 10000, 19000],
        s3_settle: Duration::from_millis(500),
        payload: "the quick brown fox jumps over the lazy dog".to_owned(),
        pin: true,
        fallback_rate: 10_000.0,
        quiet_wait: Duration::from_secs(5),
        skipped: Vec::new(),
        fanout_in_flight: load::FANOUT_IN_FLIGHT,
        churn_cycles: 3,
        churn_wait: Duration::from_secs(30),
        slow_window: Duration::from_secs(SLOW_WINDOW_S),
        stall_fill_limit: Duration::from_secs(180),
    };
    Ok(match name {
        "quick" => Plan {
            cases: vec![
                json(Scenario::S1, 1),
                json(Scenario::S1, 256),
                json(Scenario::S1, 1000),
                json(Scenario::S1b, 256),
                json(Scenario::S2, 1000),
                json(Scenario::S2, 10000),
                json(Scenario::S3, 10000),
                json(Scenario::S4Sse, 64),
                json(Scenario::S4Lp, 64),
                msgpack(Scenario::S1, 256),
                msgpack(Scenario::S2, 1000),
                json(Scenario::S6, 1000),
                json(Scenario::S6, 10000),
                json(Scenario::S7, 10000),
                json(Scenario::S8, 1000),
                json(Scenario::S8Stalled, 1000),
            ],
            ..base
        },
        "full" => Plan {
            rounds: 6,
            warmup: Duration::from_secs(2),
            window: Duration::from_secs(10),
            s3_settle: Duration::from_secs(2),
            quiet_wait: Duration::from_secs(60),
            cases: vec![
                json(Scenario::S1, 1),
                json(Scenario::S1, 256),
                json(Scenario::S1, 1000),
                json(Scenario::S1b, 1),
                json(Scenario::S1b, 256),
                json(Scenario::S1b, 1000),
                json(Scenario::S2, 1000),
                json(Scenario::S2, 10000),
                json(Scenario::S3, 19000),
                json(Scenario::S4Sse, 1),
                json(Scenario::S4Sse, 256),
                json(Scenario::S4Lp, 1),
                json(Scenario::S4Lp, 256),
                msgpack(Scenario::S1, 1),
                msgpack(Scenario::S1, 256),
                msgpack(Scenario::S1, 1000),
                msgpack(Scenario::S2, 1000),
                msgpack(Scenario::S2, 10000),
                json(Scenario::S6, 1000),
                json(Scenario::S6, 10000),
                json(Scenario::S7, 10000),
                json(Scenario::S8, 1000),
                json(Scenario::S8Stalled, 1000),
            ],
            ..base
        },
        "smoke" => Plan {
            rounds: 1,
            warmup: Duration::from_millis(300),
            window: Duration::from_millis(1000),
            s3_steps: vec![50, 100],
            s3_settle: Duration::from_millis(200),
            quiet_wait: Duration::ZERO,
            cases: vec![
                json(Scenario::S1, 1),
                json(Scenario::S1, 64),
                json(Scenario::S1b, 64),
                json(Scenario::S2, 100),
                json(Scenario::S3, 100),
                json(Scenario::S4Sse, 8),
                json(Scenario::S4Lp, 8),
                msgpack(Scenario::S1, 64),
                msgpack(Scenario::S2, 100),
                json(Scenario::S6, 100),
                json(Scenario::S7, 100),
                json(Scenario::S8, 100),
                json(Scenario::S8Stalled, 100),
            ],
            churn_cycles: 2,
            // A harness check: one wait of at most 1 s per cycle.
            churn_wait: Duration::from_secs(1),
            // A harness check: the stalled receiver's buffers are not waited for.
            slow_window: Duration::from_millis(1000),
            stall_fill_limit: Duration::ZERO,
            ..base
        },
        other => bail!("unknown profile `{other}`; expected quick or full"),
    })
}

/// The `hub` nodes behind nginx in `hub-lb` and `hub-lb-sticky`.
const LB_NODES: usize = 3;

/// Where this crate lives (peers and results are found from here).
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The targets named, and why any of them cannot run here (`hub-redis` and `socketioxide-redis`
/// without `redis-server`, `hub-lb` and `hub-lb-sticky` without `redis-server` or nginx): those
/// are left out, the run goes on.
fn target_specs(names: &[String]) -> Result<(Vec<TargetSpec>, Vec<String>)> {
    let exe = std::env::current_exe().context("locating hub-bench")?;
    let ours = |name: &'static str, dialect| TargetSpec {
        name,
        dialect,
        nodes: 1,
        launch: procs::Launch {
            program: exe.clone(),
            args: vec!["serve".to_owned(), name.to_owned()],
            dir: None,
            port_env: None,
            redis: None,
        },
        redis_server: None,
        balancer: None,
    };
    let redis_server = procs::redis_server_program();
    let mut socketioxide: Option<procs::Launch> = None;
    let mut specs = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        match name.as_str() {
            "hub" => specs.push(ours("hub", Dialect::SignalR)),
            // The hub with the Prometheus recorder installed and scraped: what metrics cost.
            "hub-metrics" => specs.push(ours("hub-metrics", Dialect::SignalR)),
            "ref-ws" => specs.push(ours("ref-ws", Dialect::Raw)),
            "ref-http" => specs.push(ours("ref-http", Dialect::Raw)),
            "socketio-node" => specs.push(TargetSpec {
                name: "socketio-node",
                dialect: Dialect::SocketIo,
                nodes: 1,
                launch: peers::socketio_node(&crate_dir())?,
                redis_server: None,
                balancer: None,
            }),
            "hub-lb" | "hub-lb-sticky" => {
                let nginx = procs::nginx_program();
                let (Some(redis_server), Some(nginx)) = (&redis_server, &nginx) else {
                    let missing: Vec<&str> = [
                        redis_server.is_none().then_some(
                            "redis-server not found (HUB_BENCH_REDIS_SERVER, /usr/bin or PATH; Debian: apt-get install redis-server)",
                        ),
                        nginx.is_none().then_some(
                            "nginx not found (HUB_BENCH_NGINX, /usr/sbin or PATH; Debian: apt-get install nginx)",
                        ),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let reason = format!("{name}: {}", missing.join("; "));
                    eprintln!("hub-bench: skipping {reason}");
                    skipped.push(reason);
                    continue;
                };
                let sticky = name == "hub-lb-sticky";
                let mut launch = ours("hub", Dialect::SignalR).launch;
                launch.redis = Some(procs::RedisVia::Flag("--redis"));
                specs.push(TargetSpec {
                    name: if sticky { "hub-lb-sticky" } else { "hub-lb" },
                    dialect: Dialect::SignalR,
                    nodes: LB_NODES,
                    launch,
                    redis_server: Some(redis_server.clone()),
                    balancer: Some(runner::Balancer {
                        program: nginx.clone(),
                        sticky,
                    }),
                });
            }
            "socketioxide" | "socketioxide-redis" | "hub-redis" => {
                let on_redis = name != "socketioxide";
                if on_redis && redis_server.is_none() {
                    let reason = format!(
                        "{name}: redis-server not found (HUB_BENCH_REDIS_SERVER, /usr/bin or PATH; Debian: apt-get install redis-server)"
                    );
                    eprintln!("hub-bench: skipping {reason}");
                    skipped.push(reason);
                    continue;
                }
                let launch = if name == "hub-redis" {
                    let mut launch = ours("hub", Dialect::SignalR).launch;
                    launch.redis = Some(procs::RedisVia::Flag("--redis"));
                    launch
                } else {
                    let mut launch = match &socketioxide {
                        Some(launch) => launch,
                        None => socketioxide.insert(peers::socketioxide(&crate_dir())?),
                    }
                    .clone();
                    if on_redis {
                        launch.redis = Some(procs::RedisVia::Env("REDIS_URL"));
                    }
                    launch
                };
                let (name, dialect) = match name.as_str() {
                    "hub-redis" => ("hub-redis", Dialect::SignalR),
                    "socketioxide-redis" => ("socketioxide-redis", Dialect::SocketIo),
                    _ => ("socketioxide", Dialect::SocketIo),
                };
                specs.push(TargetSpec {
                    name,
                    dialect,
                    nodes: if on_redis { 2 } else { 1 },
                    launch,
                    redis_server: if on_redis { redis_server.clone() } else { None },
                    balancer: None,
                });
            }
            other => bail!(
                "unknown target `{other}`; expected hub, ref-ws, ref-http, socketioxide, \
                 socketio-node, hub-redis, socketioxide-redis, hub-lb or hub-lb-sticky"
            ),
        }
    }
    Ok((specs, skipped))
}

fn run(args: &[String], smoke: bool) -> Result<()> {
    let profile_name = if smoke {
        "smoke".to_owned()
    } else {
        flag_value(args, "--profile")?.unwrap_or_else(|| "quick".to_owned())
    };
    let mut plan = profile(&profile_name)?;
    // The smoke run adds `hub-redis` only where redis-server is installed (CI installs it).
    let default_targets = match (smoke, procs::redis_server_program().is_some()) {
        (true, false) => "hub,ref-ws,ref-http",
        (true, true) => "hub,ref-ws,ref-http,hub-redis",
        (false, _) => "hub,ref-ws,ref-http,socketioxide,socketio-node,hub-redis,socketioxide-redis",
    };
    let names: Vec<String> = flag_value(args, "--targets")?
        .unwrap_or_else(|| default_targets.to_owned())
        .split(',')
        .map(str::to_owned)
        .collect();
    let scenarios = flag_value(args, "--scenarios")?;
    if scenarios.is_none() && profile_name == "quick" {
        // S7 and S8 wait for memory and for a stalled socket (~20 minutes between them): the
        // quick profile runs them only when asked (`--scenarios s7,s8`), so that the run before
        // and after a hot-path change stays a few minutes.
        plan.cases.retain(|c| {
            !matches!(
                c.scenario,
                Scenario::S7 | Scenario::S8 | Scenario::S8Stalled
            )
        });
    }
    if let Some(list) = scenarios {
        let wanted: Vec<&str> = list.split(',').collect();
        plan.cases.retain(|c| {
            let name = match (c.scenario, c.wire) {
                (_, Wire::Msgpack) => "s5",
                (Scenario::S1, _) => "s1",
                (Scenario::S1b, _) => "s1b",
                (Scenario::S2, _) => "s2",
                (Scenario::S3, _) => "s3",
                (Scenario::S4Sse | Scenario::S4Lp, _) => "s4",
                (Scenario::S6, _) => "s6",
                (Scenario::S7, _) => "s7",
                (Scenario::S8 | Scenario::S8Stalled, _) => "s8",
            };
            wanted.contains(&name)
        });
    }
    if let Some(rounds) = flag_value(args, "--rounds")? {
        plan.rounds = rounds.parse::<usize>()?.max(1);
    }
    if let Some(secs) = flag_value(args, "--window")? {
        plan.window = Duration::from_secs_f64(secs.parse()?);
    }
    if let Some(secs) = flag_value(args, "--s8-window")? {
        plan.slow_window = Duration::from_secs_f64(secs.parse()?);
    }
    if let Some(secs) = flag_value(args, "--quiet-wait")? {
        plan.quiet_wait = Duration::from_secs_f64(secs.parse()?);
    }
    if let Some(n) = flag_value(args, "--fanout-in-flight")? {
        let n: usize = n.parse()?;
        if !(1..=load::MAX_FANOUT_IN_FLIGHT).contains(&n) {
            bail!(
                "--fanout-in-flight must be 1 to {}",
                load::MAX_FANOUT_IN_FLIGHT
            );
        }
        plan.fanout_in_flight = n;
    }
    if let Some(secs) = flag_value(args, "--warmup")? {
        plan.warmup = Duration::from_secs_f64(secs.parse()?);
    }
    let fingerprint = procs::fingerprint();
    plan.pin = !args.iter().any(|a| a == "--no-pin");
    if plan.pin && !procs::have_taskset() {
        eprintln!("hub-bench: taskset not found; running unpinned");
        plan.pin = false;
    }
    // Peers are built/installed here, before the generator pins itself.
    (plan.targets, plan.skipped) = target_specs(&names)?;
    if plan.pin {
        match procs::pin_self() {
            Ok(()) => {}
            // The smoke run checks correctness, not speed: it may share one core.
            Err(error) if smoke => {
                eprintln!("hub-bench: {error:#}; running unpinned");
                plan.pin = false;
            }
            Err(error) => return Err(error),
        }
    }
    let out_dir = flag_value(args, "--out")?
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("results"));
    std::fs::create_dir_all(&out_dir)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jsonl = out_dir.join(format!("{stamp}-{profile_name}.jsonl"));
    eprintln!("hub-bench: {fingerprint}; windows → {}", jsonl.display());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let outcomes = local.block_on(&rt, runner::run(&plan, Some(jsonl.clone())))?;
    let summary = report::markdown(&plan, &outcomes, &fingerprint);
    std::fs::write(jsonl.with_extension("md"), &summary)?;
    println!("{summary}");

    if smoke {
        let bad: Vec<String> = outcomes
            .iter()
            .filter(|o| {
                o.errors > 0
                    || o.metric.is_nan()
                    || o.metric <= 0.0
                    || (o.case.scenario != Scenario::S3 && o.rate <= 0.0)
            })
            .map(|o| {
                format!(
                    "{} {}: {} error(s), metric {} {}",
                    o.case.label(),
                    o.target,
                    o.errors,
                    o.metric,
                    o.error.as_deref().unwrap_or("")
                )
            })
            .collect();
        if !bad.is_empty() {
            bail!("smoke failed:\n  {}", bad.join("\n  "));
        }
        eprintln!(
            "hub-bench smoke: {} windows, no errors, all rates non-zero",
            outcomes.len()
        );
    }
    Ok(())
}
