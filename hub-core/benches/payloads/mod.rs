//! The payloads and the client invocation shared by `benches/codec.rs` and
//! `tests/allocations.rs` (included by path), so both measure exactly the same operations.

#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use hub_core::protocol::{FrameDecoder, HubMessage, HubProtocol, Protocol};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Address {
    pub(crate) street: String,
    pub(crate) city: String,
    pub(crate) postcode: String,
    pub(crate) country: String,
}

/// A ~1 KiB object of 21 fields: strings, numbers, bools, a nested struct and small vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: u64,
    pub(crate) customer: String,
    pub(crate) email: String,
    pub(crate) status: String,
    pub(crate) currency: String,
    pub(crate) note: String,
    pub(crate) created_at: String,
    pub(crate) quantity: u32,
    pub(crate) unit_price: f64,
    pub(crate) discount: f64,
    pub(crate) total: f64,
    pub(crate) tax_rate: f64,
    pub(crate) weight_kg: f32,
    pub(crate) priority: i32,
    pub(crate) paid: bool,
    pub(crate) shipped: bool,
    pub(crate) gift: bool,
    pub(crate) shipping: Address,
    pub(crate) billing: Address,
    pub(crate) tags: Vec<String>,
    pub(crate) line_items: Vec<u32>,
}

pub(crate) fn order() -> Order {
    let address = |street: &str| Address {
        street: street.to_owned(),
        city: "Springfield Heights".to_owned(),
        postcode: "SW1A 1AA".to_owned(),
        country: "United Kingdom".to_owned(),
    };
    Order {
        id: 9_007_199_254_740_991,
        customer: "Ada Lovelace-Byron of the Analytical Engine Society".to_owned(),
        email: "ada.lovelace@analytical-engine.example.org".to_owned(),
        status: "awaiting-fulfilment".to_owned(),
        currency: "GBP".to_owned(),
        note:
            "Please leave the parcel with the neighbour at number 42 if nobody answers the door; \
               the side gate is usually unlocked during the day. Fragile: contains glass bottles, \
               handle with care and keep this side up. Call ahead on arrival, thank you!"
                .to_owned(),
        created_at: "2025-11-21T23:59:59.123456Z".to_owned(),
        quantity: 12,
        unit_price: 19.99,
        discount: 0.15,
        total: 203.898,
        tax_rate: 0.2,
        weight_kg: 7.25,
        priority: -3,
        paid: true,
        shipped: false,
        gift: true,
        shipping: address("221B Baker Street, Flat 3, Marylebone Business District"),
        billing: address("10 Downing Street, Westminster Government Quarter, Floor 2"),
        tags: [
            "express",
            "fragile",
            "gift-wrap",
            "loyalty-gold",
            "priority-handling",
        ]
        .map(str::to_owned)
        .to_vec(),
        line_items: vec![1001, 1002, 1003, 2001, 2002, 3001, 3002, 3003],
    }
}

pub(crate) const STRING_32: &str = "The quick brown fox jumps over 1";

/// The framed invocation a client sends to call `Send(payload)` with id "0": JSON as the JS
/// client writes it (`type` last), MessagePack as a 5-element array. Built by hand, not by the
/// codec under test.
pub(crate) fn client_invocation<T: Serialize>(protocol: Protocol, payload: &T) -> Bytes {
    match protocol {
        Protocol::Json => {
            let argument = serde_json::to_string(payload).unwrap();
            Bytes::from(format!(
                "{{\"arguments\":[{argument}],\"invocationId\":\"0\",\"target\":\"Send\",\"type\":1}}\u{1e}"
            ))
        }
        Protocol::MessagePack => {
            // [1, {}, "0", "Send", [payload]]
            let mut body = vec![
                0x95, 0x01, 0x80, 0xa1, b'0', 0xa4, b'S', b'e', b'n', b'd', 0x91,
            ];
            body.extend(rmp_serde::to_vec_named(payload).unwrap());
            let mut framed = Vec::new();
            let mut length = body.len();
            loop {
                let byte = (length & 0x7f) as u8;
                length >>= 7;
                if length == 0 {
                    framed.push(byte);
                    break;
                }
                framed.push(byte | 0x80);
            }
            framed.extend(body);
            Bytes::from(framed)
        }
    }
}

/// Split + decode + bind the argument: the server's work per incoming call.
pub(crate) fn decode_call<T: DeserializeOwned>(
    protocol: Protocol,
    decoder: &mut FrameDecoder,
    input: &Bytes,
) -> T {
    decoder.push(input.clone());
    let frame = decoder.next_frame().unwrap().unwrap();
    let Some(HubMessage::Invocation(call)) = protocol.decode(frame).unwrap() else {
        panic!("not an invocation");
    };
    call.arguments.get(0).unwrap().deserialize().unwrap()
}
