// Rule: `on_disconnected` ends with `error: Option<String>`; hooks return nothing (or `Result<(), E>` on connect).
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub trait Chat {
    #[hub(on_disconnected)]
    async fn gone(&self);
    #[hub(on_connected)]
    async fn hello(&self, cx: Context) -> String;
}

fn main() {}
