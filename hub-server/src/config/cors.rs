//! Cross-origin requests from browsers: which origins, which request headers, how long a
//! preflight answer may be cached.

use std::time::Duration;

/// The request headers a SignalR client sends (JavaScript: `X-Requested-With`,
/// `X-SignalR-User-Agent`, `Authorization` with a token factory, `Content-Type` on sends,
/// `X-SignalR-Connection-Token` on an authentication refresh).
const SIGNALR_REQUEST_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "x-requested-with",
    "x-signalr-connection-token",
    "x-signalr-user-agent",
];

/// Which browser origins may call a hub cross-origin, with credentials (cookies, `Authorization`).
///
/// For an allowed `Origin` every response (negotiate, sends, polls, event streams, DELETE) echoes
/// it in `Access-Control-Allow-Origin` with `Access-Control-Allow-Credentials: true`, and
/// preflights (`OPTIONS`) are answered with 204, the methods `GET, POST, DELETE` and the
/// SignalR request headers. Other origins get no CORS headers, so browsers refuse the response.
///
/// ```
/// use std::time::Duration;
/// use hub_server::{CorsConfig, HubConfig};
///
/// let config = HubConfig::new().cors(
///     CorsConfig::allow_origins(["https://app.example.com"]).max_age(Duration::from_secs(600)),
/// );
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// `None`: any origin (echoed, never `*`, because credentials are allowed).
    origins: Option<Vec<String>>,
    /// Request headers allowed besides the SignalR ones (lowercase).
    extra_headers: Vec<String>,
    max_age: Duration,
}

impl CorsConfig {
    /// Allows these origins (`scheme://host[:port]`, compared ASCII case-insensitively; a trailing
    /// slash is ignored).
    pub fn allow_origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CorsConfig {
            origins: Some(
                origins
                    .into_iter()
                    .map(|origin| origin.into().trim_end_matches('/').to_owned())
                    .collect(),
            ),
            extra_headers: Vec::new(),
            max_age: Duration::from_secs(600),
        }
    }

    /// Allows every origin. Credentials are allowed too, so only use this when the hub does not
    /// rely on cookies for authentication.
    pub fn allow_any_origin() -> Self {
        CorsConfig {
            origins: None,
            extra_headers: Vec::new(),
            max_age: Duration::from_secs(600),
        }
    }

    /// Also allows these request headers (e.g. the custom `headers` of the JavaScript client's
    /// options), besides `authorization, content-type, x-requested-with,
    /// x-signalr-connection-token, x-signalr-user-agent`.
    pub fn allow_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_headers
            .extend(headers.into_iter().map(|h| h.into().to_ascii_lowercase()));
        self
    }

    /// How long browsers may cache a preflight answer (`Access-Control-Max-Age`; 10 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Whether requests from `origin` may be answered with CORS headers.
    pub fn is_allowed(&self, origin: &str) -> bool {
        match &self.origins {
            None => true,
            Some(origins) => {
                let origin = origin.trim_end_matches('/');
                origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
            }
        }
    }

    /// The `Access-Control-Max-Age` value.
    pub(crate) fn max_age_secs(&self) -> u64 {
        self.max_age.as_secs()
    }

    /// Whether a request header may be sent cross-origin.
    pub(crate) fn allows_header(&self, name: &str) -> bool {
        SIGNALR_REQUEST_HEADERS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
            || self
                .extra_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Every allowed request header, comma-separated.
    pub(crate) fn allowed_headers(&self) -> String {
        SIGNALR_REQUEST_HEADERS
            .iter()
            .copied()
            .chain(self.extra_headers.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
