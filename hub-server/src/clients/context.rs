//! What hub code can reach: [`Context`] inside a hub method, [`HubContext`] anywhere else, and
//! the parameter types a `#[hub]` method may take instead of a whole context.

use std::sync::Arc;
use std::time::Duration;

use hub_core::hub::{BindError, CallParts, FromCall, ParameterSource};
use hub_core::negotiate::TransportType;
use hub_core::protocol::{Close, Protocol};
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::clients::{
    CallerClients, ClientCallbacks, ClientProxy, Clients, Groups, InvocationCancellation,
};
use crate::connection::Connection;
use crate::lifetime::{LifetimeError, LifetimeManager, Target};
use crate::observability::HubMetrics;
use crate::request::RequestInfo;
use hub_core::trace::TraceParent;

/// A hub's clients and groups, usable outside hub methods: from background tasks, HTTP handlers,
/// timers. Cheap to clone; get one from [`HubServer::hub_context`](crate::HubServer::hub_context)
/// or [`Context::hub`], and make it typed with [`typed`](Self::typed).
pub struct HubContext<C: ClientCallbacks = ClientProxy> {
    /// Everything it does goes through the hub's clients (and their lifetime manager).
    clients: Clients<C>,
}

impl<C: ClientCallbacks> Clone for HubContext<C> {
    fn clone(&self) -> Self {
        HubContext {
            clients: self.clients.clone(),
        }
    }
}

impl HubContext {
    pub(crate) fn new(
        manager: Arc<dyn LifetimeManager>,
        metrics: Arc<HubMetrics>,
        client_result_timeout: Duration,
    ) -> Self {
        HubContext {
            clients: Clients::new(manager, metrics, client_result_timeout),
        }
    }
}

impl<C: ClientCallbacks> HubContext<C> {
    /// The same hub, handing out client proxies of the family `D` (e.g. `ChatClientProxy`, from a
    /// `#[hub_client]` trait).
    pub fn typed<D: ClientCallbacks>(&self) -> HubContext<D> {
        HubContext {
            clients: self.clients.typed(),
        }
    }

    /// Picks who to send to.
    pub fn clients(&self) -> Clients<C> {
        self.clients.clone()
    }

    /// Manages and inspects groups.
    pub fn groups(&self) -> Groups {
        Groups::new(self.clients.manager.clone())
    }

    /// How many connections the hub has (on every server).
    pub async fn connection_count(&self) -> Result<usize, LifetimeError> {
        self.clients.manager.connection_count().await
    }

    /// The connection ids of a user, sorted (on every server).
    pub async fn user_connections(&self, user_id: &str) -> Result<Vec<String>, LifetimeError> {
        self.clients.manager.user_connections(user_id).await
    }

    /// Ends a connection, wherever it is (the client gets `{"type":7}` and does not reconnect).
    /// Returns whether this server had it.
    pub async fn abort(&self, connection_id: &str) -> Result<bool, LifetimeError> {
        self.abort_target(&Target::Connection(connection_id.to_owned()))
            .await
            .map(|ended| ended > 0)
    }

    /// Ends every connection `target` reaches; returns how many this server ended.
    pub async fn abort_target(&self, target: &Target) -> Result<usize, LifetimeError> {
        self.clients.manager.abort(target).await
    }
}

/// Everything a hub method knows about its call: the connection, the request that opened it, the
/// caller-relative clients, groups, per-connection state, and cancellation.
///
/// `C` is the family of client proxies [`clients`](Self::clients) hands out: untyped by default,
/// or the proxy a `#[hub_client]` trait generates (`Context<ChatClientProxy>`).
pub struct Context<C: ClientCallbacks = ClientProxy> {
    connection: Arc<Connection>,
    hub: HubContext<C>,
    cancellation: Arc<InvocationCancellation>,
    trace_parent: Option<TraceParent>,
}

impl<C: ClientCallbacks> Clone for Context<C> {
    fn clone(&self) -> Self {
        Context {
            connection: self.connection.clone(),
            hub: self.hub.clone(),
            cancellation: self.cancellation.clone(),
            trace_parent: self.trace_parent,
        }
    }
}

impl Context {
    pub(crate) fn new(
        connection: Arc<Connection>,
        hub: HubContext,
        cancellation: Arc<InvocationCancellation>,
    ) -> Self {
        Context {
            connection,
            hub,
            cancellation,
            trace_parent: None,
        }
    }

    /// The same context for an invocation whose client sent this trace context.
    pub(crate) fn with_trace_parent(mut self, trace_parent: Option<TraceParent>) -> Self {
        self.trace_parent = trace_parent;
        self
    }
}

impl<C: ClientCallbacks> Context<C> {
    /// The same call, handing out client proxies of the family `D`.
    pub fn typed<D: ClientCallbacks>(&self) -> Context<D> {
        Context {
            connection: self.connection.clone(),
            hub: self.hub.typed(),
            cancellation: self.cancellation.clone(),
            trace_parent: self.trace_parent,
        }
    }

    /// The W3C trace context the client sent with this invocation (its `traceparent` header,
    /// when valid; the generated TypeScript client sends one with `withInvocationHeaders`), e.g.
    /// to pass on to a service the method calls. `None` in hooks and when the client sent none.
    pub fn trace_parent(&self) -> Option<TraceParent> {
        self.trace_parent
    }

    /// The caller's connection id (the client's `connectionId`).
    pub fn connection_id(&self) -> &str {
        &self.connection.id
    }

    /// The caller's user id, if authenticated.
    pub fn user_id(&self) -> Option<&str> {
        self.connection.user_id.as_deref()
    }

    /// Who the caller authenticated as: the principal its connection was opened with, or the
    /// one its latest authentication refresh brought
    /// ([`HubConfig::authentication_refresh`](crate::HubConfig::authentication_refresh)).
    pub fn principal(&self) -> Arc<Principal> {
        self.connection.identity.principal()
    }

    /// The transport the caller is connected with.
    pub fn transport(&self) -> TransportType {
        self.connection.transport
    }

    /// The hub protocol the caller speaks.
    pub fn protocol(&self) -> Protocol {
        self.connection.protocol
    }

    /// The HTTP request that opened the caller's transport: headers, query string, cookies.
    pub fn request(&self) -> &RequestInfo {
        &self.connection.request
    }

    /// Stores a value of type `T` on the connection, returning the one it replaces.
    pub fn insert_state<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.connection.with_state(|state| state.insert(value))
    }

    /// The connection's value of type `T`, if one was stored.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.connection
            .with_state(|state| state.get::<T>().cloned())
    }

    /// Changes the connection's value of type `T` in place (inserting `T::default()` first).
    pub fn update_state<T: Default + Clone + Send + Sync + 'static, R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> R {
        self.connection
            .with_state(|state| f(state.get_or_insert_default::<T>()))
    }

    /// Ends the caller's connection: the client gets `{"type":7}` and does not reconnect.
    pub fn abort(&self) {
        self.connection.end(Close::new(), None);
    }

    /// Fires when this invocation should stop: the client cancelled it (CancelInvocation), the
    /// connection ended, or the server's shutdown grace period ran out.
    pub fn cancellation(&self) -> &CancellationToken {
        self.cancellation.token()
    }

    /// Picks who to send to, relative to the caller.
    pub fn clients(&self) -> CallerClients<C> {
        CallerClients::new(self.hub.clients(), self.connection.id.clone())
    }

    /// Manages and inspects groups.
    pub fn groups(&self) -> Groups {
        self.hub.groups()
    }

    /// The hub's context, to keep beyond this call.
    pub fn hub(&self) -> &HubContext<C> {
        &self.hub
    }
}

/// A hub method parameter that fires when the invocation should stop: the client cancelled it,
/// the connection ended, or the server's shutdown grace period ran out (the same token as
/// [`Context::cancellation`]).
#[derive(Debug, Clone)]
pub struct Cancellation {
    token: CancellationToken,
}

impl Cancellation {
    /// Waits until the invocation is cancelled.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// Whether the invocation has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The underlying token, e.g. to hand to other tokio-util code.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// Implements [`FromCall`] for a context parameter type, built from the call's [`Context`].
macro_rules! context_parameter {
    ($(#[$generics:meta])* [$($params:tt)*] $ty:ty => |$cx:ident| $build:expr) => {
        impl<$($params)*> FromCall<Context> for $ty {
            const SOURCE: ParameterSource = ParameterSource::Context;
            type Wire = ();

            fn from_call(parts: &mut CallParts<'_, Context>) -> Result<Self, BindError> {
                let $cx = parts.context();
                Ok($build)
            }
        }
    };
}

context_parameter!([C: ClientCallbacks] Context<C> => |cx| cx.typed());
context_parameter!([C: ClientCallbacks] CallerClients<C> => |cx| cx.clients().typed());
context_parameter!([C: ClientCallbacks] HubContext<C> => |cx| cx.hub().typed());
context_parameter!([] Groups => |cx| cx.groups());
context_parameter!([] Cancellation => |cx| Cancellation { token: cx.cancellation().clone() });
context_parameter!([] RequestInfo => |cx| cx.request().clone());
context_parameter!([] Principal => |cx| Principal::clone(&cx.principal()));
