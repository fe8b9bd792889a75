//! Invocation spans as OpenTelemetry sees them (feature `opentelemetry`, a `tracing-opentelemetry`
//! layer, the SDK's in-memory exporter): named `{Hub}/{Method}`, server spans with the RPC
//! attributes, children of the span a client names in the invocation's `traceparent` header.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use hub_server::protocol::{Headers, Invocation};
use hub_server::HubConfig;
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Installs the OpenTelemetry layer for the whole process (spans are made on worker threads).
fn exporter() -> InMemorySpanExporter {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("hub-server-tests")));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    exporter
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The finished span named `name` (waits for it: it ends just after the Completion is queued).
async fn finished(exporter: &InMemorySpanExporter, name: &str, count: usize) -> Vec<SpanData> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let spans: Vec<SpanData> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|span| span.name == name)
            .collect();
        if spans.len() >= count {
            return spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span {name} was exported"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_span_is_a_child_of_the_clients_traceparent() {
    let exporter = exporter();
    let server = TestServer::start(test_hub(), HubConfig::default()).await;
    let mut client = server.json_client().await;

    // With the client's trace context.
    let mut traced = Invocation::new("Echo", ("traced",)).with_id("1");
    traced.headers = Headers::from_iter([
        ("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01")),
        ("tracestate", "vendor=value".to_owned()),
    ]);
    client.send_message(&traced).await;
    client.expect_completion("1").await;
    let spans = finished(&exporter, "hub/Echo", 1).await;
    let span = &spans[0];
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        span.span_context.trace_id(),
        TraceId::from_hex(TRACE_ID).unwrap()
    );
    assert_eq!(span.parent_span_id, SpanId::from_hex(PARENT_ID).unwrap());
    assert!(span.parent_span_is_remote);
    assert_eq!(attribute(span, "rpc.system").as_deref(), Some("signalr"));
    assert_eq!(attribute(span, "rpc.service").as_deref(), Some("hub"));
    assert_eq!(attribute(span, "rpc.method").as_deref(), Some("Echo"));
    assert_eq!(
        attribute(span, "signalr.invocation_id").as_deref(),
        Some("1")
    );

    // Without one (or with one that does not parse): a trace of its own.
    client.invoke("2", "Echo", ("untraced",)).await;
    client.expect_completion("2").await;
    let mut bad = Invocation::new("Echo", ("bad",)).with_id("3");
    bad.headers = Headers::from_iter([("traceparent", "00-not-a-trace-01")]);
    client.send_message(&bad).await;
    client.expect_completion("3").await;
    let spans = finished(&exporter, "hub/Echo", 3).await;
    for span in &spans[1..] {
        assert_ne!(
            span.span_context.trace_id(),
            TraceId::from_hex(TRACE_ID).unwrap()
        );
        assert_eq!(span.parent_span_id, SpanId::INVALID);
    }
}
