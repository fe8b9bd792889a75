//! When a connection is registered with the lifetime manager: before its handshake is answered,
//! so a client whose `start()` resolved is counted and reached by sends to all, even through a
//! manager that registers slowly (as a backplane does, with a round trip to Redis).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use hub_server::core::hub::BoxFuture;
use hub_server::protocol::{CompletionOutcome, EncodeArguments, RawValue};
use hub_server::testing::TestHub;
use hub_server::{
    ClientResultError, ConnectionHandle, Context, HubBinding, HubConfig, HubMethods, LifetimeError,
    LifetimeManager, LocalLifetimeManager, PreparedMessage, Target,
};

/// The local manager, with registration that takes a while.
struct SlowRegistration(Arc<LocalLifetimeManager>);

impl LifetimeManager for SlowRegistration {
    fn bind(&self, binding: &HubBinding) {
        self.0.bind(binding);
    }

    fn add_connection(&self, connection: ConnectionHandle) -> BoxFuture<Result<(), LifetimeError>> {
        let local = self.0.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            local.add_connection(connection).await
        })
    }

    fn remove_connection(&self, connection_id: &str) -> BoxFuture<Result<(), LifetimeError>> {
        self.0.remove_connection(connection_id)
    }

    fn connection(&self, connection_id: &str) -> Option<ConnectionHandle> {
        self.0.connection(connection_id)
    }

    fn send(
        &self,
        target: &Target,
        message: &PreparedMessage<'_>,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.0.send(target, message)
    }

    fn invoke_client(
        &self,
        connection_id: &str,
        method: &str,
        arguments: &dyn EncodeArguments,
        timeout: Duration,
    ) -> BoxFuture<Result<RawValue, ClientResultError>> {
        self.0
            .invoke_client(connection_id, method, arguments, timeout)
    }

    fn complete_client_result(
        &self,
        connection_id: &str,
        invocation_id: &str,
        outcome: CompletionOutcome,
    ) -> bool {
        self.0
            .complete_client_result(connection_id, invocation_id, outcome)
    }

    fn add_to_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.0.add_to_group(connection_id, group)
    }

    fn remove_from_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> BoxFuture<Result<(), LifetimeError>> {
        self.0.remove_from_group(connection_id, group)
    }

    fn group_members(&self, group: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.0.group_members(group)
    }

    fn groups_of(&self, connection_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.0.groups_of(connection_id)
    }

    fn user_connections(&self, user_id: &str) -> BoxFuture<Result<Vec<String>, LifetimeError>> {
        self.0.user_connections(user_id)
    }

    fn connection_count(&self) -> BoxFuture<Result<usize, LifetimeError>> {
        self.0.connection_count()
    }

    fn abort(&self, target: &Target) -> BoxFuture<Result<usize, LifetimeError>> {
        self.0.abort(target)
    }

    fn local_connections(&self) -> Vec<ConnectionHandle> {
        self.0.local_connections()
    }
}

#[tokio::test]
async fn a_connected_client_is_registered_and_reached_by_a_send_to_all() {
    let hub = TestHub::with_manager(
        HubMethods::<Context>::new(),
        HubConfig::default(),
        SlowRegistration(Arc::new(LocalLifetimeManager::new())),
    );
    let mut client = hub.connect().await.unwrap();

    let context = hub.context();
    assert_eq!(context.connection_count().await.unwrap(), 1);
    context
        .clients()
        .all()
        .send("Hello", ("everyone",))
        .await
        .unwrap();
    let callback = client.next_callback().await.unwrap();
    assert_eq!(callback.target, "Hello");
    client.close().await;
}
