//! OTLP export (feature `otlp`): every metric of the `metrics` facade and the spans of a
//! `tracing-opentelemetry` layer, sent to an OpenTelemetry collector over OTLP/HTTP (protobuf).

use std::time::Duration;

use metrics_opentelemetry::{OpenTelemetryMetrics, OpenTelemetryRecorder};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;

use super::names;

/// Where and how [`OtlpExport`] sends.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    endpoint: String,
    service_name: String,
    interval: Duration,
}

impl OtlpConfig {
    /// A collector's OTLP/HTTP base URL, e.g. `http://collector:4318` (metrics go to
    /// `/v1/metrics`, spans to `/v1/traces`); the service is named `hubs` and metrics are sent
    /// every 10 s until changed.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpConfig {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            service_name: "hubs".to_owned(),
            interval: Duration::from_secs(10),
        }
    }

    /// The `service.name` resource attribute of everything sent.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// How often metrics are sent (10 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// Why OTLP export could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// An exporter could not be built (a malformed endpoint, no HTTP client).
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(String),
    /// Another `metrics` recorder is installed already (one per process): install this one
    /// before anything else records, and before the server is built.
    #[error("a metrics recorder is already installed in this process; install OtlpExport once, before building the server")]
    AlreadyInstalled,
    /// What was left to send could not be flushed.
    #[error("flushing OTLP data failed: {0}")]
    Flush(String),
}

/// Metrics and spans sent to an OpenTelemetry collector.
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_server::observability::{OtlpConfig, OtlpExport};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// // hub-server = { …, features = ["otlp"] }
/// let otlp = OtlpExport::install(OtlpConfig::new("http://collector:4318").service_name("chat"))?;
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::EnvFilter::new("info"))
///     .with(tracing_opentelemetry::layer().with_tracer(otlp.tracer("chat")));
/// tracing::subscriber::set_global_default(subscriber)?;
/// // … build and serve the hubs; at the end:
/// otlp.shutdown()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OtlpExport {
    meters: SdkMeterProvider,
    tracers: SdkTracerProvider,
}

impl OtlpExport {
    /// Installs a `metrics` recorder that turns every metric into an OpenTelemetry instrument
    /// (the histograms with the buckets the Prometheus recorder uses) exported every
    /// `interval`, and prepares a tracer provider exporting spans in batches. Install it
    /// before building the server: the hubs register their metrics then.
    pub fn install(config: OtlpConfig) -> Result<Self, OtlpError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let metric_exporter = MetricExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/metrics", config.endpoint))
            .build()
            .map_err(|error| OtlpError::Exporter(error.to_string()))?;
        let meters = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(metric_exporter)
                    .with_interval(config.interval)
                    .build(),
            )
            .with_resource(resource.clone())
            .build();
        let span_exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", config.endpoint))
            .build()
            .map_err(|error| OtlpError::Exporter(error.to_string()))?;
        let tracers = SdkTracerProvider::builder()
            .with_batch_exporter(span_exporter)
            .with_resource(resource)
            .build();
        let recorder =
            OpenTelemetryRecorder::new(OpenTelemetryMetrics::new(meters.meter("hub-server")));
        recorder.set_histogram_bounds(
            [names::CONNECTION_DURATION].into_iter(),
            &super::buckets::CONNECTION,
        );
        recorder.set_histogram_bounds(
            [names::INVOCATION_DURATION, names::BACKPLANE_LAG].into_iter(),
            &super::buckets::CALL,
        );
        ::metrics::set_global_recorder(recorder).map_err(|_| OtlpError::AlreadyInstalled)?;
        Ok(OtlpExport { meters, tracers })
    }

    /// A tracer for `tracing_opentelemetry::layer().with_tracer(…)`: the invocation spans
    /// (and any other) go to the collector.
    pub fn tracer(&self, name: &'static str) -> Tracer {
        self.tracers.tracer(name)
    }

    /// Sends what is still buffered (metrics and spans) now.
    pub fn flush(&self) -> Result<(), OtlpError> {
        self.meters
            .force_flush()
            .map_err(|error| OtlpError::Flush(error.to_string()))?;
        self.tracers
            .force_flush()
            .map_err(|error| OtlpError::Flush(error.to_string()))
    }

    /// Flushes and stops the exporters (call it when the server has stopped).
    pub fn shutdown(self) -> Result<(), OtlpError> {
        self.flush()?;
        let meters = self.meters.shutdown();
        let tracers = self.tracers.shutdown();
        meters
            .and(tracers)
            .map_err(|error| OtlpError::Flush(error.to_string()))
    }
}
