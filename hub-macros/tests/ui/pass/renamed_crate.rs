// Rule: `crate = path` makes generated code reach the runtime through that path.

use hub_server as hubs;

#[hubs::hub_client(crate = hubs)]
pub trait Pinger {
    async fn pong(&self, n: u32);
}

#[hubs::hub(crate = hubs, client = Pinger)]
pub trait Ping {
    async fn ping(&self, cx: hubs::Context<PingerProxy>, n: u32) -> u32;
}

struct Server;

impl Ping for Server {
    async fn ping(&self, cx: hubs::Context<PingerProxy>, n: u32) -> u32 {
        cx.clients().caller().pong(n).await;
        n
    }
}

fn main() {
    let _server = ServePing::new(Server);
    assert_eq!(ServePing::<Server>::METADATA.methods[0].wire_name, "Ping");
}
