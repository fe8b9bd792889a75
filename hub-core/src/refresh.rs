//! Authentication refresh (ASP.NET Core 11): `POST {hub}/refresh` renews the credentials of a
//! running connection without reconnecting.
//!
//! The request names its connection by the connection token, in the
//! [`CONNECTION_TOKEN_HEADER`] header (the official JavaScript client) or in `?id=`, and carries
//! the new credentials as every request does (`Authorization: Bearer …`, cookies). Its body is
//! empty. The answer is a JSON object: on success ([`RefreshResponse`], 200) how many seconds the
//! new credentials have left; on refusal ([`RefreshRefusal`]) `{"error": code}` with the status
//! of the refusal. A long poll answered 409 with the code [`REFRESH_REQUIRED`] asks its client to
//! refresh before it polls again.

use serde::{Deserialize, Serialize};

use crate::negotiate::Lifetime;
use crate::ProtocolError;

/// The request header an authentication refresh names its connection token in.
pub const CONNECTION_TOKEN_HEADER: &str = "X-SignalR-Connection-Token";

/// The error code of a long poll answered 409: the connection's credentials no longer
/// authenticate, refresh them (`POST {hub}/refresh`) and poll again.
pub const REFRESH_REQUIRED: &str = "authentication_refresh_required";

/// The answer to an accepted refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshResponse {
    /// How many seconds the new credentials have left (`tokenLifetimeSeconds`); `None` when
    /// they do not expire.
    pub token_lifetime_seconds: Option<u64>,
    /// A token for the transport's later requests (`accessToken`), from servers that issue their
    /// own; `None`: the client goes on with the credentials it refreshed with.
    pub access_token: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_lifetime_seconds: Option<Lifetime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl RefreshResponse {
    /// The JSON body: `{"tokenLifetimeSeconds":N}`, or `{}` for credentials that do not expire.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            token_lifetime_seconds: self.token_lifetime_seconds.map(Lifetime::Number),
            access_token: self.access_token.clone(),
            error: None,
        };
        // Strings and numbers always serialize.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Parses the body of a refresh answer: the response, or the refusal it carries (an
    /// `error` member).
    pub fn parse(body: &[u8]) -> Result<Result<Self, String>, ProtocolError> {
        let wire: Wire = serde_json::from_slice(body)
            .map_err(|e| ProtocolError::InvalidRefreshResponse(e.to_string()))?;
        if let Some(error) = wire.error {
            return Ok(Err(error));
        }
        Ok(Ok(RefreshResponse {
            token_lifetime_seconds: wire.token_lifetime_seconds.and_then(Lifetime::seconds),
            access_token: wire.access_token.filter(|token| !token.is_empty()),
        }))
    }
}

/// Why a refresh was refused. The connection goes on unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefreshRefusal {
    /// The hub does not offer authentication refresh (404).
    #[error("authentication refresh is not enabled on this hub")]
    Disabled,
    /// Neither the header nor `?id=` names a connection token (400).
    #[error("the request names no connection token")]
    MissingConnectionToken,
    /// No running connection has that token (404).
    #[error("no connection has that token")]
    ConnectionNotFound,
    /// The connection negotiated version 0, whose id is its token (400).
    #[error("the connection negotiated version 0; refresh needs version 1")]
    UnsupportedNegotiateVersion,
    /// The new credentials do not authenticate (401).
    #[error("the credentials do not authenticate")]
    InvalidToken,
    /// The new credentials belong to another user, or the hub no longer admits them (403).
    #[error("the credentials belong to another user or are not allowed on this hub")]
    PermissionChangeRejected,
}

impl RefreshRefusal {
    /// The `error` code, as ASP.NET Core writes it.
    pub fn code(self) -> &'static str {
        match self {
            RefreshRefusal::Disabled => "refresh_disabled",
            RefreshRefusal::MissingConnectionToken => "missing_connection_token",
            RefreshRefusal::ConnectionNotFound => "connection_not_found",
            RefreshRefusal::UnsupportedNegotiateVersion => "unsupported_negotiate_version",
            RefreshRefusal::InvalidToken => "invalid_token",
            RefreshRefusal::PermissionChangeRejected => "permission_change_rejected",
        }
    }

    /// The HTTP status of the answer.
    pub fn status(self) -> u16 {
        match self {
            RefreshRefusal::Disabled | RefreshRefusal::ConnectionNotFound => 404,
            RefreshRefusal::MissingConnectionToken
            | RefreshRefusal::UnsupportedNegotiateVersion => 400,
            RefreshRefusal::InvalidToken => 401,
            RefreshRefusal::PermissionChangeRejected => 403,
        }
    }

    /// The JSON body: `{"error":"<code>"}`.
    pub fn to_json(self) -> Vec<u8> {
        error_body(self.code())
    }
}

/// `{"error":"<code>"}`.
pub fn error_body(code: &str) -> Vec<u8> {
    let wire = Wire {
        error: Some(code.to_owned()),
        ..Wire::default()
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_use_asp_net_names() {
        let lifetime = RefreshResponse {
            token_lifetime_seconds: Some(3600),
            access_token: None,
        };
        assert_eq!(lifetime.to_json(), br#"{"tokenLifetimeSeconds":3600}"#);
        assert_eq!(RefreshResponse::default().to_json(), b"{}");
        assert_eq!(
            RefreshRefusal::PermissionChangeRejected.to_json(),
            br#"{"error":"permission_change_rejected"}"#
        );
        assert_eq!(
            error_body(REFRESH_REQUIRED),
            br#"{"error":"authentication_refresh_required"}"#
        );
    }

    #[test]
    fn answers_parse_back() {
        assert_eq!(
            RefreshResponse::parse(br#"{"tokenLifetimeSeconds":59.9,"accessToken":"t"}"#).unwrap(),
            Ok(RefreshResponse {
                token_lifetime_seconds: Some(59),
                access_token: Some("t".to_owned()),
            })
        );
        assert_eq!(
            RefreshResponse::parse(br#"{"tokenLifetimeSeconds":"soon"}"#).unwrap(),
            Ok(RefreshResponse::default())
        );
        assert_eq!(
            RefreshResponse::parse(br#"{"error":"invalid_token"}"#).unwrap(),
            Err("invalid_token".to_owned())
        );
        assert!(RefreshResponse::parse(b"not json").is_err());
    }
}
