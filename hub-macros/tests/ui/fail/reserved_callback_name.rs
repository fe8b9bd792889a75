// Rule: The generated proxy's own methods cannot be callback names.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub_client]
pub trait ChatClient {
    async fn untyped(&self, text: String);
}

fn main() {}
