//! `POST {hub}/negotiate`: authenticate, apply the version rule, create a connection id and
//! token, and list the transports this hub offers.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hub_core::negotiate::{
    AvailableTransport, NegotiateRequest, NegotiateResponse, NegotiatedConnection, TransportType,
};

use crate::auth::Principal;
use crate::config::HubConfig;
use crate::endpoint::Endpoint;
use crate::http::response::{json, status};
use crate::http::{refused, ResponseBody};
use crate::request::RequestInfo;

/// The transports a hub offers, in the order clients should try them.
fn available_transports(config: &HubConfig) -> Vec<AvailableTransport> {
    TransportType::ALL
        .into_iter()
        .filter(|&transport| config.allows(transport))
        .map(AvailableTransport::from)
        .collect()
}

pub(crate) async fn negotiate<B>(
    endpoint: &Arc<Endpoint>,
    request: Request<B>,
) -> Response<ResponseBody> {
    if request.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from(parts);
    let Ok(principal) = endpoint.authenticator.authenticate(&info).await else {
        return status(StatusCode::UNAUTHORIZED);
    };
    if let Some(refused) = refused(endpoint, &principal, &info).await {
        return refused;
    }
    let user_id = endpoint.user_ids.user_id(&principal, &info);
    let query = info.uri().query().unwrap_or_default();
    let negotiate = match NegotiateRequest::from_query(query, endpoint.config.min_negotiate_version)
    {
        Ok(negotiate) => negotiate,
        Err(error) => return json(NegotiateResponse::Error(error.to_string()).to_json()),
    };
    // Stateful reconnect only when asked, only WebSockets can use it, and only hubs (it is part
    // of the hub protocol).
    let stateful = negotiate.use_stateful_reconnect
        && endpoint.raw.is_none()
        && endpoint.config.stateful_reconnect
        && endpoint.config.allows(TransportType::WebSockets);
    let (connection_id, token) = match endpoint.negotiate_connection(
        negotiate.version,
        stateful,
        user_id,
    ) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(%error, "the operating system's random source failed; cannot create a connection id");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let response = NegotiateResponse::Connection(NegotiatedConnection {
        negotiate_version: negotiate.version,
        connection_id: connection_id.to_string(),
        connection_token: (negotiate.version > 0).then_some(token),
        available_transports: available_transports(&endpoint.config),
        use_stateful_reconnect: stateful,
        token_lifetime_seconds: token_lifetime(endpoint, &principal),
    });
    json(response.to_json())
}

/// The whole seconds `principal`'s credentials have left, reported when the hub offers
/// authentication refresh (clients schedule their refresh from it).
pub(super) fn token_lifetime(endpoint: &Endpoint, principal: &Principal) -> Option<u64> {
    if !endpoint.config.authentication_refresh {
        return None;
    }
    principal
        .lifetime()
        .map(|left| left.as_secs())
        .filter(|&seconds| seconds > 0)
}
