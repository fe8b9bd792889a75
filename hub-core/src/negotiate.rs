//! The negotiate exchange: `POST {hub}/negotiate?negotiateVersion=1` and its JSON answer.
//!
//! The server reads a [`NegotiateRequest`] from the query string and answers with a
//! [`NegotiateResponse`]; a client does the reverse. Field names and order are ASP.NET Core's.

use serde::{Deserialize, Serialize};

use crate::protocol::TransferFormat;
use crate::ProtocolError;

/// The newest negotiate version (1: the connection token is separate from the connection id).
pub const NEGOTIATE_VERSION: u32 = 1;

/// What a client asked for in the negotiate query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NegotiateRequest {
    /// The negotiate version the server will answer with: the client's, capped at
    /// [`NEGOTIATE_VERSION`]; 0 when the client sent none (the Python clients).
    pub version: u32,
    /// Whether the client asked for stateful reconnect (`useStatefulReconnect=true`).
    pub use_stateful_reconnect: bool,
}

impl NegotiateRequest {
    /// Reads the request from a query string (without the `?`), applying ASP.NET Core's rules:
    /// keys compare case-insensitively; a missing version is 0; a version that is not an integer,
    /// or is below `min_version`, is an error whose text the server sends as `{"error":"…"}`; a
    /// version above 1 is answered with 1. Other keys are ignored.
    pub fn from_query(query: &str, min_version: u32) -> Result<Self, ProtocolError> {
        let mut request = NegotiateRequest::default();
        let mut version = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key.eq_ignore_ascii_case("negotiateVersion") {
                version = Some(value.into_owned());
            } else if key.eq_ignore_ascii_case("useStatefulReconnect") {
                request.use_stateful_reconnect = value.eq_ignore_ascii_case("true");
            }
        }
        if let Some(version) = version {
            let requested: i64 = version
                .trim()
                .parse()
                .map_err(|_| ProtocolError::NonIntegerNegotiateVersion)?;
            if requested < i64::from(min_version) {
                return Err(ProtocolError::UnsupportedNegotiateVersion(requested));
            }
            request.version = u32::try_from(requested.min(i64::from(NEGOTIATE_VERSION)))
                .unwrap_or(NEGOTIATE_VERSION);
        }
        Ok(request)
    }

    /// The query string a client sends for this request, e.g. `negotiateVersion=1`.
    pub fn to_query(&self) -> String {
        let mut query = format!("negotiateVersion={}", self.version);
        if self.use_stateful_reconnect {
            query.push_str("&useStatefulReconnect=true");
        }
        query
    }
}

/// A transport a server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransportType {
    /// WebSockets (text and binary).
    WebSockets,
    /// Server-Sent Events down, POST up (text only).
    ServerSentEvents,
    /// Long polling (text and binary).
    LongPolling,
}

impl TransportType {
    /// Every transport, in the order a server lists them and a client tries them.
    pub const ALL: [TransportType; 3] = [
        TransportType::WebSockets,
        TransportType::ServerSentEvents,
        TransportType::LongPolling,
    ];

    /// The transfer formats the transport can carry.
    pub fn transfer_formats(self) -> &'static [TransferFormat] {
        match self {
            TransportType::ServerSentEvents => &[TransferFormat::Text],
            TransportType::WebSockets | TransportType::LongPolling => {
                &[TransferFormat::Text, TransferFormat::Binary]
            }
        }
    }
}

/// One entry of `availableTransports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableTransport {
    /// The transport.
    pub transport: TransportType,
    /// What it can carry.
    pub transfer_formats: Vec<TransferFormat>,
}

impl From<TransportType> for AvailableTransport {
    fn from(transport: TransportType) -> Self {
        AvailableTransport {
            transport,
            transfer_formats: transport.transfer_formats().to_vec(),
        }
    }
}

/// A successful negotiation: the connection the client should open a transport for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedConnection {
    /// The negotiate version answered (0 or 1).
    pub negotiate_version: u32,
    /// The public connection id.
    pub connection_id: String,
    /// The secret token that goes into `?id=`; absent in version 0, where the id plays its role.
    pub connection_token: Option<String>,
    /// The transports offered, in the order the client should try them.
    pub available_transports: Vec<AvailableTransport>,
    /// Sent (as `true`) only when the client asked for stateful reconnect and the server agrees.
    pub use_stateful_reconnect: bool,
    /// How many seconds the client's authentication has left (`tokenLifetimeSeconds`, ASP.NET
    /// Core 11), sent only when the server offers authentication refresh and the credentials
    /// expire: clients schedule their refresh from it.
    pub token_lifetime_seconds: Option<u64>,
}

impl NegotiatedConnection {
    /// The value the client puts in `?id=`: the token, or the id in version 0.
    pub fn token(&self) -> &str {
        self.connection_token
            .as_deref()
            .unwrap_or(&self.connection_id)
    }
}

/// The body of a negotiate response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateResponse {
    /// Open a transport for this connection.
    Connection(NegotiatedConnection),
    /// Negotiate again at `url`, using `access_token` as the bearer from then on.
    Redirect {
        /// The hub URL to negotiate with.
        url: String,
        /// The bearer token for that server.
        access_token: Option<String>,
    },
    /// Negotiation failed; clients reject `start()` with exactly this text.
    Error(String),
}

/// An `availableTransports` entry as read: one this crate knows, or anything else (skipped).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TransportEntry {
    Known(AvailableTransport),
    #[serde(skip_serializing)]
    Unknown(serde::de::IgnoredAny),
}

/// A `tokenLifetimeSeconds` as read: a number of seconds (a fraction counts whole seconds), or
/// anything else (ignored, as the JavaScript client ignores it).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Lifetime {
    Number(u64),
    #[serde(skip_serializing)]
    Fraction(f64),
    #[serde(skip_serializing)]
    Other(serde::de::IgnoredAny),
}

impl Lifetime {
    /// The whole seconds left, if any.
    pub(crate) fn seconds(self) -> Option<u64> {
        match self {
            Lifetime::Number(seconds) => Some(seconds),
            // Saturating: a huge or fractional value is still a lifetime.
            Lifetime::Fraction(seconds) if seconds.is_finite() => Some(seconds as u64),
            Lifetime::Fraction(_) | Lifetime::Other(_) => None,
        }
        .filter(|&seconds| seconds > 0)
    }
}

/// The wire shape, fields in ASP.NET Core's order.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    use_stateful_reconnect: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    negotiate_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    available_transports: Option<Vec<TransportEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_lifetime_seconds: Option<Lifetime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, rename = "ProtocolVersion", skip_serializing)]
    classic_protocol_version: Option<serde::de::IgnoredAny>,
}

impl NegotiateResponse {
    /// The JSON body, exactly as ASP.NET Core writes it.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = match self {
            NegotiateResponse::Connection(connection) => Wire {
                use_stateful_reconnect: connection.use_stateful_reconnect,
                negotiate_version: Some(connection.negotiate_version),
                connection_id: Some(connection.connection_id.clone()),
                connection_token: connection
                    .connection_token
                    .clone()
                    .filter(|_| connection.negotiate_version > 0),
                available_transports: Some(
                    connection
                        .available_transports
                        .iter()
                        .cloned()
                        .map(TransportEntry::Known)
                        .collect(),
                ),
                token_lifetime_seconds: connection.token_lifetime_seconds.map(Lifetime::Number),
                ..Wire::default()
            },
            NegotiateResponse::Redirect { url, access_token } => Wire {
                url: Some(url.clone()),
                access_token: access_token.clone(),
                ..Wire::default()
            },
            NegotiateResponse::Error(error) => Wire {
                error: Some(error.clone()),
                ..Wire::default()
            },
        };
        // Strings, numbers and JSON values always serialize.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Parses a negotiate response body, as the official JavaScript client reads it: an `error`
    /// wins, then a `url` redirect; otherwise a connection. Transports this crate does not know are
    /// skipped. In version 0 the connection id doubles as the token.
    pub fn parse(body: &[u8]) -> Result<Self, ProtocolError> {
        let invalid = |message: &str| ProtocolError::InvalidNegotiateResponse(message.to_owned());
        let wire: Wire = serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
        if wire.classic_protocol_version.is_some() {
            return Err(invalid(
                "the server is a classic ASP.NET SignalR server (it sent 'ProtocolVersion'); only ASP.NET Core SignalR servers are supported",
            ));
        }
        if let Some(error) = wire.error {
            return Ok(NegotiateResponse::Error(error));
        }
        if let Some(url) = wire.url {
            return Ok(NegotiateResponse::Redirect {
                url,
                access_token: wire.access_token,
            });
        }
        let negotiate_version = wire.negotiate_version.unwrap_or(0);
        let connection_id = wire
            .connection_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("missing 'connectionId'"))?;
        let connection_token = if negotiate_version > 0 {
            Some(
                wire.connection_token
                    .filter(|token| !token.is_empty())
                    .ok_or_else(|| invalid("missing 'connectionToken' in a version 1 response"))?,
            )
        } else {
            None
        };
        let available_transports = wire
            .available_transports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|entry| match entry {
                TransportEntry::Known(transport) => Some(transport),
                TransportEntry::Unknown(_) => None,
            })
            .collect();
        Ok(NegotiateResponse::Connection(NegotiatedConnection {
            negotiate_version,
            connection_id,
            connection_token,
            available_transports,
            use_stateful_reconnect: wire.use_stateful_reconnect,
            token_lifetime_seconds: wire.token_lifetime_seconds.and_then(Lifetime::seconds),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        let read = |query: &str| NegotiateRequest::from_query(query, 0).map_err(|e| e.to_string());
        assert_eq!(read("").unwrap().version, 0);
        assert_eq!(read("negotiateVersion=1").unwrap().version, 1);
        assert_eq!(read("x=1&NEGOTIATEVERSION=7").unwrap().version, 1);
        assert_eq!(read("negotiateVersion=0").unwrap().version, 0);
        assert_eq!(
            read("negotiateVersion=abc"),
            Err("The client requested a non-integer protocol version.".to_owned())
        );
        assert_eq!(
            read("negotiateVersion=-1"),
            Err(
                "The client requested version '-1', but the server does not support this version."
                    .to_owned()
            )
        );
        assert_eq!(
            NegotiateRequest::from_query("negotiateVersion=0", 1).map_err(|e| e.to_string()),
            Err(
                "The client requested version '0', but the server does not support this version."
                    .to_owned()
            )
        );
        let stateful = read("negotiateVersion=1&UseStatefulReconnect=True").unwrap();
        assert!(stateful.use_stateful_reconnect);
        assert_eq!(
            stateful.to_query(),
            "negotiateVersion=1&useStatefulReconnect=true"
        );
    }

    fn connection(version: u32, stateful: bool) -> NegotiateResponse {
        NegotiateResponse::Connection(NegotiatedConnection {
            negotiate_version: version,
            connection_id: "id".to_owned(),
            connection_token: Some("token".to_owned()),
            available_transports: TransportType::ALL
                .into_iter()
                .map(AvailableTransport::from)
                .collect(),
            use_stateful_reconnect: stateful,
            token_lifetime_seconds: None,
        })
    }

    #[test]
    fn responses_use_asp_net_field_names_and_order() {
        let transports = r#""availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]"#;
        assert_eq!(
            String::from_utf8(connection(1, false).to_json()).unwrap(),
            format!(
                r#"{{"negotiateVersion":1,"connectionId":"id","connectionToken":"token",{transports}}}"#
            )
        );
        assert_eq!(
            String::from_utf8(connection(1, true).to_json()).unwrap(),
            format!(
                r#"{{"useStatefulReconnect":true,"negotiateVersion":1,"connectionId":"id","connectionToken":"token",{transports}}}"#
            )
        );
        assert_eq!(
            String::from_utf8(connection(0, false).to_json()).unwrap(),
            format!(r#"{{"negotiateVersion":0,"connectionId":"id",{transports}}}"#)
        );
        assert_eq!(
            NegotiateResponse::Error("nope".to_owned()).to_json(),
            br#"{"error":"nope"}"#
        );
    }

    #[test]
    fn responses_parse_back() {
        for response in [connection(1, false), connection(1, true)] {
            assert_eq!(
                NegotiateResponse::parse(&response.to_json()).unwrap(),
                response
            );
        }
        let NegotiateResponse::Connection(v0) =
            NegotiateResponse::parse(&connection(0, false).to_json()).unwrap()
        else {
            panic!()
        };
        assert_eq!(v0.token(), "id");
        let redirect = NegotiateResponse::Redirect {
            url: "https://x/chat".to_owned(),
            access_token: Some("t".to_owned()),
        };
        assert_eq!(
            NegotiateResponse::parse(&redirect.to_json()).unwrap(),
            redirect
        );
        assert!(
            NegotiateResponse::parse(br#"{"ProtocolVersion":"1.5","connectionId":"x"}"#).is_err()
        );
        assert!(NegotiateResponse::parse(br#"{"negotiateVersion":1,"connectionId":"x"}"#).is_err());
        let unknown = br#"{"negotiateVersion":0,"connectionId":"x","availableTransports":[{"transport":"Carrier","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text"]}]}"#;
        let NegotiateResponse::Connection(parsed) = NegotiateResponse::parse(unknown).unwrap()
        else {
            panic!()
        };
        assert_eq!(parsed.available_transports.len(), 1);
    }
}
