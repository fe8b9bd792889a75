//! What the server tells operators: metrics under SignalR's OpenTelemetry names and ours
//! ([`names`]), through the `metrics` facade (free until a recorder is installed); invocation
//! spans whose parent is the client's W3C trace context; a Prometheus recorder and scrape route
//! (feature `prometheus`); OTLP export of metrics and spans (feature `otlp`). The stats view is served by the `http` layer from what the hubs hold.

pub(crate) mod instruments;
pub mod names;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "prometheus")]
mod prometheus;
pub(crate) mod trace;

pub(crate) use instruments::{ConnectionStatus, HubMetrics, Outcome};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpConfig, OtlpError, OtlpExport};
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusError, PrometheusMetrics};
pub use trace::{current_traceparent, set_remote_parent};

/// Histogram buckets the exporters give the server's duration histograms, in seconds.
#[cfg_attr(not(any(feature = "prometheus", feature = "otlp")), allow(dead_code))]
mod buckets {
    /// Connection durations: those OpenTelemetry's semantic conventions give
    /// `signalr.server.connection.duration`.
    pub(super) const CONNECTION: [f64; 14] = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ];
    /// Invocation durations and backplane lag: sub-millisecond first.
    pub(super) const CALL: [f64; 14] = [
        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    ];
}
