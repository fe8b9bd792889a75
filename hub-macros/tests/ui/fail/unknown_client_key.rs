// Rule: `#[hub_client]` takes only `crate`.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub_client(route = "/chat")]
pub trait ChatClient {
    async fn receive(&self, text: String);
}

fn main() {}
