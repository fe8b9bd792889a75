//! The Prometheus recorder (`metrics-exporter-prometheus`) and what its scrape route renders.

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use super::names;

use super::buckets::{CALL as CALL_BUCKETS, CONNECTION as CONNECTION_BUCKETS};

/// How often histograms are drained when nobody scrapes (they hold samples until then).
const UPKEEP: Duration = Duration::from_secs(5);

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrometheusError {
    /// Another recorder is installed already (there is one per process): install this one
    /// first, or render that one yourself.
    #[error("a metrics recorder is already installed in this process; install PrometheusMetrics once, before building the server: {0}")]
    AlreadyInstalled(String),
    /// The exporter refused its configuration.
    #[error("the Prometheus recorder could not be built: {0}")]
    Build(String),
}

/// The process's Prometheus recorder: every metric of every hub (and of anything else using the
/// `metrics` crate), rendered in the Prometheus text format. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_server::observability::PrometheusMetrics;
/// use hub_server::{Authorization, HubMethods, HubServer};
///
/// let metrics = PrometheusMetrics::install()?; // before the server is built
/// let server = HubServer::builder()
///     .hub("/chat", HubMethods::new())
///     .metrics_endpoint("/metrics", metrics, Authorization::anyone())
///     .bind("0.0.0.0:5000")
///     .await?;
/// server.serve().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PrometheusMetrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for PrometheusMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusMetrics").finish_non_exhaustive()
    }
}

impl PrometheusMetrics {
    /// Installs the Prometheus recorder as the process's `metrics` recorder (histograms with
    /// buckets: OpenTelemetry's for connection durations, sub-millisecond ones for invocations),
    /// and a thread that drains histograms every 5 s between scrapes. Install it before
    /// building the server: the hubs register their metrics then.
    pub fn install() -> Result<Self, PrometheusError> {
        let builder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(
                Matcher::Full(names::CONNECTION_DURATION.into()),
                &CONNECTION_BUCKETS,
            )
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(names::INVOCATION_DURATION.into()),
                    &CALL_BUCKETS,
                )
            })
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(names::BACKPLANE_LAG.into()),
                    &CALL_BUCKETS,
                )
            })
            .map_err(|error| PrometheusError::Build(error.to_string()))?;
        let handle = builder.install_recorder().map_err(|error| match error {
            BuildError::FailedToSetGlobalRecorder(error) => {
                PrometheusError::AlreadyInstalled(error.to_string())
            }
            error => PrometheusError::Build(error.to_string()),
        })?;
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("prometheus-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            });
        if let Err(error) = started {
            tracing::warn!(%error, "the Prometheus upkeep thread could not start; histograms are drained at each scrape only");
        }
        Ok(PrometheusMetrics { handle })
    }

    /// Every metric, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The exporter's handle (e.g. to serve it from your own route).
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }
}
