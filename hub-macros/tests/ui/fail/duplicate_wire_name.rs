// Rule: Two methods cannot share a wire name, including through `#[hub(name)]`.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send(&self, text: String);
    #[hub(name = "Send")]
    async fn send_again(&self, text: String);
}

fn main() {}
