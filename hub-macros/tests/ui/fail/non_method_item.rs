// Rule: A hub trait holds only methods.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    const LIMIT: usize;
    async fn send(&self, text: String);
}

fn main() {}
