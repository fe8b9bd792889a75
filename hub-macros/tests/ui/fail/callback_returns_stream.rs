// Rule: A callback returns nothing or the owned type the client answers with.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub_client]
pub trait ChatClient {
    async fn numbers(&self) -> impl Iterator<Item = u32>;
}

fn main() {}
