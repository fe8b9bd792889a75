// Rule: Parameters are owned: their values arrive in a message.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(&self, text: &str);
}

fn main() {}
