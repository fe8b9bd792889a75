//! Metrics that follow real traffic, scraped from the server's own Prometheus route and checked
//! with Prometheus's `promtool check metrics` (Debian's `prometheus` package; the README test
//! command installs it); the stats view's JSON; both routes' authorization.
//!
//! One test: the Prometheus recorder is the process's, installed once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use hub_server::observability::PrometheusMetrics;
use hub_server::protocol::{Close, Protocol};
use hub_server::{Authorization, HubConfig, HubServer, Requirement};

/// The samples of a Prometheus text: `name{labels}` → value.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").unwrap();
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().unwrap())
        })
        .collect()
}

/// The value of the sample named `name` whose labels include `labels` (0 when there is none).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, value)| value)
        .sum()
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let (status, headers, body) = http(addr, Method::GET, "/metrics", &[], b"").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    String::from_utf8(body.to_vec()).unwrap()
}

/// Scrapes until `check` holds for the text (the server records a connection's end after its
/// client sees it).
async fn scrape_until(
    addr: std::net::SocketAddr,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let text = scrape(addr).await;
        if check(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never showed in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const DURATION: &str = "signalr_server_connection_duration_seconds_count";
const ACTIVE: &str = "signalr_server_active_connections";

fn ended(text: &str, status: &str, transport: &str) -> f64 {
    value(
        text,
        DURATION,
        &[
            ("signalr_connection_status", status),
            ("signalr_transport", transport),
            ("hub", PATH),
        ],
    )
}

/// `promtool check metrics` on the scrape: exits 0 when the text parses and lints clean.
fn promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's `prometheus` package; scripts/test-all installs it) must be on PATH");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool refused the scrape: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_traffic_and_pass_promtool() {
    let metrics = PrometheusMetrics::install().unwrap();
    // A second recorder is refused with an error that says what to do.
    let again = PrometheusMetrics::install().unwrap_err().to_string();
    assert!(again.contains("already installed"), "{again}");

    let config = HubConfig::new()
        .client_timeout(Duration::from_millis(400))
        .keep_alive_interval(Duration::from_millis(100));
    let server = TestServer::start_with(
        HubServer::builder()
            .hub(PATH, test_hub())
            .config(config)
            .metrics_endpoint("/metrics", metrics.clone(), Authorization::anyone())
            .stats_endpoint("/stats", Authorization::anyone()),
    )
    .await;
    let addr = server.addr;

    // ----- invocations, messages and bytes -----
    let mut a = server.json_client().await;
    for i in 0..3 {
        a.invoke(&i.to_string(), "Echo", ("hi",)).await;
        a.expect_completion(&i.to_string()).await;
    }
    a.invoke("3", "Throw", ()).await;
    a.expect_completion("3").await;
    a.invoke("4", "JoinGroup", ("room",)).await;
    a.expect_completion("4").await;
    let text = scrape(addr).await;
    let invocations = |method: &str, outcome: &str| {
        value(
            &text,
            "hubs_invocations_total",
            &[("hub", PATH), ("method", method), ("outcome", outcome)],
        )
    };
    assert_eq!(invocations("Echo", "ok"), 3.0, "{text}");
    assert_eq!(invocations("Throw", "error"), 1.0, "{text}");
    assert_eq!(invocations("Echo", "error"), 0.0, "{text}");
    assert_eq!(
        value(
            &text,
            "hubs_invocation_duration_seconds_count",
            &[("method", "Echo")]
        ),
        3.0
    );
    assert_eq!(
        value(&text, ACTIVE, &[("signalr_transport", "web_sockets")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "hubs_received_messages_total", &[("hub", PATH)]),
        5.0,
        "{text}"
    );
    assert!(value(&text, "hubs_sent_messages_total", &[("hub", PATH)]) >= 5.0);
    assert!(value(&text, "hubs_received_bytes_total", &[("hub", PATH)]) > 100.0);
    assert!(value(&text, "hubs_sent_bytes_total", &[("hub", PATH)]) > 50.0);

    // ----- the stats view -----
    let (status, _, body) = http(addr, Method::GET, "/stats", &[], b"").await;
    assert_eq!(status, StatusCode::OK);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let hub = &stats["hubs"][0];
    assert_eq!(hub["path"], PATH);
    assert_eq!(hub["connections"], 1);
    assert_eq!(hub["byTransport"]["webSockets"], 1);
    assert_eq!(hub["byProtocol"]["json"], 1);
    assert_eq!(hub["groups"][0]["name"], "room");
    assert_eq!(hub["groups"][0]["members"], 1);
    assert_eq!(hub["totals"]["invocations"], 5);
    assert_eq!(hub["totals"]["messagesReceived"], 5);
    assert!(hub["rates"]["invocations"].as_f64().unwrap() > 0.0);

    // ----- a broadcast and its deliveries -----
    let mut m = server.client(Protocol::MessagePack).await;
    server.wait_for_connection_count(2).await;
    server
        .hub
        .clients()
        .all()
        .send("Note", ("all",))
        .await
        .unwrap();
    a.recv_skip_pings().await;
    m.recv_skip_pings().await;
    let text = scrape(addr).await;
    assert_eq!(value(&text, "hubs_broadcasts_total", &[("hub", PATH)]), 1.0);
    assert_eq!(
        value(&text, "hubs_broadcast_deliveries_total", &[("hub", PATH)]),
        2.0
    );
    let (_, _, body) = http(addr, Method::GET, "/stats", &[], b"").await;
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["hubs"][0]["byProtocol"]["messagepack"], 1);

    // ----- a normal closure -----
    a.send_message(&Close::new()).await;
    m.send_message(&Close::new()).await;
    // (One scrape reads the gauges before it drains the histograms: a connection that ends in
    // between shows in the durations but not yet in the gauge, so wait for both.)
    scrape_until(addr, "two normal closures, none active", |text| {
        ended(text, "normal_closure", "web_sockets") == 2.0
            && value(text, ACTIVE, &[("signalr_transport", "web_sockets")]) == 0.0
    })
    .await;

    // ----- a client that goes silent: timeout -----
    let mut silent = server.json_client().await;
    silent.send_json(r#"{"type":6}"#).await; // a Ping arms the client timeout
    scrape_until(addr, "a timeout", |text| {
        ended(text, "timeout", "web_sockets") == 1.0
    })
    .await;

    // ----- the server shuts down: app_shutdown -----
    let _last = server.json_client().await;
    server.wait_for_connection_count(1).await;
    server.shutdown.shutdown();
    let mut server = server;
    tokio::time::timeout(TIMEOUT, &mut server.serve)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = metrics.render();
    assert_eq!(ended(&text, "app_shutdown", "web_sockets"), 1.0, "{text}");
    assert_eq!(
        value(&text, ACTIVE, &[("signalr_transport", "web_sockets")]),
        0.0
    );
    assert!(text.contains("# HELP signalr_server_connection_duration_seconds The duration of connections on the server."));
    // OpenTelemetry's buckets for connection durations, sub-millisecond ones for invocations.
    let bucket = |name: &str, le: &str| {
        text.lines().any(|line| {
            line.starts_with(&format!("{name}_bucket{{")) && line.contains(&format!("le=\"{le}\""))
        })
    };
    assert!(
        bucket("signalr_server_connection_duration_seconds", "0.01"),
        "{text}"
    );
    assert!(
        bucket("signalr_server_connection_duration_seconds", "300"),
        "{text}"
    );
    assert!(
        bucket("hubs_invocation_duration_seconds", "0.0001"),
        "{text}"
    );
    promtool(&text);

    // ----- the routes admit whom their authorization admits -----
    let guarded = TestServer::start_with(
        HubServer::builder()
            .hub(PATH, test_hub())
            .metrics_endpoint(
                "/metrics",
                metrics.clone(),
                Authorization::all([Requirement::Authenticated]),
            )
            .stats_endpoint("/stats", Authorization::all([Requirement::Authenticated])),
    )
    .await;
    for path in ["/metrics", "/stats"] {
        let (status, _, _) = http(guarded.addr, Method::GET, path, &[], b"").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _, _) = http(guarded.addr, Method::POST, path, &[], b"").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}
