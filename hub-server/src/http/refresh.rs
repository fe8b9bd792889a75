//! `POST {hub}/refresh`: a running connection renews its authentication without reconnecting
//! (ASP.NET Core 11's authentication refresh, [`HubConfig::authentication_refresh`]).
//!
//! [`HubConfig::authentication_refresh`]: crate::HubConfig::authentication_refresh

use http::{Method, Request, Response, StatusCode};
use hub_core::refresh::{RefreshRefusal, RefreshResponse, CONNECTION_TOKEN_HEADER};

use super::response::{json, status, ResponseBody};
use super::{query_value, same_user};
use crate::authorization::Decision;
use crate::endpoint::Endpoint;
use crate::request::RequestInfo;

/// Authenticates the request again and, for the connection's own user still admitted by the
/// hub, replaces the connection's principal (and so its expiry). A refused refresh leaves the
/// connection as it was.
pub(super) async fn refresh<B>(endpoint: &Endpoint, request: Request<B>) -> Response<ResponseBody> {
    if !endpoint.config.authentication_refresh {
        return refusal(RefreshRefusal::Disabled);
    }
    if request.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let token = token_of(&request);
    let (parts, _body) = request.into_parts();
    let info = RequestInfo::from(parts);
    let Ok(principal) = endpoint.authenticator.authenticate(&info).await else {
        return refusal(RefreshRefusal::InvalidToken);
    };
    let Some(token) = token else {
        return refusal(RefreshRefusal::MissingConnectionToken);
    };
    let identity = match endpoint.identity(&token) {
        Ok(identity) => identity,
        Err(refused) => return refusal(refused),
    };
    if !same_user(endpoint, &token, &principal, &info) {
        return refusal(RefreshRefusal::PermissionChangeRejected);
    }
    match endpoint.admits(&principal, &info).await {
        Decision::Allowed => {}
        Decision::Unauthenticated => return refusal(RefreshRefusal::InvalidToken),
        Decision::Forbidden => return refusal(RefreshRefusal::PermissionChangeRejected),
    }
    let answer = RefreshResponse {
        token_lifetime_seconds: super::negotiate::token_lifetime(endpoint, &principal),
        access_token: None,
    };
    identity.replace(principal);
    tracing::debug!(
        lifetime_seconds = answer.token_lifetime_seconds,
        "a connection's authentication was refreshed"
    );
    json(answer.to_json())
}

/// The connection token a refresh names: its `X-SignalR-Connection-Token` header, else `?id=`.
pub(super) fn token_of<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get(CONNECTION_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .or_else(|| query_value(request.uri().query(), "id"))
}

fn refusal(refused: RefreshRefusal) -> Response<ResponseBody> {
    tracing::debug!(
        code = refused.code(),
        "an authentication refresh was refused"
    );
    let mut response = json(refused.to_json());
    *response.status_mut() =
        StatusCode::from_u16(refused.status()).unwrap_or(StatusCode::BAD_REQUEST);
    response
}
