//! What the server tells operators: metrics under SignalR's OpenTelemetry names and ours
//! ([`names`]), through the `metrics` facade (free until a recorder is installed); invocation
//! spans whose parent is the client's W3C trace context; a Prometheus recorder and scrape route
//! (feature `prometheus`). The stats view is served by the `http` layer from what the hubs hold.

pub(crate) mod instruments;
pub mod names;
#[cfg(feature = "prometheus")]
mod prometheus;
pub(crate) mod trace;

pub(crate) use instruments::{ConnectionStatus, HubMetrics, Outcome};
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusError, PrometheusMetrics};
pub use trace::{current_traceparent, set_remote_parent};
