// Rule: Unknown keys in `#[hub(...)]` are errors that list the valid ones.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub(path = "/chat")]
pub trait Chat {
    async fn send(&self, text: String);
}

fn main() {}
