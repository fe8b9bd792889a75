//! Who to send to: `clients.all()`, `.group("g")`, `.user(id)`, … and group management.
//!
//! Proxies come untyped ([`ClientProxy`], [`SingleClientProxy`]: name the client method, pass a
//! tuple of arguments) or typed, from a `#[hub_client]` trait: `Clients<C>` hands out `C::Many`
//! and `C::Single`, so `clients.group("g")` has exactly the callbacks the trait declares.

mod cancellation;
mod context;

pub(crate) use cancellation::{InvocationCancellation, StopSignal};
pub use context::{Cancellation, Context, HubContext};

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use hub_core::hub::{BoxFuture, ClientResultError};
use hub_core::protocol::{EncodeArguments, Invocation};
use serde::de::DeserializeOwned;

use crate::lifetime::{LifetimeError, LifetimeManager, PreparedMessage, Target};
use crate::observability::HubMetrics;
use crate::registry::ClientMetadata;

/// A family of client proxies: what [`Clients`] hands out for many connections and for one.
///
/// [`ClientProxy`] is the untyped family (the default everywhere); the `#[hub_client]` macro
/// implements this for the typed proxy it generates (`ChatClient` → `ChatClientProxy`).
pub trait ClientCallbacks: Send + Sync + 'static {
    /// The proxy for targets that may reach many connections (all, groups, users, …).
    type Many: Send + Sync + 'static;
    /// The proxy for exactly one connection; it can also await client results.
    type Single: Send + Sync + 'static;
    /// The callbacks, for code generation (empty for untyped proxies).
    const METADATA: ClientMetadata;

    /// Wraps an untyped proxy for many connections.
    fn many(proxy: ClientProxy) -> Self::Many;
    /// Wraps an untyped proxy for one connection.
    fn single(proxy: SingleClientProxy) -> Self::Single;
}

impl ClientCallbacks for ClientProxy {
    type Many = ClientProxy;
    type Single = SingleClientProxy;
    const METADATA: ClientMetadata = ClientMetadata {
        name: "",
        docs: "",
        callbacks: &[],
    };

    fn many(proxy: ClientProxy) -> ClientProxy {
        proxy
    }

    fn single(proxy: SingleClientProxy) -> SingleClientProxy {
        proxy
    }
}

/// How many connections a typed proxy reaches: [`ManyClients`] or [`SingleClient`]. Typed proxies
/// (`ChatClientProxy<K>`) are generic over it, so callbacks that return a result exist only where
/// one connection answers.
pub trait ProxyKind: Send + Sync + 'static {
    /// The untyped proxy underneath.
    type Proxy: Clone + Send + Sync + 'static;

    /// Calls `method` without waiting for an answer; fails when the lifetime manager cannot
    /// send it (a backplane that is down).
    fn send<A: EncodeArguments>(
        proxy: &Self::Proxy,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = Result<(), LifetimeError>> + Send + 'static + use<Self, A>;
}

/// A typed proxy that may reach many connections (all, a group, a user, …).
#[derive(Debug)]
pub enum ManyClients {}

/// A typed proxy that reaches exactly one connection (the caller, or a connection by id).
#[derive(Debug)]
pub enum SingleClient {}

impl ProxyKind for ManyClients {
    type Proxy = ClientProxy;

    fn send<A: EncodeArguments>(
        proxy: &ClientProxy,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = Result<(), LifetimeError>> + Send + 'static + use<A> {
        proxy.send(method, arguments)
    }
}

impl ProxyKind for SingleClient {
    type Proxy = SingleClientProxy;

    fn send<A: EncodeArguments>(
        proxy: &SingleClientProxy,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = Result<(), LifetimeError>> + Send + 'static + use<A> {
        proxy.send(method, arguments)
    }
}

/// The proxy kinds that can await a client's result: only [`SingleClient`].
#[diagnostic::on_unimplemented(
    message = "a client result cannot be awaited from a proxy that may reach many connections",
    label = "this callback returns a value, so exactly one client must answer it",
    note = "call it on `clients.caller()` or `clients.client(connection_id)`, which reach one connection"
)]
pub trait ResultKind: ProxyKind {
    /// Calls `method` and waits for the client's result.
    fn invoke<R: DeserializeOwned + Send + 'static, A: EncodeArguments>(
        proxy: &Self::Proxy,
        method: &str,
        arguments: A,
    ) -> BoxFuture<Result<R, ClientResultError>>;
}

impl ResultKind for SingleClient {
    fn invoke<R: DeserializeOwned + Send + 'static, A: EncodeArguments>(
        proxy: &SingleClientProxy,
        method: &str,
        arguments: A,
    ) -> BoxFuture<Result<R, ClientResultError>> {
        Box::pin(proxy.invoke(method, arguments))
    }
}

/// Picks the connections a message goes to, handing out proxies of the family `C` (untyped by
/// default). Cheap to clone.
pub struct Clients<C: ClientCallbacks = ClientProxy> {
    manager: Arc<dyn LifetimeManager>,
    metrics: Arc<HubMetrics>,
    client_result_timeout: Duration,
    family: PhantomData<fn() -> C>,
}

impl<C: ClientCallbacks> Clone for Clients<C> {
    fn clone(&self) -> Self {
        Clients {
            manager: self.manager.clone(),
            metrics: self.metrics.clone(),
            client_result_timeout: self.client_result_timeout,
            family: PhantomData,
        }
    }
}

impl Clients {
    pub(crate) fn new(
        manager: Arc<dyn LifetimeManager>,
        metrics: Arc<HubMetrics>,
        client_result_timeout: Duration,
    ) -> Self {
        Clients {
            manager,
            metrics,
            client_result_timeout,
            family: PhantomData,
        }
    }
}

impl<C: ClientCallbacks> Clients<C> {
    /// The same clients, handing out proxies of another family (e.g. a `#[hub_client]` proxy).
    pub fn typed<D: ClientCallbacks>(&self) -> Clients<D> {
        Clients {
            manager: self.manager.clone(),
            metrics: self.metrics.clone(),
            client_result_timeout: self.client_result_timeout,
            family: PhantomData,
        }
    }

    fn proxy(&self, target: Target) -> C::Many {
        C::many(ClientProxy {
            manager: self.manager.clone(),
            metrics: self.metrics.clone(),
            target,
        })
    }

    /// Every connection of the hub.
    pub fn all(&self) -> C::Many {
        self.proxy(Target::All)
    }

    /// Every connection but these.
    pub fn all_except<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        connection_ids: I,
    ) -> C::Many {
        self.proxy(Target::AllExcept(
            connection_ids.into_iter().map(Into::into).collect(),
        ))
    }

    /// One connection; it can also answer calls ([`SingleClientProxy::invoke`]).
    pub fn client(&self, connection_id: impl Into<String>) -> C::Single {
        C::single(SingleClientProxy {
            connection_id: connection_id.into(),
            manager: self.manager.clone(),
            metrics: self.metrics.clone(),
            timeout: self.client_result_timeout,
        })
    }

    /// Several connections.
    pub fn clients<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        connection_ids: I,
    ) -> C::Many {
        self.proxy(Target::Connections(
            connection_ids.into_iter().map(Into::into).collect(),
        ))
    }

    /// The members of a group.
    pub fn group(&self, group: impl Into<String>) -> C::Many {
        self.proxy(Target::Group(group.into()))
    }

    /// The members of any of these groups, each once.
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(&self, groups: I) -> C::Many {
        self.proxy(Target::Groups(groups.into_iter().map(Into::into).collect()))
    }

    /// The members of a group but these connections.
    pub fn group_except<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        group: impl Into<String>,
        connection_ids: I,
    ) -> C::Many {
        self.proxy(Target::GroupExcept(
            group.into(),
            connection_ids.into_iter().map(Into::into).collect(),
        ))
    }

    /// Every connection of a user.
    pub fn user(&self, user_id: impl Into<String>) -> C::Many {
        self.proxy(Target::User(user_id.into()))
    }

    /// Every connection of any of these users.
    pub fn users<I: IntoIterator<Item = S>, S: Into<String>>(&self, user_ids: I) -> C::Many {
        self.proxy(Target::Users(
            user_ids.into_iter().map(Into::into).collect(),
        ))
    }
}

/// [`Clients`] seen from inside a hub method, which also knows the caller.
pub struct CallerClients<C: ClientCallbacks = ClientProxy> {
    clients: Clients<C>,
    caller: Arc<str>,
}

impl<C: ClientCallbacks> Clone for CallerClients<C> {
    fn clone(&self) -> Self {
        CallerClients {
            clients: self.clients.clone(),
            caller: self.caller.clone(),
        }
    }
}

impl<C: ClientCallbacks> CallerClients<C> {
    pub(crate) fn new(clients: Clients<C>, caller: Arc<str>) -> Self {
        CallerClients { clients, caller }
    }

    /// The same clients, handing out proxies of another family.
    pub fn typed<D: ClientCallbacks>(&self) -> CallerClients<D> {
        CallerClients {
            clients: self.clients.typed(),
            caller: self.caller.clone(),
        }
    }

    /// The connection that made the call; it can also answer calls
    /// ([`SingleClientProxy::invoke`]).
    pub fn caller(&self) -> C::Single {
        self.clients.client(&*self.caller)
    }

    /// Every connection but the caller.
    pub fn others(&self) -> C::Many {
        self.clients.all_except([&*self.caller])
    }

    /// The members of a group but the caller.
    pub fn others_in_group(&self, group: impl Into<String>) -> C::Many {
        self.clients.group_except(group, [&*self.caller])
    }
}

impl<C: ClientCallbacks> std::ops::Deref for CallerClients<C> {
    type Target = Clients<C>;
    fn deref(&self) -> &Clients<C> {
        &self.clients
    }
}

/// Sends client method calls to one target.
#[derive(Clone)]
pub struct ClientProxy {
    manager: Arc<dyn LifetimeManager>,
    metrics: Arc<HubMetrics>,
    target: Target,
}

impl ClientProxy {
    /// Who this proxy sends to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Calls `method` on every targeted client with `arguments` (a tuple of `Serialize` values).
    ///
    /// The message is encoded once per protocol before this returns, so `arguments` may borrow.
    /// No sender waits for a client that cannot keep up (it is closed on its own). Fails when
    /// the lifetime manager cannot send it (a backplane that is down): `?` in a hub method
    /// turns that into an error for the caller.
    pub fn send<A: EncodeArguments>(
        &self,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = Result<(), LifetimeError>> + Send + 'static {
        let invocation = Invocation::new(method, arguments);
        let prepared = PreparedMessage::new(&invocation);
        if !matches!(self.target, Target::Connection(_)) {
            self.metrics.broadcast();
        }
        self.manager.send(&self.target, &prepared)
    }
}

/// Calls client methods on exactly one connection, including calls that return a result.
#[derive(Clone)]
pub struct SingleClientProxy {
    connection_id: String,
    manager: Arc<dyn LifetimeManager>,
    metrics: Arc<HubMetrics>,
    timeout: Duration,
}

impl SingleClientProxy {
    /// The connection this proxy sends to.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// Uses `timeout` instead of the hub's client result timeout for [`invoke`](Self::invoke).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls `method` on the client without waiting for an answer (see [`ClientProxy::send`]).
    pub fn send<A: EncodeArguments>(
        &self,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = Result<(), LifetimeError>> + Send + 'static {
        let invocation = Invocation::new(method, arguments);
        let prepared = PreparedMessage::new(&invocation);
        self.manager
            .send(&Target::Connection(self.connection_id.clone()), &prepared)
    }

    /// Calls `method` on the client and waits for its result, deserialized into `R` (a *client
    /// result*). Fails with [`ClientResultError`]: the client's own error text, no handler
    /// ("Client didn't provide a result."), the connection closed, the timeout, a wrong type.
    ///
    /// Awaiting this inside a hub method does not block the connection: the server keeps reading
    /// the client's messages, including the answer, whatever the parallel-invocation limit.
    pub fn invoke<R: DeserializeOwned, A: EncodeArguments>(
        &self,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = Result<R, ClientResultError>> + Send + 'static {
        let answer =
            self.manager
                .invoke_client(&self.connection_id, method, &arguments, self.timeout);
        let metrics = self.metrics.clone();
        async move {
            let raw = answer.await.inspect_err(|error| {
                if matches!(error, ClientResultError::TimedOut(_)) {
                    metrics.client_result_timed_out();
                }
            })?;
            raw.deserialize::<R>()
                .map_err(|error| ClientResultError::WrongType(error.to_string()))
        }
    }
}

/// Adds connections to groups, removes them, and tells who is where.
#[derive(Clone)]
pub struct Groups {
    manager: Arc<dyn LifetimeManager>,
}

impl Groups {
    pub(crate) fn new(manager: Arc<dyn LifetimeManager>) -> Self {
        Groups { manager }
    }

    /// Adds a connection to a group; completes when the server that owns the connection has
    /// done it (a connection id that is not connected is ignored).
    pub fn add(
        &self,
        connection_id: &str,
        group: &str,
    ) -> impl Future<Output = Result<(), LifetimeError>> + Send + 'static {
        self.manager.add_to_group(connection_id, group)
    }

    /// Removes a connection from a group; completes when its owner has done it.
    pub fn remove(
        &self,
        connection_id: &str,
        group: &str,
    ) -> impl Future<Output = Result<(), LifetimeError>> + Send + 'static {
        self.manager.remove_from_group(connection_id, group)
    }

    /// The connection ids in a group, sorted (on every server).
    pub fn members(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<String>, LifetimeError>> + Send + 'static {
        self.manager.group_members(group)
    }

    /// The groups a connection is in, sorted.
    pub fn of(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, LifetimeError>> + Send + 'static {
        self.manager.groups_of(connection_id)
    }
}
