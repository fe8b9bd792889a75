// Rule: The implementation's `impl Stream` needs the `Send + 'static` the trait declares; the
// error points at the implementation's type and at the trait's `'static`.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, Stream};

#[hub]
pub trait Ticks {
    async fn ticks(&self, count: u32) -> impl Stream<Item = u32> + Send + 'static;
}

struct Server;

impl Ticks for Server {
    async fn ticks(&self, count: u32) -> impl Stream<Item = u32> {
        futures_util::stream::iter(0..count)
    }
}

fn main() {}
