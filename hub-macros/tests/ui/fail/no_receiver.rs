// Rule: A hub method has a `&self` receiver.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(text: String);
}

fn main() {}
