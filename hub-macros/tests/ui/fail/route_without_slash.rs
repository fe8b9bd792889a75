// Rule: A route is a path starting with `/`.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub(route = "chat")]
pub trait Chat {
    async fn send(&self, text: String);
}

fn main() {}
