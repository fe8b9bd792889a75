//! The operator routes mounted beside the hubs: the stats view (JSON) and, with the `prometheus`
//! feature, the Prometheus scrape. Each is opt-in and admits whom its [`Authorization`] admits
//! (authenticated with the server's authenticator).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hub_core::hub::Authorization;
use hub_core::negotiate::TransportType;
use hub_core::protocol::Protocol;
use serde::Serialize;

use crate::auth::SharedAuthenticator;
use crate::authorization::{Decision, Policies};
use crate::endpoint::Endpoint;
#[cfg(feature = "prometheus")]
use crate::http::response::text;
use crate::http::response::{json, status};
use crate::http::ResponseBody;
use crate::request::RequestInfo;

/// What an operator route serves.
pub(crate) enum Operator {
    /// The stats view.
    Stats(Mutex<Samples>),
    /// The Prometheus text format.
    #[cfg(feature = "prometheus")]
    Prometheus(crate::observability::PrometheusMetrics),
}

/// An operator route: its path, who may read it, what it serves.
pub(crate) struct OperatorRoute {
    pub(crate) path: String,
    pub(crate) authorization: Authorization,
    pub(crate) operator: Operator,
    pub(crate) authenticator: SharedAuthenticator,
    pub(crate) policies: Policies,
}

impl OperatorRoute {
    /// The stats view at `path`.
    pub(crate) fn stats(
        path: String,
        authorization: Authorization,
        authenticator: SharedAuthenticator,
        policies: Policies,
    ) -> Self {
        OperatorRoute {
            path,
            authorization,
            operator: Operator::Stats(Mutex::new(Samples {
                started: Instant::now(),
                by_hub: BTreeMap::new(),
            })),
            authenticator,
            policies,
        }
    }

    /// The Prometheus scrape at `path`.
    #[cfg(feature = "prometheus")]
    pub(crate) fn prometheus(
        path: String,
        metrics: crate::observability::PrometheusMetrics,
        authorization: Authorization,
        authenticator: SharedAuthenticator,
        policies: Policies,
    ) -> Self {
        OperatorRoute {
            path,
            authorization,
            operator: Operator::Prometheus(metrics),
            authenticator,
            policies,
        }
    }

    /// Answers a request for this route.
    pub(crate) async fn handle<B>(
        &self,
        request: Request<B>,
        endpoints: &[Arc<Endpoint>],
    ) -> Response<ResponseBody> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let (parts, _body) = request.into_parts();
        let info = RequestInfo::from(parts);
        if !self.authorization.is_open() {
            let Ok(principal) = self.authenticator.authenticate(&info).await else {
                return status(StatusCode::UNAUTHORIZED);
            };
            match self
                .policies
                .decide(&self.authorization, &principal, &info)
                .await
            {
                Decision::Allowed => {}
                Decision::Unauthenticated => return status(StatusCode::UNAUTHORIZED),
                Decision::Forbidden => return status(StatusCode::FORBIDDEN),
            }
        }
        let mut response = match &self.operator {
            Operator::Stats(samples) => stats(endpoints, samples),
            #[cfg(feature = "prometheus")]
            Operator::Prometheus(metrics) => {
                let mut response = text(StatusCode::OK, metrics.render());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The running totals of every hub at one moment, to tell rates from.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    totals: [u64; 5],
}

/// The last two samples per hub path: rates are the change between them.
pub(crate) struct Samples {
    /// When the route was made (the first sample of every hub: nothing yet).
    started: Instant,
    by_hub: BTreeMap<String, (Option<Sample>, Sample)>,
}

/// Rates are measured over at least this long.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// The stats view of this server (a backplane's other servers have their own).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    /// Milliseconds since the Unix epoch.
    at_unix_ms: u64,
    hubs: Vec<HubStats>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HubStats {
    path: String,
    connections: usize,
    by_transport: BTreeMap<&'static str, usize>,
    by_protocol: BTreeMap<&'static str, usize>,
    /// Distinct users with a connection here.
    users: usize,
    /// Groups with their members here, largest first.
    groups: Vec<GroupStats>,
    totals: Totals,
    /// Per second, over the last interval between two reads of the view (at least 1 s), or since
    /// the route started.
    rates: Rates,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupStats {
    name: String,
    members: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    invocations: u64,
    messages_received: u64,
    messages_sent: u64,
    bytes_received: u64,
    bytes_sent: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rates {
    invocations: f64,
    messages_received: f64,
    messages_sent: f64,
    bytes_received: f64,
    bytes_sent: f64,
}

/// The JSON stats view.
fn stats(endpoints: &[Arc<Endpoint>], samples: &Mutex<Samples>) -> Response<ResponseBody> {
    let now = Instant::now();
    let mut samples = samples.lock().unwrap_or_else(PoisonError::into_inner);
    let Samples { started, by_hub } = &mut *samples;
    let hubs = endpoints
        .iter()
        .filter(|endpoint| endpoint.raw.is_none())
        .map(|endpoint| {
            let totals = endpoint.metrics.totals.as_ref().map_or([0; 5], |totals| {
                [
                    totals.invocations.load(Ordering::Relaxed),
                    totals.messages_received.load(Ordering::Relaxed),
                    totals.messages_sent.load(Ordering::Relaxed),
                    totals.bytes_received.load(Ordering::Relaxed),
                    totals.bytes_sent.load(Ordering::Relaxed),
                ]
            });
            let current = Sample { at: now, totals };
            let (previous, last) = by_hub.entry(endpoint.path.clone()).or_insert((
                None,
                Sample {
                    at: *started,
                    totals: [0; 5],
                },
            ));
            if now.duration_since(last.at) >= RATE_WINDOW {
                *previous = Some(*last);
                *last = current;
            }
            let base = previous.unwrap_or(*last);
            let seconds = now.duration_since(base.at).as_secs_f64().max(1e-3);
            let rate = |i: usize| totals[i].saturating_sub(base.totals[i]) as f64 / seconds;
            hub_stats(
                endpoint,
                totals,
                [rate(0), rate(1), rate(2), rate(3), rate(4)],
            )
        })
        .collect();
    drop(samples);
    let at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    match serde_json::to_vec(&Stats { at_unix_ms, hubs }) {
        Ok(body) => json(body),
        Err(error) => {
            tracing::error!(%error, "the stats view could not be encoded");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

fn hub_stats(endpoint: &Endpoint, totals: [u64; 5], rates: [f64; 5]) -> HubStats {
    let connections = endpoint.manager.local_connections();
    let mut by_transport = BTreeMap::new();
    let mut by_protocol = BTreeMap::new();
    let mut users = std::collections::HashSet::new();
    for connection in &connections {
        let transport = match connection.inner.transport {
            TransportType::WebSockets => "webSockets",
            TransportType::ServerSentEvents => "serverSentEvents",
            TransportType::LongPolling => "longPolling",
        };
        *by_transport.entry(transport).or_insert(0) += 1;
        let protocol = match connection.protocol() {
            Protocol::Json => "json",
            Protocol::MessagePack => "messagepack",
        };
        *by_protocol.entry(protocol).or_insert(0) += 1;
        if let Some(user) = connection.user_id() {
            users.insert(user.to_owned());
        }
    }
    let mut groups: Vec<GroupStats> = endpoint
        .manager
        .local_groups()
        .into_iter()
        .map(|(name, members)| GroupStats { name, members })
        .collect();
    groups.sort_by(|a, b| b.members.cmp(&a.members).then(a.name.cmp(&b.name)));
    HubStats {
        path: endpoint.path.clone(),
        connections: connections.len(),
        by_transport,
        by_protocol,
        users: users.len(),
        groups,
        totals: Totals {
            invocations: totals[0],
            messages_received: totals[1],
            messages_sent: totals[2],
            bytes_received: totals[3],
            bytes_sent: totals[4],
        },
        rates: Rates {
            invocations: rates[0],
            messages_received: rates[1],
            messages_sent: rates[2],
            bytes_received: rates[3],
            bytes_sent: rates[4],
        },
    }
}
