//! CORS for browser clients on another origin: which origins may call the hubs, and the headers
//! every response and preflight carries for them (settings: [`CorsConfig`](crate::CorsConfig)).

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use crate::config::HubConfig;
use crate::http::response::status;
use crate::http::ResponseBody;

/// What CORS adds to the responses to one request.
pub(crate) struct Cors {
    /// CORS is configured and the request has an `Origin`: responses vary by it.
    vary: bool,
    /// The request's origin, if it is allowed.
    allowed_origin: Option<HeaderValue>,
}

impl Cors {
    pub(crate) fn evaluate(config: &HubConfig, headers: &HeaderMap) -> Cors {
        let origin = config
            .cors
            .as_ref()
            .and_then(|cors| Some((cors, headers.get(header::ORIGIN)?)));
        match origin {
            None => Cors {
                vary: false,
                allowed_origin: None,
            },
            Some((cors, origin)) => Cors {
                vary: true,
                allowed_origin: origin
                    .to_str()
                    .is_ok_and(|o| cors.is_allowed(o))
                    .then(|| origin.clone()),
            },
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), when CORS
    /// is configured: 204, with the CORS headers if the origin is allowed.
    pub(crate) fn preflight<B>(
        &self,
        config: &HubConfig,
        request: &Request<B>,
    ) -> Option<Response<ResponseBody>> {
        let cors = config.cors.as_ref()?;
        let headers = request.headers();
        if request.method() != Method::OPTIONS
            || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = status(StatusCode::NO_CONTENT);
        if self.allowed_origin.is_some() {
            let requested: Vec<String> = headers
                .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .map(|name| name.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty())
                .collect();
            let allowed_headers =
                if !requested.is_empty() && requested.iter().all(|name| cors.allows_header(name)) {
                    requested.join(", ")
                } else {
                    cors.allowed_headers()
                };
            let out = response.headers_mut();
            out.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE"),
            );
            if let Ok(value) = HeaderValue::from_str(&allowed_headers) {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
            }
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(cors.max_age_secs()),
            );
        }
        self.apply(&mut response);
        Some(response)
    }

    pub(crate) fn apply(&self, response: &mut Response<ResponseBody>) {
        let headers = response.headers_mut();
        if self.vary {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(origin) = &self.allowed_origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// Whether a transport request may go on, judged by its `Origin` ([`HubConfig::check_origin`]):
/// no `Origin` (not a browser), the server's own origin (the authority it was sent to), or one
/// the CORS settings allow.
pub(crate) fn origin_allowed(
    config: &HubConfig,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> bool {
    if !config.check_origin {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if config
        .cors
        .as_ref()
        .is_some_and(|cors| cors.is_allowed(origin))
    {
        return true;
    }
    let host = authority.or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
    });
    let origin_authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .map(|rest| rest.trim_end_matches('/'));
    matches!((origin_authority, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}
