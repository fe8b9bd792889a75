// Rule: Wire names are compared ignoring case, as the server looks them up.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    async fn send_message(&self, text: String);
    async fn sendmessage(&self, text: String);
}

fn main() {}
