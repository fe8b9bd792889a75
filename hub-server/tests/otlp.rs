//! OTLP export (feature `otlp`): metrics and invocation spans reach an OTLP/HTTP collector — a
//! receiver in this test that decodes what arrives with OpenTelemetry's own protobuf
//! definitions (`opentelemetry-proto`) — with SignalR's metric names and the client's trace.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hub_server::observability::{OtlpConfig, OtlpExport};
use hub_server::protocol::{Close, Headers, Invocation};
use hub_server::HubConfig;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// What the collector received: the metric names and the spans (name, trace id as hex).
#[derive(Default)]
struct Received {
    metrics: BTreeSet<String>,
    spans: Vec<(String, String)>,
    service_names: BTreeSet<String>,
}

/// An OTLP/HTTP receiver on a free port: `POST /v1/metrics` and `/v1/traces`, protobuf.
async fn collector() -> (String, Arc<Mutex<Received>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Received::default()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let store = store.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let store = store.clone();
                        async move {
                            let path = request.uri().path().to_owned();
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let mut received = store.lock().unwrap();
                            match path.as_str() {
                                "/v1/metrics" => {
                                    let export = ExportMetricsServiceRequest::decode(body).unwrap();
                                    for resource in export.resource_metrics {
                                        service_names(&mut received, resource.resource);
                                        for scope in resource.scope_metrics {
                                            for metric in scope.metrics {
                                                received.metrics.insert(metric.name);
                                            }
                                        }
                                    }
                                }
                                "/v1/traces" => {
                                    let export = ExportTraceServiceRequest::decode(body).unwrap();
                                    for resource in export.resource_spans {
                                        service_names(&mut received, resource.resource);
                                        for scope in resource.scope_spans {
                                            for span in scope.spans {
                                                let trace: String = span
                                                    .trace_id
                                                    .iter()
                                                    .map(|b| format!("{b:02x}"))
                                                    .collect();
                                                received.spans.push((span.name, trace));
                                            }
                                        }
                                    }
                                }
                                other => panic!("unexpected OTLP path {other}"),
                            }
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, received)
}

fn service_names(
    received: &mut Received,
    resource: Option<opentelemetry_proto::tonic::resource::v1::Resource>,
) {
    for attribute in resource.map(|r| r.attributes).unwrap_or_default() {
        if attribute.key == "service.name" {
            received
                .service_names
                .insert(format!("{:?}", attribute.value.and_then(|v| v.value)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_spans_reach_an_otlp_collector() {
    let (endpoint, received) = collector().await;
    let otlp = OtlpExport::install(
        OtlpConfig::new(endpoint)
            .service_name("otlp-test")
            .interval(Duration::from_millis(200)),
    )
    .unwrap();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(otlp.tracer("otlp-test"))),
    )
    .unwrap();

    let server = TestServer::start(test_hub(), HubConfig::default()).await;
    let mut client = server.json_client().await;
    let mut traced = Invocation::new("Echo", ("hi",)).with_id("1");
    traced.headers =
        Headers::from_iter([("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))]);
    client.send_message(&traced).await;
    client.expect_completion("1").await;
    client.send_message(&Close::new()).await;
    server.wait_for_connection_count(0).await;

    let otlp = Arc::new(otlp);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let flushing = otlp.clone();
        tokio::task::spawn_blocking(move || flushing.flush())
            .await
            .unwrap()
            .unwrap();
        {
            let received = received.lock().unwrap();
            let metrics_in = [
                "signalr.server.active_connections",
                "signalr.server.connection.duration",
                "hubs.invocations",
                "hubs.invocation.duration",
                "hubs.received.messages",
                "hubs.sent.bytes",
            ]
            .iter()
            .all(|name| received.metrics.contains(*name));
            let span_in = received
                .spans
                .iter()
                .any(|(name, trace)| name == "hub/Echo" && trace == TRACE_ID);
            if metrics_in && span_in {
                assert!(received
                    .service_names
                    .iter()
                    .all(|name| name.contains("otlp-test")));
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the collector got metrics {:?} and spans {:?}",
                received.metrics,
                received.spans
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let otlp = Arc::try_unwrap(otlp).unwrap();
    tokio::task::spawn_blocking(move || otlp.shutdown())
        .await
        .unwrap()
        .unwrap();
}
