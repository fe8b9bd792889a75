// Rule: A parameter is a plain name, never a pattern.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(&self, (a, b): (i32, i32));
}

fn main() {}
