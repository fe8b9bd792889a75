// Rule: `#[hub]` goes on a trait.
#![allow(unused_imports, dead_code)]

use hub_server::{hub, hub_client, Context};

#[hub]
pub struct Chat;

fn main() {}
