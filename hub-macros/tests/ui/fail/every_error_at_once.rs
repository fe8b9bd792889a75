// Rule: Every recoverable error is reported at once, and the trait is still emitted (no cascade in impls).
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    fn send(&self, text: String);
    async fn post(self, (a, b): (i32, i32));
}

struct Mine;

impl Chat for Mine {
    fn send(&self, _text: String) {}
    async fn post(self, (_a, _b): (i32, i32)) {}
}

fn main() {}
