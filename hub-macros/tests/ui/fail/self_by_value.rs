// Rule: A hub method takes `&self`: the hub is shared by every connection.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(self, text: String);
}

fn main() {}
