//! Who to send to: `clients.all()`, `.group("g")`, `.user(id)`, … and group management.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hub_core::hub::HubError;
use hub_core::protocol::{EncodeArguments, Invocation};
use serde::de::DeserializeOwned;

use crate::lifetime::{LifetimeManager, PreparedMessage, Target};

/// Picks the connections a message goes to. Cheap to clone.
#[derive(Clone)]
pub struct Clients {
    manager: Arc<dyn LifetimeManager>,
    client_result_timeout: Duration,
}

impl Clients {
    pub(crate) fn new(manager: Arc<dyn LifetimeManager>, client_result_timeout: Duration) -> Self {
        Clients {
            manager,
            client_result_timeout,
        }
    }

    fn proxy(&self, target: Target) -> ClientProxy {
        ClientProxy {
            manager: self.manager.clone(),
            target,
        }
    }

    /// Every connection of the hub.
    pub fn all(&self) -> ClientProxy {
        self.proxy(Target::All)
    }

    /// Every connection but these.
    pub fn all_except<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        connection_ids: I,
    ) -> ClientProxy {
        self.proxy(Target::AllExcept(
            connection_ids.into_iter().map(Into::into).collect(),
        ))
    }

    /// One connection; it can also answer calls ([`SingleClientProxy::invoke`]).
    pub fn client(&self, connection_id: impl Into<String>) -> SingleClientProxy {
        SingleClientProxy {
            connection_id: connection_id.into(),
            manager: self.manager.clone(),
            timeout: self.client_result_timeout,
        }
    }

    /// Several connections.
    pub fn clients<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        connection_ids: I,
    ) -> ClientProxy {
        self.proxy(Target::Connections(
            connection_ids.into_iter().map(Into::into).collect(),
        ))
    }

    /// The members of a group.
    pub fn group(&self, group: impl Into<String>) -> ClientProxy {
        self.proxy(Target::Group(group.into()))
    }

    /// The members of any of these groups, each once.
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(&self, groups: I) -> ClientProxy {
        self.proxy(Target::Groups(groups.into_iter().map(Into::into).collect()))
    }

    /// The members of a group but these connections.
    pub fn group_except<I: IntoIterator<Item = S>, S: Into<String>>(
        &self,
        group: impl Into<String>,
        connection_ids: I,
    ) -> ClientProxy {
        self.proxy(Target::GroupExcept(
            group.into(),
            connection_ids.into_iter().map(Into::into).collect(),
        ))
    }

    /// Every connection of a user.
    pub fn user(&self, user_id: impl Into<String>) -> ClientProxy {
        self.proxy(Target::User(user_id.into()))
    }

    /// Every connection of any of these users.
    pub fn users<I: IntoIterator<Item = S>, S: Into<String>>(&self, user_ids: I) -> ClientProxy {
        self.proxy(Target::Users(
            user_ids.into_iter().map(Into::into).collect(),
        ))
    }
}

/// [`Clients`] seen from inside a hub method, which also knows the caller.
#[derive(Clone)]
pub struct CallerClients {
    clients: Clients,
    caller: Arc<str>,
}

impl CallerClients {
    pub(crate) fn new(clients: Clients, caller: Arc<str>) -> Self {
        CallerClients { clients, caller }
    }

    /// The connection that made the call; it can also answer calls
    /// ([`SingleClientProxy::invoke`]).
    pub fn caller(&self) -> SingleClientProxy {
        self.clients.client(&*self.caller)
    }

    /// Every connection but the caller.
    pub fn others(&self) -> ClientProxy {
        self.clients.all_except([&*self.caller])
    }

    /// The members of a group but the caller.
    pub fn others_in_group(&self, group: impl Into<String>) -> ClientProxy {
        self.clients.group_except(group, [&*self.caller])
    }
}

impl std::ops::Deref for CallerClients {
    type Target = Clients;
    fn deref(&self) -> &Clients {
        &self.clients
    }
}

/// Sends client method calls to one target.
#[derive(Clone)]
pub struct ClientProxy {
    manager: Arc<dyn LifetimeManager>,
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
    /// Queuing never waits for a slow client: one that cannot keep up is closed instead.
    pub fn send<A: EncodeArguments>(
        &self,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = ()> + Send + 'static {
        let invocation = Invocation::new(method, arguments);
        let prepared = PreparedMessage::new(&invocation);
        self.manager.send(&self.target, &prepared)
    }
}

/// Calls client methods on exactly one connection, including calls that return a result.
#[derive(Clone)]
pub struct SingleClientProxy {
    connection_id: String,
    manager: Arc<dyn LifetimeManager>,
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
    ) -> impl Future<Output = ()> + Send + 'static {
        let invocation = Invocation::new(method, arguments);
        let prepared = PreparedMessage::new(&invocation);
        self.manager
            .send(&Target::Connection(self.connection_id.clone()), &prepared)
    }

    /// Calls `method` on the client and waits for its result, deserialized into `R` (a *client
    /// result*). Fails with the client's error text, when the client has no handler ("Client
    /// didn't provide a result."), when the connection closes, or after the timeout.
    ///
    /// Awaiting this inside a hub method does not block the connection: the server keeps reading
    /// the client's messages, including the answer, whatever the parallel-invocation limit.
    pub fn invoke<R: DeserializeOwned, A: EncodeArguments>(
        &self,
        method: &str,
        arguments: A,
    ) -> impl Future<Output = Result<R, HubError>> + Send + 'static {
        let answer =
            self.manager
                .invoke_client(&self.connection_id, method, &arguments, self.timeout);
        async move {
            let raw = answer.await?;
            raw.deserialize::<R>().map_err(|error| {
                HubError::new(format!("The client's result has the wrong type: {error}"))
            })
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

    /// Adds a connection to a group.
    pub fn add(
        &self,
        connection_id: &str,
        group: &str,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.manager.add_to_group(connection_id, group)
    }

    /// Removes a connection from a group.
    pub fn remove(
        &self,
        connection_id: &str,
        group: &str,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.manager.remove_from_group(connection_id, group)
    }

    /// The connection ids in a group, sorted.
    pub fn members(&self, group: &str) -> impl Future<Output = Vec<String>> + Send + 'static {
        self.manager.group_members(group)
    }

    /// The groups a connection is in, sorted.
    pub fn of(&self, connection_id: &str) -> impl Future<Output = Vec<String>> + Send + 'static {
        self.manager.groups_of(connection_id)
    }
}
