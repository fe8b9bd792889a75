// Rule: A hub method cannot be generic: values on the wire have one concrete type.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send<T: serde::de::DeserializeOwned>(&self, value: T);
}

fn main() {}
