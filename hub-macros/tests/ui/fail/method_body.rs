// Rule: Hub methods are declared in the trait and implemented in an `impl`.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(&self, text: String) {
        let _ = text;
    }
}

fn main() {}
