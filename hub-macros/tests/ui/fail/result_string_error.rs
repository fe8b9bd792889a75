// Rule: A method's error type converts into `HubError` (the text a client sees); a `String` error
// does not, and the message says how to send one.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, HubError};

#[hub]
pub trait Chat {
    async fn join(&self, room: String) -> Result<u32, String>;
}

struct Server;

impl Chat for Server {
    async fn join(&self, room: String) -> Result<u32, String> {
        Err(format!("no room {room}"))
    }
}

fn main() {}
