//! Trace context across servers: a client's `traceparent` is the parent of the invocation span
//! on the server it reached, and the delivery on the other server (through Redis) is a child of
//! that invocation span — one trace from the browser to the node that delivers (OpenTelemetry's
//! in-memory exporter; hub-server's `opentelemetry` feature).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::Redis;
use hub_redis::{RedisBackplane, RedisConfig};
use hub_server::protocol::Headers;
use hub_server::testing::TestHub;
use hub_server::{Context, HubConfig, HubError, HubMethods};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

fn hub() -> HubMethods<Context> {
    HubMethods::new()
        .method("Join", |cx: Context, (group,): (String,)| async move {
            cx.groups().add(cx.connection_id(), &group).await?;
            Ok::<_, HubError>(())
        })
        .method(
            "Shout",
            |cx: Context, (group, text): (String, String)| async move {
                cx.clients().group(group).send("Msg", (text,)).await?;
                Ok::<_, HubError>(())
            },
        )
}

async fn server(redis: &Redis, node_id: &str) -> TestHub {
    let backplane = RedisBackplane::connect(
        RedisConfig::new(redis.url())
            .heartbeat(Duration::from_millis(100))
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    TestHub::on_node(hub(), HubConfig::default(), backplane.manager(), node_id)
}

async fn span(exporter: &InMemorySpanExporter, name: &str) -> SpanData {
    for _ in 0..200 {
        let found = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(|span| span.name == name);
        if let Some(span) = found {
            return span;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no span {name} was exported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_the_client_to_the_server_that_delivers() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("hub-redis-tests"))),
    )
    .unwrap();

    let redis = Redis::start();
    let a = server(&redis, "a").await;
    let b = server(&redis, "b").await;
    let mut sender = a.connect().await.unwrap();
    let mut listener = b.connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    listener.invoke::<()>("Join", ("room",)).await.unwrap();

    sender.set_invocation_headers(Headers::from_iter([(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_ID}-01"),
    )]));
    sender
        .invoke::<()>("Shout", ("room", "hello"))
        .await
        .unwrap();
    let callback = listener.next_callback().await.unwrap();
    assert_eq!(callback.argument::<String>(0).unwrap(), "hello");

    let invocation = span(&exporter, "test/Shout").await;
    assert_eq!(
        invocation.span_context.trace_id(),
        TraceId::from_hex(TRACE_ID).unwrap()
    );
    assert_eq!(
        invocation.parent_span_id,
        SpanId::from_hex(PARENT_ID).unwrap()
    );
    let delivery = span(&exporter, "backplane deliver").await;
    assert_eq!(
        delivery.span_context.trace_id(),
        TraceId::from_hex(TRACE_ID).unwrap(),
        "the delivery on the other server belongs to the client's trace"
    );
    assert_eq!(
        delivery.parent_span_id,
        invocation.span_context.span_id(),
        "the delivery's parent is the invocation that published it"
    );
    assert!(delivery.parent_span_is_remote);
}
