//! Connection hooks that talk to their own client: what the on-connected hook sends reaches the
//! client while the hook still runs (the connection's task writes while it waits for the hook).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::*;
use hub_server::protocol::{HubMessage, Protocol};
use hub_server::{hub, hub_client, Context, HubError, HubServer};
use tokio::sync::Notify;

/// What the server calls on clients.
#[hub_client]
pub trait GateClient {
    /// Tells the connecting client something.
    async fn notice(&self, text: String);
}

/// A hub whose on-connected hook tells its client something, then waits to be let go.
#[hub(route = "/gate", client = GateClient)]
pub trait Gate {
    /// Answers once the hook is done.
    async fn ready(&self) -> bool;
    /// Tells the client, then waits for the test.
    #[hub(on_connected)]
    async fn connected(&self, cx: Context<GateClientProxy>) -> Result<(), HubError>;
}

#[derive(Default)]
struct GateHub {
    /// Lets the hook go on.
    go: Notify,
}

impl Gate for GateHub {
    async fn ready(&self) -> bool {
        true
    }

    async fn connected(&self, cx: Context<GateClientProxy>) -> Result<(), HubError> {
        cx.clients()
            .caller()
            .notice("welcome".to_owned())
            .await
            .map_err(|error| HubError::new(error.to_string()))?;
        self.go.notified().await;
        Ok(())
    }
}

/// The hook's message arrives while the hook waits for this test; once let go, the connection
/// answers calls.
async fn the_hooks_message_arrives_while_it_runs(hub: &GateHub, mut client: WsClient) {
    let received = client.recv_skip_pings().await;
    assert_eq!(
        invocation_args::<(String,)>(&received, "Notice"),
        ("welcome".to_owned(),)
    );
    hub.go.notify_one();
    client.invoke("1", "Ready", ()).await;
    loop {
        // A stateful-reconnect server also sends Acks.
        let received = client.recv_skip_pings().await;
        match &received.message {
            HubMessage::Ack(_) => continue,
            HubMessage::Completion(completion) => {
                assert_eq!(&*completion.invocation_id, "1");
                assert!(result::<bool>(completion));
                break;
            }
            other => panic!("expected the Completion, got {other:?}"),
        }
    }
}

async fn start() -> (TestServer, Arc<GateHub>) {
    let hub = Arc::new(GateHub::default());
    let server =
        TestServer::start_with(HubServer::builder().hub(PATH, ServeGate::from_arc(hub.clone())))
            .await;
    (server, hub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_on_connected_hook_sends_arrives_while_the_hook_runs() {
    let (server, hub) = start().await;
    let client = server.json_client().await;
    the_hooks_message_arrives_while_it_runs(&hub, client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stateful_reconnect_too() {
    let (server, hub) = start().await;
    let token = negotiate_stateful_token(server.addr, PATH).await;
    let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    client.handshake_version(Protocol::Json, 2).await;
    the_hooks_message_arrives_while_it_runs(&hub, client).await;
}
