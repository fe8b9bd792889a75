// Rule: A callback with a result (a client result) exists only on single-connection proxies.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub_client]
pub trait ChatClient {
    async fn confirm(&self, question: String) -> bool;
}

async fn ask_everyone(cx: Context<ChatClientProxy>) {
    let _ = cx.clients().all().confirm("sure?").await;
}

async fn ask_caller(cx: Context<ChatClientProxy>) {
    let _ = cx.clients().caller().confirm("sure?").await;
}

fn main() {}
