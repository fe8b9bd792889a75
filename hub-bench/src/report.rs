//! The Markdown summary: medians over the measured rounds, per-round ratios, goals.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::proto::Wire;
use crate::runner::{Case, Outcome, Plan, Scenario};

const PEERS: [&str; 4] = ["ref-ws", "ref-http", "socketioxide", "socketio-node"];

/// Median, min and max of `values` (NaN when empty).
pub(crate) fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

/// The first round that counts (the first is discarded when there are several).
pub(crate) fn first_measured(rounds: usize) -> usize {
    usize::from(rounds > 1)
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        "–".to_owned()
    } else if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn ratio_text((median, min, max): (f64, f64, f64)) -> String {
    if median.is_finite() {
        format!("{median:.2}× ({min:.2}–{max:.2})")
    } else {
        "–".to_owned()
    }
}

/// Per-round ratios `hub/peer` for one case.
pub(crate) fn ratios(outcomes: &[Outcome], case: &Case, peer: &str, from: usize) -> Vec<f64> {
    ratios_between(outcomes, case, "hub", peer, from)
}

/// Per-round ratios `target/peer` of the metric for one case (windows with errors left out).
pub(crate) fn ratios_between(
    outcomes: &[Outcome],
    case: &Case,
    target: &str,
    peer: &str,
    from: usize,
) -> Vec<f64> {
    let by_round = |target: &str| -> BTreeMap<usize, f64> {
        outcomes
            .iter()
            .filter(|o| &o.case == case && o.target == target && o.round >= from && o.errors == 0)
            .map(|o| (o.round, o.metric))
            .collect()
    };
    let hub = by_round(target);
    let other = by_round(peer);
    hub.iter()
        .filter_map(|(round, h)| other.get(round).map(|o| h / o))
        .filter(|r| r.is_finite())
        .collect()
}

/// Per-round `hub msgpack / hub json` for a msgpack case.
fn msgpack_ratios(outcomes: &[Outcome], case: &Case, from: usize) -> Vec<f64> {
    let json = Case {
        wire: Wire::Json,
        ..*case
    };
    let pick = |c: &Case| -> BTreeMap<usize, f64> {
        outcomes
            .iter()
            .filter(|o| &o.case == c && o.target == "hub" && o.round >= from && o.errors == 0)
            .map(|o| (o.round, o.metric))
            .collect()
    };
    let (mp, js) = (pick(case), pick(&json));
    mp.iter()
        .filter_map(|(r, m)| js.get(r).map(|j| m / j))
        .collect()
}

/// The whole summary as Markdown.
pub(crate) fn markdown(plan: &Plan, outcomes: &[Outcome], fingerprint: &str) -> String {
    let from = first_measured(plan.rounds);
    let mut all_cases: Vec<Case> = plan.cases.clone();
    all_cases.dedup();
    // S6, S7 and S8 have tables of their own; the main table shows the targets of the others.
    let (own_table, cases): (Vec<Case>, Vec<Case>) = all_cases.iter().partition(|c| {
        matches!(
            c.scenario,
            Scenario::S6 | Scenario::S7 | Scenario::S8 | Scenario::S8Stalled
        )
    });
    let cross_cases: Vec<Case> = own_table
        .iter()
        .copied()
        .filter(|c| c.scenario == Scenario::S6)
        .collect();
    let churn_cases: Vec<Case> = own_table
        .iter()
        .copied()
        .filter(|c| c.scenario == Scenario::S7)
        .collect();
    let slow_cases: Vec<Case> = own_table
        .iter()
        .copied()
        .filter(|c| matches!(c.scenario, Scenario::S8 | Scenario::S8Stalled))
        .collect();
    // The targets behind a load balancer have a table of their own (S4 only), and rows in the
    // details.
    let detail_targets: Vec<&str> = plan
        .targets
        .iter()
        .filter(|t| cases.iter().any(|c| t.supports(c)))
        .map(|t| t.name)
        .collect();
    let targets: Vec<&str> = plan
        .targets
        .iter()
        .filter(|t| t.balancer.is_none() && cases.iter().any(|c| t.supports(c)))
        .map(|t| t.name)
        .collect();
    let balanced_cases: Vec<Case> = cases
        .iter()
        .copied()
        .filter(|c| {
            plan.targets
                .iter()
                .any(|t| t.balancer.is_some() && t.supports(c))
        })
        .collect();
    let mut out = String::new();
    let measured = plan.rounds - from;
    let _ = writeln!(
        out,
        "Profile `{}` on {fingerprint}; {} round(s) measured ({} discarded), {} s windows after {} s warm-up, target order rotated each round; the fan-out sender keeps {} message(s) in flight. Medians over rounds; ratios are medians of per-round ratios (min–max).\n",
        plan.profile,
        measured,
        from,
        plan.window.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        plan.fanout_in_flight
    );
    for reason in &plan.skipped {
        let _ = writeln!(out, "Skipped {reason}.\n");
    }
    // Main table.
    if !cases.is_empty() && !targets.is_empty() {
        main_table(&mut out, &cases, &targets, outcomes, from);
    }
    if !balanced_cases.is_empty() {
        forwarding_table(&mut out, plan, &balanced_cases, outcomes, from);
    }
    if plan.targets.iter().any(|t| t.name == "hub-metrics") {
        recorder_table(&mut out, plan, &cases, outcomes, from);
    }
    if !cross_cases.is_empty() {
        cross_node_table(&mut out, plan, &cross_cases, outcomes, from);
    }
    if !churn_cases.is_empty() {
        churn_table(&mut out, plan, &churn_cases, outcomes, from);
    }
    if !slow_cases.is_empty() {
        slow_consumer_table(&mut out, plan, &slow_cases, outcomes, from);
    }
    details(&mut out, &cases, &detail_targets, outcomes, from);
    let errors: Vec<&Outcome> = outcomes.iter().filter(|o| o.errors > 0).collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\nWindows with errors (excluded above):\n");
        for o in errors {
            let _ = writeln!(
                out,
                "- round {} {} {}: {} error(s): {}",
                o.round,
                o.case.label(),
                o.target,
                o.errors,
                o.error.as_deref().unwrap_or("")
            );
        }
    }
    let _ = writeln!(out, "\n{}", goals(plan, &all_cases, outcomes, from));
    out
}

/// `"{n}/{total}: target rR flags; …"` for the flagged windows of `case`, or `"0"`.
fn flagged_windows(outcomes: &[Outcome], case: &Case, from: usize, target: Option<&str>) -> String {
    let windows: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| &o.case == case && o.round >= from && target.is_none_or(|t| o.target == t))
        .collect();
    let flagged: Vec<String> = windows
        .iter()
        .filter(|o| !o.flags.is_empty())
        .map(|o| format!("{} r{} {}", o.target, o.round, o.flags.join("+")))
        .collect();
    if flagged.is_empty() {
        "0".to_owned()
    } else {
        format!(
            "{}/{}: {}",
            flagged.len(),
            windows.len(),
            flagged.join("; ")
        )
    }
}

/// One row per case, one column per target, then `hub/peer` ratios.
fn main_table(
    out: &mut String,
    cases: &[Case],
    targets: &[&str],
    outcomes: &[Outcome],
    from: usize,
) {
    let _ = write!(out, "| case | metric |");
    for t in targets {
        let _ = write!(out, " {t} |");
    }
    let peers: Vec<&str> = PEERS
        .iter()
        .copied()
        .filter(|p| targets.contains(p))
        .collect();
    for p in &peers {
        let _ = write!(out, " hub/{p} |");
    }
    let _ = writeln!(out, " msgpack/json (hub) | flagged windows |");
    let _ = write!(out, "|---|---|");
    for _ in 0..targets.len() + peers.len() + 2 {
        let _ = write!(out, "---|");
    }
    let _ = writeln!(out);
    for case in cases {
        let (metric, _) = case.metric();
        let _ = write!(out, "| {} | {metric} |", case.label());
        for t in targets {
            let values: Vec<f64> = outcomes
                .iter()
                .filter(|o| &o.case == case && o.target == *t && o.round >= from && o.errors == 0)
                .map(|o| o.metric)
                .collect();
            let _ = write!(out, " {} |", num(spread(&values).0));
        }
        for p in &peers {
            let _ = write!(
                out,
                " {} |",
                ratio_text(spread(&ratios(outcomes, case, p, from)))
            );
        }
        let mp = if case.wire == Wire::Msgpack {
            ratio_text(spread(&msgpack_ratios(outcomes, case, from)))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            " {mp} | {} |",
            flagged_windows(outcomes, case, from, None)
        );
    }
}

/// S6: one row per case and target (deliveries/s, latencies, also of the deliveries that
/// crossed to the other node, server CPU), with each Redis target over the same server on one
/// process.
fn cross_node_table(
    out: &mut String,
    plan: &Plan,
    cases: &[Case],
    outcomes: &[Outcome],
    from: usize,
) {
    let _ = writeln!(
        out,
        "\nCross-node fan-out (S6): the receivers split evenly over the target's processes, the sender on the first; \
         `hub` and `socketioxide` are one process without Redis (the single-node reference), `hub-redis` and \
         `socketioxide-redis` two processes on one Redis. Latency from the send's write to each delivery; \
         \"other node\" counts only the receivers on the second process. Server CPU and utilisation are summed over \
         the target's processes and its Redis (1.0 = one core). \"out of order\": deliveries in the window that came \
         after a later message of the same sender. \"vs 1 process\": per-round ratio of deliveries/s over the same \
         server on one process.\n"
    );
    let _ = writeln!(
        out,
        "| case | target | processes | deliveries/s | p50 µs | p99 µs | other node p50 µs | other node p99 µs | server CPU µs/delivery | server util | out of order | vs 1 process | flagged windows |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for case in cases {
        for spec in plan.targets.iter().filter(|t| t.supports(case)) {
            let t = spec.name;
            let rows: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| &o.case == case && o.target == t && o.round >= from && o.errors == 0)
                .collect();
            let med = |f: &dyn Fn(&Outcome) -> f64| {
                spread(&rows.iter().map(|o| f(o)).collect::<Vec<_>>()).0
            };
            let single = match t {
                "hub-redis" => Some("hub"),
                "socketioxide-redis" => Some("socketioxide"),
                _ => None,
            };
            let versus = single.map_or(String::new(), |single| {
                ratio_text(spread(&ratios_between(outcomes, case, t, single, from)))
            });
            let processes = if spec.redis_server.is_some() {
                format!("{} + Redis", spec.nodes)
            } else {
                spec.nodes.to_string()
            };
            let _ = writeln!(
                out,
                "| {} | {t} | {processes} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {versus} | {} |",
                case.label(),
                num(med(&|o| o.metric)),
                num(med(&|o| o.p50_us)),
                num(med(&|o| o.p99_us)),
                num(med(&|o| o.remote_p50_us.unwrap_or(f64::NAN))),
                num(med(&|o| o.remote_p99_us.unwrap_or(f64::NAN))),
                num(med(&|o| o.server_cpu_us_per_op)),
                med(&|o| o.server_util),
                num(med(&|o| o.reordered as f64)),
                flagged_windows(outcomes, case, from, Some(t)),
            );
        }
    }
}

/// Per-round ratios `target/peer` of `f` for one case (windows with errors left out).
fn ratios_of(
    outcomes: &[Outcome],
    case: &Case,
    target: &str,
    peer: &str,
    from: usize,
    f: &dyn Fn(&Outcome) -> f64,
) -> Vec<f64> {
    let by_round = |target: &str| -> BTreeMap<usize, f64> {
        outcomes
            .iter()
            .filter(|o| &o.case == case && o.target == target && o.round >= from && o.errors == 0)
            .map(|o| (o.round, f(o)))
            .collect()
    };
    let (ours, theirs) = (by_round(target), by_round(peer));
    ours.iter()
        .filter_map(|(round, a)| theirs.get(round).map(|b| a / b))
        .filter(|r| r.is_finite())
        .collect()
}

/// S4 behind a load balancer: one row per case and target (`hub` alone as the reference, then
/// the targets behind nginx), then `hub-lb` over `hub-lb-sticky` per round: the cost of
/// forwarding.
fn forwarding_table(
    out: &mut String,
    plan: &Plan,
    cases: &[Case],
    outcomes: &[Outcome],
    from: usize,
) {
    let _ = writeln!(
        out,
        "\nNo sticky sessions (S4 through a load balancer): `hub-lb` and `hub-lb-sticky` are three `hub` nodes on one Redis, \
         sharing a connection token key, behind one nginx (a fresh upstream connection per request); `hub-lb` balances \
         round robin, so a send or poll that reaches a node other than the connection's owner is forwarded to it over \
         Redis; `hub-lb-sticky` uses `ip_hash`, which puts every (loopback) client on one node: nothing is forwarded. \
         nginx, the nodes and Redis share the targets' core; server CPU and utilisation are summed over them (1.0 = one \
         core). `hub` (one process, no proxy, no Redis) for reference. No goal: the ratios are the cost of forwarding.\n"
    );
    let _ = writeln!(
        out,
        "| case | target | processes | calls/s | p50 µs | p99 µs | server CPU µs/call | server util | flagged windows |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for case in cases {
        for spec in plan
            .targets
            .iter()
            .filter(|t| t.supports(case) && (t.balancer.is_some() || t.name == "hub"))
        {
            let t = spec.name;
            let rows: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| &o.case == case && o.target == t && o.round >= from && o.errors == 0)
                .collect();
            let med = |f: &dyn Fn(&Outcome) -> f64| {
                spread(&rows.iter().map(|o| f(o)).collect::<Vec<_>>()).0
            };
            let processes = match (&spec.balancer, &spec.redis_server) {
                (Some(_), Some(_)) => format!("nginx + {} + Redis", spec.nodes),
                (Some(_), None) => format!("nginx + {}", spec.nodes),
                (None, Some(_)) => format!("{} + Redis", spec.nodes),
                (None, None) => spec.nodes.to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {t} | {processes} | {} | {} | {} | {} | {:.2} | {} |",
                case.label(),
                num(med(&|o| o.rate)),
                num(med(&|o| o.p50_us)),
                num(med(&|o| o.p99_us)),
                num(med(&|o| o.server_cpu_us_per_op)),
                med(&|o| o.server_util),
                flagged_windows(outcomes, case, from, Some(t)),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nThe cost of forwarding: `hub-lb` over `hub-lb-sticky` (per-round ratios, median (min–max); calls/s < 1 and p99, CPU per call > 1 are what forwarding costs):\n"
    );
    let _ = writeln!(
        out,
        "| case | calls/s | p50 | p99 | server CPU per call | hub-lb-sticky / hub calls/s |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for case in cases {
        let r = |a: &str, b: &str, f: &dyn Fn(&Outcome) -> f64| {
            ratio_text(spread(&ratios_of(outcomes, case, a, b, from, f)))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            case.label(),
            r("hub-lb", "hub-lb-sticky", &|o| o.rate),
            r("hub-lb", "hub-lb-sticky", &|o| o.p50_us),
            r("hub-lb", "hub-lb-sticky", &|o| o.p99_us),
            r("hub-lb", "hub-lb-sticky", &|o| o.server_cpu_us_per_op),
            r("hub-lb-sticky", "hub", &|o| o.rate),
        );
    }
}

/// What the Prometheus recorder costs: `hub-metrics` over `hub`, per round.
fn recorder_table(
    out: &mut String,
    plan: &Plan,
    cases: &[Case],
    outcomes: &[Outcome],
    from: usize,
) {
    let _ = writeln!(
        out,
        "\nThe cost of metrics: `hub-metrics` is `hub` with the Prometheus recorder installed (every metric recorded) and scraped once a second, over `hub` (per-round ratios, median (min–max)). Goal: S1 calls/s ≥ 0.97 (≤ 3% slower).\n"
    );
    let _ = writeln!(out, "| case | calls/s | p50 | p99 | server CPU per call |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    let metered = plan.targets.iter().find(|t| t.name == "hub-metrics");
    for case in cases
        .iter()
        .filter(|c| metered.is_some_and(|t| t.supports(c)))
    {
        let r = |f: &dyn Fn(&Outcome) -> f64| {
            ratio_text(spread(&ratios_of(
                outcomes,
                case,
                "hub-metrics",
                "hub",
                from,
                f,
            )))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            case.label(),
            r(&|o| o.rate),
            r(&|o| o.p50_us),
            r(&|o| o.p99_us),
            r(&|o| o.server_cpu_us_per_op),
        );
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / (1024.0 * 1024.0))
}

/// S7: every measured window, one row each (the cycles are the numbers; medians would hide
/// which cycle kept what).
fn churn_table(out: &mut String, plan: &Plan, cases: &[Case], outcomes: &[Outcome], from: usize) {
    let _ = writeln!(
        out,
        "\nChurn (S7): K idle connections opened, held {} s, then closed (a WebSocket Close each), {} times; after each close the RSS is read every 500 ms until it is within +10% of the baseline (read after a {} s settle, before the first cycle) or {} s passed. Per cycle: peak RSS while open → RSS at the end of the wait, and when it came back within +10% (– : not within the wait). MiB. Goal: the last cycle's end within +10% of the baseline, and growth (last end − first end) ≤ 5% of what one cycle added (first peak − baseline).\n",
        plan.s3_settle.as_secs_f64(),
        plan.churn_cycles,
        plan.s3_settle.as_secs_f64(),
        plan.churn_wait.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| case | target | round | baseline MiB | cycles: peak → end MiB (back in s) | after/baseline | growth MiB | goal |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for case in cases {
        for spec in plan.targets.iter().filter(|t| t.supports(case)) {
            for o in outcomes
                .iter()
                .filter(|o| &o.case == case && o.target == spec.name && o.round >= from)
            {
                let Some(churn) = &o.churn else {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | – | error: {} | – | – | – |",
                        case.label(),
                        o.target,
                        o.round,
                        o.error.as_deref().unwrap_or("")
                    );
                    continue;
                };
                let cycles: Vec<String> = churn
                    .cycles
                    .iter()
                    .map(|c| {
                        format!(
                            "{} → {} ({})",
                            mib(c.peak_rss as f64),
                            mib(c.end_rss as f64),
                            c.back_s.map_or("–".to_owned(), |s| format!("{s:.1}"))
                        )
                    })
                    .collect();
                let verdict = if o.errors > 0 {
                    "errors"
                } else if churn.met() {
                    "met"
                } else {
                    "**not met**"
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {:.2} | {} | {verdict} |",
                    case.label(),
                    o.target,
                    o.round,
                    mib(churn.baseline_rss as f64),
                    cycles.join("; "),
                    churn.ratio(),
                    mib(churn.growth()),
                );
            }
        }
    }
}

/// S8 with a stalled receiver over S8 without, per round, of `f`, for one target.
pub(crate) fn stalled_ratios(
    outcomes: &[Outcome],
    param: usize,
    target: &str,
    from: usize,
    f: &dyn Fn(&Outcome) -> Option<f64>,
) -> Vec<f64> {
    let by_round = |scenario: Scenario| -> BTreeMap<usize, f64> {
        outcomes
            .iter()
            .filter(|o| {
                o.case.scenario == scenario
                    && o.case.param == param
                    && o.target == target
                    && o.round >= from
                    && o.errors == 0
            })
            .filter_map(|o| f(o).map(|v| (o.round, v)))
            .collect()
    };
    let (with, without) = (by_round(Scenario::S8Stalled), by_round(Scenario::S8));
    with.iter()
        .filter_map(|(round, w)| without.get(round).map(|o| w / o))
        .filter(|r| r.is_finite())
        .collect()
}

/// S8: one row per case and target, then the with/without ratios.
fn slow_consumer_table(
    out: &mut String,
    plan: &Plan,
    cases: &[Case],
    outcomes: &[Outcome],
    from: usize,
) {
    let _ = writeln!(
        out,
        "\nSlow consumer (S8): M receivers joined to one group and one sender keeping {} sends in flight, each an invocation (SignalR) or acked event (Socket.IO); \"1 stalled\": one more receiver joined first and then never reads its socket; its window starts once the target's socket to it takes no more (the kernel's buffers full: the target's own queue for it fills from then on). {} s windows. Broadcaster latency: from a send's write to its completion. Max gap: the longest interval between two consecutive deliveries to one of the M receivers, both in the window. Stalled receiver (per round): messages it got (read after the window) of those sent, whether the target had closed it, and when (after the sender's start) its socket buffers were full, holding how much on the target's side.\n",
        plan.fanout_in_flight,
        plan.slow_window.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| case | target | deliveries/s | delivery p50 µs | delivery p99 µs | broadcaster p50 µs | broadcaster p99 µs | max gap ms | server util | RSS MiB | stalled receiver | flagged windows |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for case in cases {
        for spec in plan.targets.iter().filter(|t| t.supports(case)) {
            let t = spec.name;
            let rows: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| &o.case == case && o.target == t && o.round >= from && o.errors == 0)
                .collect();
            let med = |f: &dyn Fn(&Outcome) -> f64| {
                spread(&rows.iter().map(|o| f(o)).collect::<Vec<_>>()).0
            };
            let stalled: Vec<String> = rows
                .iter()
                .filter_map(|o| o.stalled.map(|s| (o, s)))
                .map(|(o, s)| {
                    let fill = s.fill_s.map_or(String::new(), |f| {
                        format!("; full after {f:.1} s at {} KiB", s.send_queue / 1024)
                    });
                    let closed = if s.closed { "closed" } else { "open" };
                    let gap = match (o.max_gap_us, o.max_gap_at_s) {
                        (Some(gap), Some(at)) => {
                            format!("; max gap {:.1} ms at {at:.1} s", gap / 1000.0)
                        }
                        _ => String::new(),
                    };
                    format!(
                        "r{}: got {} of {}, {closed}{fill}{gap}",
                        o.round, s.received, s.sent
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {t} | {} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {} | {} |",
                case.label(),
                num(med(&|o| o.rate)),
                num(med(&|o| o.p50_us)),
                num(med(&|o| o.p99_us)),
                num(med(&|o| o.sender_p50_us.unwrap_or(f64::NAN))),
                num(med(&|o| o.sender_p99_us.unwrap_or(f64::NAN))),
                num(med(&|o| o.max_gap_us.unwrap_or(f64::NAN) / 1000.0)),
                med(&|o| o.server_util),
                med(&|o| o.rss_bytes as f64) / (1024.0 * 1024.0),
                if stalled.is_empty() {
                    "–".to_owned()
                } else {
                    stalled.join("; ")
                },
                flagged_windows(outcomes, case, from, Some(t)),
            );
        }
    }
    let mut params: Vec<usize> = cases.iter().map(|c| c.param).collect();
    params.dedup();
    let targets: Vec<&str> = plan
        .targets
        .iter()
        .filter(|t| cases.iter().any(|c| t.supports(c)))
        .map(|t| t.name)
        .collect();
    let _ = writeln!(
        out,
        "\nWith one stalled receiver over none (per-round ratios, median (min–max); ≤ 1 means unaffected):\n"
    );
    let _ = writeln!(
        out,
        "| M | target | broadcaster p99 | max gap | delivery p99 | deliveries/s |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for param in params {
        for t in &targets {
            let r = |f: &dyn Fn(&Outcome) -> Option<f64>| {
                ratio_text(spread(&stalled_ratios(outcomes, param, t, from, f)))
            };
            let _ = writeln!(
                out,
                "| {param} | {t} | {} | {} | {} | {} |",
                r(&|o| o.sender_p99_us),
                r(&|o| o.max_gap_us),
                r(&|o| Some(o.p99_us)),
                r(&|o| Some(o.rate)),
            );
        }
    }
}

/// Medians of every measured number, per case and target.
fn details(out: &mut String, cases: &[Case], targets: &[&str], outcomes: &[Outcome], from: usize) {
    if cases.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nDetails (medians): rate, latency percentiles, server CPU per operation, server/generator CPU utilisation (1.0 = one core), server RSS at the end of the window.\n"
    );
    let _ = writeln!(
        out,
        "| case | target | rate/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | server util | generator util | RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for case in cases {
        for t in targets {
            let rows: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| &o.case == case && o.target == *t && o.round >= from && o.errors == 0)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let med = |f: &dyn Fn(&Outcome) -> f64| {
                spread(&rows.iter().map(|o| f(o)).collect::<Vec<_>>()).0
            };
            let rate_label = match case.scenario {
                Scenario::S3 => format!("{} conn/s", num(med(&|o| o.rate))),
                Scenario::S1b => format!(
                    "{} (offered {})",
                    num(med(&|o| o.rate)),
                    num(med(&|o| o.offered_rate.unwrap_or(f64::NAN)))
                ),
                _ => num(med(&|o| o.rate)),
            };
            let _ = writeln!(
                out,
                "| {} | {t} | {rate_label} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} |",
                case.label(),
                num(med(&|o| o.p50_us)),
                num(med(&|o| o.p99_us)),
                num(med(&|o| o.p999_us)),
                num(med(&|o| o.server_cpu_us_per_op)),
                med(&|o| o.server_util),
                med(&|o| o.generator_util),
                med(&|o| o.rss_bytes as f64) / (1024.0 * 1024.0),
            );
        }
    }
}

/// The goals, each marked met / not met / not measured.
fn goals(plan: &Plan, cases: &[Case], outcomes: &[Outcome], from: usize) -> String {
    let mut out = String::from("| goal | measured (median, min–max) | |\n|---|---|---|\n");
    let mut extra: Vec<String> = Vec::new();
    let mut line = |goal: String, values: Vec<f64>, ok: &dyn Fn(f64) -> bool| {
        let s = spread(&values);
        let verdict = if !s.0.is_finite() {
            "not measured"
        } else if ok(s.0) {
            "met"
        } else {
            "**not met**"
        };
        let _ = writeln!(out, "| {goal} | {} | {verdict} |", ratio_text(s));
    };
    for case in cases.iter().filter(|c| c.wire == Wire::Json) {
        let label = case.label();
        match case.scenario {
            Scenario::S1 => {
                line(
                    format!("{label}: hub ≥ 0.7× ref-ws"),
                    ratios(outcomes, case, "ref-ws", from),
                    &|r| r >= 0.7,
                );
                line(
                    format!("{label}: hub ≥ 1.2× socketioxide"),
                    ratios(outcomes, case, "socketioxide", from),
                    &|r| r >= 1.2,
                );
                line(
                    format!("{label}: hub ≥ 3× Socket.IO/Node"),
                    ratios(outcomes, case, "socketio-node", from),
                    &|r| r >= 3.0,
                );
            }
            Scenario::S1b => {
                line(
                    format!("{label}: hub p99 ≤ 1.3× ref-ws"),
                    ratios(outcomes, case, "ref-ws", from),
                    &|r| r <= 1.3,
                );
            }
            Scenario::S4Sse | Scenario::S4Lp => {}
            Scenario::S6 => {
                line(
                    format!("{label}: hub-redis (2 processes) ≥ 0.8× hub (1 process)"),
                    ratios_between(outcomes, case, "hub-redis", "hub", from),
                    &|r| r >= 0.8,
                );
                line(
                    format!("{label}: hub-redis ≥ 1.2× socketioxide-redis"),
                    ratios_between(outcomes, case, "hub-redis", "socketioxide-redis", from),
                    &|r| r >= 1.2,
                );
            }
            Scenario::S7 => {
                for target in ["hub", "ref-ws", "socketioxide"] {
                    let windows: Vec<&Outcome> = outcomes
                        .iter()
                        .filter(|o| {
                            &o.case == case
                                && o.target == target
                                && o.round >= from
                                && o.errors == 0
                        })
                        .collect();
                    let churns: Vec<&crate::runner::Churn> =
                        windows.iter().filter_map(|o| o.churn.as_ref()).collect();
                    if churns.is_empty() {
                        continue;
                    }
                    let s = spread(&churns.iter().map(|c| c.ratio()).collect::<Vec<_>>());
                    let growth = spread(&churns.iter().map(|c| c.growth()).collect::<Vec<_>>());
                    let verdict = if churns.iter().all(|c| c.met()) {
                        "met"
                    } else {
                        "**not met**"
                    };
                    extra.push(format!(
                        "| {label}: {target} RSS after churn within +10% of baseline in {} s, no growth over cycles | {} of baseline, growth {} MiB | {verdict} |",
                        plan.churn_wait.as_secs_f64(),
                        ratio_text(s),
                        mib(growth.0),
                    ));
                }
            }
            Scenario::S8 => {}
            Scenario::S8Stalled => {
                for (what, f) in [
                    (
                        "broadcaster p99",
                        &(|o: &Outcome| o.sender_p99_us) as &dyn Fn(&Outcome) -> Option<f64>,
                    ),
                    ("others' max gap", &|o: &Outcome| o.max_gap_us),
                ] {
                    line(
                        format!("{label}: hub {what} with one stalled receiver ≤ 2× none stalled"),
                        stalled_ratios(outcomes, case.param, "hub", from, f),
                        &|r| r <= 2.0,
                    );
                }
            }
            Scenario::S2 => {
                line(
                    format!("{label}: hub ≥ 0.8× ref-ws"),
                    ratios(outcomes, case, "ref-ws", from),
                    &|r| r >= 0.8,
                );
            }
            Scenario::S3 => {
                line(
                    format!("{label}: hub bytes/conn ≤ 1.5× ref-ws"),
                    ratios(outcomes, case, "ref-ws", from),
                    &|r| r <= 1.5,
                );
                let absolute: Vec<f64> = outcomes
                    .iter()
                    .filter(|o| {
                        &o.case == case && o.target == "hub" && o.round >= from && o.errors == 0
                    })
                    .map(|o| o.metric / 1024.0)
                    .collect();
                let s = spread(&absolute);
                let verdict = if !s.0.is_finite() {
                    "not measured"
                } else if s.0 <= 12.0 {
                    "met"
                } else {
                    "**not met**"
                };
                extra.push(format!(
                    "| {label}: hub ≤ 12 KiB per connection | {:.1} KiB ({:.1}–{:.1}) | {verdict} |",
                    s.0, s.1, s.2
                ));
            }
        }
    }
    for line in extra {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
