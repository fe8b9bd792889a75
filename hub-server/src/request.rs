//! What the server keeps of the HTTP request that opened a connection, and authentication.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Uri};
use hub_core::hub::BoxFuture;

/// The HTTP request that opened a transport (or negotiated): method, URI, headers.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl RequestInfo {
    pub(crate) fn from_parts(parts: &http::request::Parts) -> Self {
        RequestInfo {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        }
    }

    /// The same request, copied out of the connection's read buffer, for a connection to keep.
    /// hyper's parsed URI and header values are slices of that whole buffer (8–16 KiB): a
    /// `RequestInfo` from [`from_parts`](Self::from_parts) would keep it alive for as long as the
    /// connection lives.
    pub(crate) fn detached(self) -> Self {
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let mut copy = HeaderValue::from_bytes(value.as_bytes())
                .unwrap_or_else(|_| HeaderValue::from_static(""));
            copy.set_sensitive(value.is_sensitive());
            headers.append(name.clone(), copy);
        }
        let uri = Uri::try_from(self.uri.to_string()).unwrap_or(self.uri);
        RequestInfo {
            method: self.method,
            uri,
            headers,
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
        &self.headers
    }

    /// The first value of query parameter `name` (percent-decoded; names compare exactly).
    pub fn query(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.uri.query().unwrap_or_default().as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The value of cookie `name`, if the request carried it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
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
            .headers
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

/// Who is connecting, as established by an [`Authenticator`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The user the connection belongs to; connections with the same user id form that user's
    /// target (`clients.user(id)`).
    pub user_id: Option<String>,
    /// Anything else the authenticator learned (roles, names, …).
    pub claims: HashMap<String, String>,
}

impl Principal {
    /// An anonymous principal.
    pub fn anonymous() -> Self {
        Principal::default()
    }

    /// A principal for user `user_id`.
    pub fn user(user_id: impl Into<String>) -> Self {
        Principal {
            user_id: Some(user_id.into()),
            claims: HashMap::new(),
        }
    }
}

/// The request is not authenticated: the server answers 401 with an empty body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

/// Decides who a request comes from, or rejects it.
///
/// It runs on negotiate and on every transport request; the principal of the request that opens
/// the transport becomes the connection's. Any async function or closure
/// `Fn(&RequestInfo) -> impl Future<Output = Result<Principal, Unauthorized>>` is one.
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates `request`.
    fn authenticate(&self, request: &RequestInfo) -> BoxFuture<Result<Principal, Unauthorized>>;
}

impl<F, Fut> Authenticator for F
where
    F: Fn(&RequestInfo) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Principal, Unauthorized>> + Send + 'static,
{
    fn authenticate(&self, request: &RequestInfo) -> BoxFuture<Result<Principal, Unauthorized>> {
        Box::pin(self(request))
    }
}

/// Accepts everyone, anonymously.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAnonymous;

impl Authenticator for AllowAnonymous {
    fn authenticate(&self, _request: &RequestInfo) -> BoxFuture<Result<Principal, Unauthorized>> {
        Box::pin(std::future::ready(Ok(Principal::anonymous())))
    }
}

/// Maps an authenticated principal to the user id connections are grouped by (SignalR's
/// `IUserIdProvider`). The default takes [`Principal::user_id`].
pub trait UserIdProvider: Send + Sync + 'static {
    /// The user id of a connection opened by `principal` with `request`.
    fn user_id(&self, principal: &Principal, request: &RequestInfo) -> Option<String>;
}

/// The default [`UserIdProvider`]: the principal's own user id.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrincipalUserId;

impl UserIdProvider for PrincipalUserId {
    fn user_id(&self, principal: &Principal, _request: &RequestInfo) -> Option<String> {
        principal.user_id.clone()
    }
}

pub(crate) type SharedAuthenticator = Arc<dyn Authenticator>;
pub(crate) type SharedUserIdProvider = Arc<dyn UserIdProvider>;
