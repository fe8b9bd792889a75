//! A lifetime manager written outside hub-server, as a backplane would be: it wraps the local
//! manager, counts every call it forwards, and changes nothing else. With `LIFETIME_MANAGER=counting`
//! the conformance hub runs on it, so the real-client suites prove that the seam carries
//! everything a backplane needs (client results both ways, groups, users, introspection, abort);
//! the hub method `ManagerCalls` reports the counts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hub_server::core::hub::BoxFuture;
use hub_server::protocol::{CompletionOutcome, EncodeArguments, RawValue};
use hub_server::{
    ClientResultError, ConnectionHandle, HubBinding, LifetimeError, LifetimeManager,
    LocalLifetimeManager, PreparedMessage, Target,
};

/// How many times each `LifetimeManager` method was called, shared by the managers of all hubs.
#[derive(Debug, Default)]
pub(crate) struct CallCounts(Mutex<BTreeMap<&'static str, u64>>);

impl CallCounts {
    fn count(&self, method: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(method)
            .or_default() += 1;
    }

    /// The counts so far, by method name.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(method, count)| ((*method).to_owned(), *count))
            .collect()
    }
}

/// The local manager behind a counter: every call is counted, then forwarded.
pub(crate) struct CountingManager {
    inner: LocalLifetimeManager,
    counts: Arc<CallCounts>,
}

impl CountingManager {
    /// Wraps a new local manager, counting into `counts`.
    pub(crate) fn new(counts: Arc<CallCounts>) -> Self {
        CountingManager {
            inner: LocalLifetimeManager::new(),
            counts,
        }
    }
}

impl LifetimeManager for CountingManager {
    fn bind(&self, binding: &HubBinding) {
        self.counts.count("bind");
        self.inner.bind(binding);
    }

    fn add_connection(&self, connection: ConnectionHandle) -> BoxFuture<Result<(), LifetimeError>> {
        self.counts.count("add_connection");
        self.inner.add_connection(connection)
    }

    fn remove_connection(&self, connection_id: &str) -> BoxFuture<Result<(), LifetimeError>> {
        self.counts.count("remove_connection");
        self.inner.remove_connection(connection_id)
    }

    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle> {
        self.counts.count("connection");
        self.inner.connection(connection_id)
    }

    fn send(
        &self,
        target: &Target,
        message: &PreparedMessage<'_>,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.counts.count("send");
        self.inner.send(target, message)
    }

    fn invoke_client(
        &self,
        connection_id: &str,
        method: &str,
        arguments: &dyn EncodeArguments,
        timeout: Duration,
    ) -> BoxFuture<Result<RawValue, ClientResultError>> {
        self.counts.count("invoke_client");
        self.inner
            .invoke_client(connection_id, method, arguments, timeout)
    }

    fn complete_client_result(
        &self,
        connection_id: &str,
        invocation_id: &str,
        outcome: CompletionOutcome,
    ) -> bool {
        self.counts.count("complete_client_result");
        self.inner
            .complete_client_result(connection_id, invocation_id, outcome)
    }

    fn add_to_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.counts.count("add_to_group");
        self.inner.add_to_group(connection_id, group)
    }

    fn remove_from_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.counts.count("remove_from_group");
        self.inner.remove_from_group(connection_id, group)
    }

    fn group_members(&self, group: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.counts.count("group_members");
        self.inner.group_members(group)
    }

    fn groups_of(&self, connection_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.counts.count("groups_of");
        self.inner.groups_of(connection_id)
    }

    fn user_connections(&self, user_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.counts.count("user_connections");
        self.inner.user_connections(user_id)
    }

    fn connection_count(&self) -> BoxFuture<Result<usize, LifetimeError>> {
        self.counts.count("connection_count");
        self.inner.connection_count()
    }

    fn abort(&self, target: &Target) -> BoxFuture<Result<usize, LifetimeError>> {
        self.counts.count("abort");
        self.inner.abort(target)
    }

    fn local_connections(&self) -> Vec<ConnectionHandle> {
        self.counts.count("local_connections");
        self.inner.local_connections()
    }
}
