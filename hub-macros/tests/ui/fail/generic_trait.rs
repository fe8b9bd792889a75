// Rule: A hub trait cannot be generic.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat<T> {
    async fn send(&self, text: String);
}

fn main() {}
