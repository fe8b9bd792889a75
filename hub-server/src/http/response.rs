//! The small response builders the service's handlers share.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

/// The body of every response a [`HubService`](crate::HubService) gives.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// An empty response with `code`.
pub(crate) fn status(code: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = code;
    response
}

/// A `text/plain` response (ASP.NET Core answers transport requests so, also when empty).
pub(crate) fn text(code: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

pub(crate) fn json(body: Vec<u8>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Tells browsers and proxies not to cache a response: `Cache-Control: cache_control` and
/// `Pragma: no-cache`. ASP.NET Core spells the value `no-cache,no-store` on event streams and
/// `no-cache, no-store` on polls; each caller passes its own, as clients see them.
pub(crate) fn no_cache(headers: &mut http::HeaderMap, cache_control: &'static str) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
