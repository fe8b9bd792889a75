// Rule: Unknown keys in a method's `#[hub(...)]` are errors that list the valid ones.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    #[hub(rename = "Post")]
    async fn send(&self, text: String);
}

fn main() {}
