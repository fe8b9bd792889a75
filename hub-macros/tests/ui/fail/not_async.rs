// Rule: A hub method must be an `async fn`.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    fn send(&self, text: String);
}

fn main() {}
