// Rule: A client callback has one signature: pushing one name with two arities (as some test hubs
// do) is done untyped, and the error says how.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub_client]
pub trait ChatClient {
    async fn receive_message(&self, user: String, text: String);
    #[hub(name = "ReceiveMessage")]
    async fn receive_system_message(&self, text: String);
}

fn main() {}
