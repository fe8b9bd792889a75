// Rule: Every type crossing the wire has a TypeScript type (`#[derive(ts_rs::TS)]`).
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[derive(serde::Deserialize)]
pub struct Message {
    pub text: String,
}

#[hub]
pub trait Chat {
    async fn send(&self, message: Message);
}

fn main() {}
