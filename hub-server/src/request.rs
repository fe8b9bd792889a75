//! What the server keeps of the HTTP request that opened a connection (authentication is in
//! `auth.rs`).

use std::fmt;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, Uri};

/// The HTTP request that opened a transport (or negotiated): method, URI, headers.
#[derive(Clone)]
pub struct RequestInfo {
    method: Method,
    uri: Uri,
    /// For a connection to keep: every header in one buffer (see [`pack`]), made into
    /// `headers` the first time they are looked at. Most connections never look, and a map
    /// costs ten times the bytes (over 1 KiB for a browser's request).
    packed: Option<Bytes>,
    /// Boxed: a connection keeps its request for its whole life, mostly without a map.
    headers: OnceLock<Box<HeaderMap>>,
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("headers", self.headers())
            .finish()
    }
}

/// The request of `parts`, taken over without copying its headers.
impl From<http::request::Parts> for RequestInfo {
    fn from(parts: http::request::Parts) -> Self {
        RequestInfo {
            method: parts.method,
            uri: parts.uri,
            packed: None,
            headers: OnceLock::from(Box::new(parts.headers)),
        }
    }
}

impl RequestInfo {
    /// A copy of the request of `parts`, for a caller that keeps them (prefer `From<Parts>`).
    pub(crate) fn from_parts(parts: &http::request::Parts) -> Self {
        RequestInfo {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            packed: None,
            headers: OnceLock::from(Box::new(parts.headers.clone())),
        }
    }

    /// The same request, copied out of the connection's read buffer, for a connection to keep.
    /// hyper's parsed URI and header values are slices of that whole buffer (8–16 KiB): a
    /// `RequestInfo` from [`from_parts`](Self::from_parts) would keep it alive for as long as the
    /// connection lives. The headers are kept packed in one buffer until they are looked at.
    pub(crate) fn detached(self) -> Self {
        let packed = pack(self.headers());
        let uri = Uri::try_from(self.uri.to_string()).unwrap_or(self.uri);
        RequestInfo {
            method: self.method,
            uri,
            packed: Some(packed),
            headers: OnceLock::new(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI (path and query).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
            .get_or_init(|| Box::new(unpack(self.packed.as_ref().unwrap_or(&Bytes::new()))))
    }

    /// The first value of query parameter `name` (percent-decoded; names compare exactly).
    pub fn query(&self, name: &str) -> Option<String> {
        query_parameter(self.uri.query().unwrap_or_default(), name)
    }

    /// The value of cookie `name`, if the request carried it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }

    /// The bearer token: from `Authorization: Bearer …`, else from the `access_token` query
    /// parameter (which browsers use for WebSockets and Server-Sent Events).
    pub fn bearer_token(&self) -> Option<String> {
        let header = self
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            });
        header.or_else(|| self.query("access_token"))
    }
}

/// Every header in one buffer, in order, one line each: `s` (sensitive) or `-`, the name, `:`,
/// the value, `\n` (a header value holds neither a line feed nor, in its name, a colon).
fn pack(headers: &HeaderMap) -> Bytes {
    let size = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 3)
        .sum();
    let mut packed = BytesMut::with_capacity(size);
    for (name, value) in headers {
        packed.extend_from_slice(if value.is_sensitive() { b"s" } else { b"-" });
        packed.extend_from_slice(name.as_str().as_bytes());
        packed.extend_from_slice(b":");
        packed.extend_from_slice(value.as_bytes());
        packed.extend_from_slice(b"\n");
    }
    packed.freeze()
}

/// The headers [`pack`] packed; each value a slice of the buffer.
fn unpack(packed: &Bytes) -> HeaderMap {
    let lines = packed.iter().filter(|&&byte| byte == b'\n').count();
    let mut headers = HeaderMap::with_capacity(lines);
    let mut start = 0;
    while let Some(length) = packed[start..].iter().position(|&byte| byte == b'\n') {
        let line = &packed[start..start + length];
        if let Some(colon) = line.iter().position(|&byte| byte == b':') {
            if let Ok(name) = HeaderName::from_bytes(&line[1..colon]) {
                let value = packed.slice(start + colon + 1..start + length);
                let mut value = HeaderValue::from_maybe_shared(value)
                    .unwrap_or_else(|_| HeaderValue::from_static(""));
                value.set_sensitive(line.first() == Some(&b's'));
                headers.append(name, value);
            }
        }
        start += length + 1;
    }
    headers
}

/// The first value of parameter `name` in a URL query (`application/x-www-form-urlencoded`:
/// percent-decoded, `+` a space). Every transport request looks up its connection token this
/// way: pairs that need no decoding (a token never does) are compared as they are, and only a
/// query with an encoded pair before the one looked for is decoded.
pub(crate) fn query_parameter(query: &str, name: &str) -> Option<String> {
    let encoded = |text: &str| text.bytes().any(|b| b == b'%' || b == b'+');
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if encoded(key) || encoded(value) {
            return form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned());
        }
        if !pair.is_empty() && key == name {
            return Some(value.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_parameter_reads_as_form_urlencoded_does() {
        let decoded = |query: &str, name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        for query in [
            "id=abc",
            "negotiateVersion=1&id=a-b_c.d~e",
            "id=&id=second",
            "x=1&&id=2",
            "id",
            "id=a=b",
            "x=%41&id=1",
            "id=a%2Bb+c&x=2",
            "%69d=encoded-name",
            "access_token=t%20k&id=3",
            "",
            "&",
            "id=%zz",
        ] {
            for name in ["id", "access_token", "x"] {
                assert_eq!(
                    query_parameter(query, name),
                    decoded(query, name),
                    "{query:?} {name:?}"
                );
            }
        }
    }

    #[test]
    fn a_detached_request_keeps_every_header_value_in_order() {
        let mut request = http::Request::builder()
            .method(Method::GET)
            .uri("/hub?id=abc&access_token=t")
            .header("host", "example.com")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("x-empty", "")
            .body(())
            .unwrap_or_default();
        let mut secret = HeaderValue::from_static("Bearer s3cret");
        secret.set_sensitive(true);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, secret);
        let (parts, ()) = request.into_parts();
        let original = RequestInfo::from_parts(&parts);
        let detached = original.clone().detached();
        assert_eq!(detached.headers(), original.headers());
        assert_eq!(detached.uri(), original.uri());
        assert_eq!(detached.cookie("b").as_deref(), Some("2"));
        assert!(detached
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(HeaderValue::is_sensitive));
    }
}
