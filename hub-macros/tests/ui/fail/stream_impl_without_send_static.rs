// Rule: A server stream runs on its own task after the method returns, so the implementation's
// `impl Stream` must be `Send + 'static` too; the message says to write it.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, Stream};

#[hub]
pub trait Ticks {
    async fn ticks(&self, count: u32) -> impl Stream<Item = u32>;
}

struct Server;

impl Ticks for Server {
    async fn ticks(&self, count: u32) -> impl Stream<Item = u32> {
        futures_util::stream::iter(0..count)
    }
}

fn main() {}
