// Rule: A parameter is sent by the client (`Deserialize`), an upload, or a context type.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

pub struct Database;

#[hub]
pub trait Chat {
    async fn send(&self, db: Database);
}

fn main() {}
