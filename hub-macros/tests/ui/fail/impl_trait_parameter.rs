// Rule: A parameter names a concrete type, not `impl Trait`.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(&self, text: impl Into<String>);
}

fn main() {}
