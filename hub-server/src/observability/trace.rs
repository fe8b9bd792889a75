//! Trace context: invocation spans named as .NET names them, their parent taken from the
//! client's `traceparent`, and the current context carried to other servers.
//!
//! Spans are `tracing` spans. With the `opentelemetry` feature and a `tracing-opentelemetry`
//! layer, an invocation span becomes an OpenTelemetry server span `{Hub}/{Method}` with
//! `rpc.system = "signalr"`, `rpc.service`, `rpc.method`, whose parent is the span the client
//! named in the invocation's `traceparent` header. Without the feature the header is still
//! recorded on the span (`trace.parent`), for logs.

use hub_core::protocol::Headers;
use hub_core::trace::{TraceParent, TRACEPARENT, TRACESTATE};

use super::instruments::HubMetrics;

/// The trace context a client sent with an invocation (its `traceparent` and `tracestate`
/// headers), kept only when it parses.
#[derive(Debug, Clone, Default)]
pub(crate) struct RemoteParent {
    parent: Option<(TraceParent, Option<Box<str>>)>,
}

impl RemoteParent {
    /// Reads `traceparent` (and `tracestate`) from an invocation's headers.
    pub(crate) fn from_headers(headers: &Headers) -> Self {
        if headers.is_empty() {
            return RemoteParent::default();
        }
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|value| value.parse::<TraceParent>().ok())
            .map(|parent| (parent, headers.get(TRACESTATE).map(Box::from)));
        RemoteParent { parent }
    }

    /// The client's `traceparent`, when it sent a valid one.
    pub(crate) fn trace_parent(&self) -> Option<TraceParent> {
        self.parent.as_ref().map(|(parent, _)| *parent)
    }
}

/// The span of an invocation of method `index`.
pub(crate) fn invocation_span(
    metrics: &HubMetrics,
    index: usize,
    invocation_id: Option<&str>,
    remote: &RemoteParent,
) -> tracing::Span {
    let (span_name, method) = metrics
        .method(index)
        .map_or(("", ""), |method| (&*method.span_name, &*method.name));
    let span = tracing::info_span!(
        "invocation",
        otel.name = span_name,
        otel.kind = "server",
        rpc.system = "signalr",
        rpc.service = &*metrics.service,
        rpc.method = method,
        signalr.invocation_id = invocation_id.unwrap_or(""),
        trace.parent = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    match &remote.parent {
        Some((parent, state)) => {
            span.record("trace.parent", tracing::field::display(parent));
            set_parent(&span, Some((parent, state.as_deref())));
        }
        // A trace of its own, as .NET does, rather than a child of the connection's span (which
        // lives as long as the connection: one trace per connection would grow without end).
        None => set_parent(&span, None),
    }
    span
}

/// Makes the span a remote `traceparent` (and `tracestate`) names the parent of `span` (with
/// the `opentelemetry` feature; a no-op without it, or when the text is not a valid
/// `traceparent`). For a backplane that delivers what another server published.
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
    if let Ok(parent) = traceparent.parse::<TraceParent>() {
        set_parent(span, Some((&parent, tracestate)));
    }
}

/// The W3C `traceparent` of the current span (with the `opentelemetry` feature and a
/// `tracing-opentelemetry` layer; `None` otherwise), for a backplane to send along.
pub fn current_traceparent() -> Option<String> {
    current()
}

/// Makes `parent` the OpenTelemetry parent of `span`; `None` makes it the root of a new trace.
#[cfg(feature = "opentelemetry")]
fn set_parent(span: &tracing::Span, parent: Option<(&TraceParent, Option<&str>)>) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let Some((parent, tracestate)) = parent else {
        let _ = span.set_parent(opentelemetry::Context::new());
        return;
    };
    let state = tracestate
        .and_then(|state| state.parse().ok())
        .unwrap_or_default();
    let context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.parent_id),
        TraceFlags::new(parent.flags),
        true,
        state,
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(context));
}

#[cfg(not(feature = "opentelemetry"))]
fn set_parent(_span: &tracing::Span, _parent: Option<(&TraceParent, Option<&str>)>) {}

#[cfg(feature = "opentelemetry")]
fn current() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        TraceParent {
            trace_id: span_context.trace_id().to_bytes(),
            parent_id: span_context.span_id().to_bytes(),
            flags: span_context.trace_flags().to_u8(),
        }
        .to_string()
    })
}

#[cfg(not(feature = "opentelemetry"))]
fn current() -> Option<String> {
    None
}
