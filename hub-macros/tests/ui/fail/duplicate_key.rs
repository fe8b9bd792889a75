// Rule: A key is given once.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub(route = "/a", route = "/b")]
pub trait Chat {
    async fn send(&self, text: String);
}

fn main() {}
