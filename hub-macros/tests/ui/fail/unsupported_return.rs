// Rule: A method returns a value, `Result<T, E>` or `impl Stream<Item = T>`; nothing else.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn numbers(&self) -> impl Iterator<Item = u32>;
    async fn borrowed(&self) -> &'static str;
}

fn main() {}
