// Rule: `#[authorize]` takes `role`, `claim` (with `value`) or `policy`; it decides who may call
// hub methods and connect, so it does not go on hooks or client callbacks, and
// `#[allow_anonymous]` opens one method (not a trait, not together with `#[authorize]`).
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub_client]
pub trait Client {
    #[authorize]
    async fn told(&self, text: String);
}

#[hub]
#[allow_anonymous]
pub trait Admin {
    #[authorize(roles = "admin")]
    async fn unknown_key(&self);
    #[authorize(value = "write")]
    async fn value_without_claim(&self);
    #[authorize(role = ", ")]
    async fn no_role(&self);
    #[authorize]
    #[allow_anonymous]
    async fn both(&self);
    #[authorize(policy = "")]
    async fn empty_policy(&self);
    #[authorize]
    #[hub(on_connected)]
    async fn connected(&self, cx: Context) -> Result<(), hub_server::HubError>;
}

fn main() {}
