// Rule: A hub method takes `&self`, not `&mut self`: calls run concurrently.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(&mut self, text: String);
}

fn main() {}
