//! Heap allocations per decode and per encode: counted with `dhat` as the global allocator, and
//! held under upper bounds so a regression fails `cargo test`.
//!
//! The operations are those of `benches/codec.rs` (the same payloads, from
//! `benches/payloads/mod.rs`): decoding a framed client invocation including binding its argument,
//! encoding a completion into a reused buffer, and encoding a broadcast invocation to `Bytes`.
//! One `#[test]` only: the allocator and its counters are global to this test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../benches/payloads/mod.rs"]
mod payloads;

use std::hint::black_box;

use bytestring::ByteString;
use hub_core::protocol::{
    Completion, EncodeMessage, FrameDecoder, HubMessage, HubProtocol, Invocation, Protocol,
};
use payloads::{client_invocation, decode_call, order, Order, STRING_32};
use serde::de::DeserializeOwned;
use serde::Serialize;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations (reallocations included: each growth of a buffer counts) and bytes requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Count {
    blocks: u64,
    bytes: u64,
}

/// What `op` allocates, after one warm-up run (which may fill lazily built state); the least of
/// five runs, so an allocation by another thread of the test harness cannot make it flaky.
fn count(mut op: impl FnMut()) -> Count {
    op();
    (0..5)
        .map(|_| {
            let before = dhat::HeapStats::get();
            op();
            let after = dhat::HeapStats::get();
            Count {
                blocks: after.total_blocks - before.total_blocks,
                bytes: after.total_bytes - before.total_bytes,
            }
        })
        .min()
        .unwrap()
}

/// The counts of the three operations for one protocol and payload.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Deserializing the argument alone, from its raw bytes: the payload's own cost, the floor
    /// under `decode`.
    bind: Count,
    decode: Count,
    completion: Count,
    broadcast: Count,
}

fn measure<T>(protocol: Protocol, payload: &T) -> Row
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let input = client_invocation(protocol, payload);
    let mut decoder = FrameDecoder::new(protocol.framing(), 32 * 1024);
    assert_eq!(&decode_call::<T>(protocol, &mut decoder, &input), payload);
    let decode = count(|| {
        black_box(decode_call::<T>(protocol, &mut decoder, &input));
    });
    decoder.push(input.clone());
    let Some(HubMessage::Invocation(call)) = protocol
        .decode(decoder.next_frame().unwrap().unwrap())
        .unwrap()
    else {
        panic!("not an invocation")
    };
    let argument = call.arguments.get(0).unwrap();
    let bind = count(|| {
        black_box(argument.deserialize::<T>().unwrap());
    });

    // A buffer that already has room: what a connection's write buffer is after its first frame.
    let mut buffer = Vec::with_capacity(4096);
    let invocation_id = ByteString::from_static("42");
    let completion = count(|| {
        buffer.clear();
        let reply = Completion::result(invocation_id.clone(), payload);
        protocol
            .encode(reply.as_message_ref(), &mut buffer)
            .unwrap();
        black_box(&buffer);
    });

    let target = ByteString::from_static("Recv");
    let broadcast = count(|| {
        let message = Invocation::new(target.clone(), (payload,));
        black_box(protocol.encode_to_bytes(&message).unwrap());
    });

    Row {
        bind,
        decode,
        completion,
        broadcast,
    }
}

/// Upper bounds on allocations per operation (see `JSON_BOUNDS` for the reasoning).
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Decode's allocations beyond `bind`'s: what splitting and decoding the message cost.
    decode_overhead: u64,
    /// Encoding a completion into a buffer that has room.
    completion: u64,
    /// Encoding a broadcast invocation to `Bytes`.
    broadcast: u64,
}

/// JSON, for `[string32, object1k]`.
///
/// - Decode: binding the argument costs what serde needs for the payload (1 `String`; for the
///   `Order` its 14 `String`s, 5 tag `String`s and 2 `Vec`s, which grow from 4 to 8 elements: 23),
///   and is not this crate's to bound. Decoding adds 1 allocation: the message's argument list
///   (a `Vec` of capacity 4). The frame, target and id are slices of the received buffer. For the
///   `Order` add 1 (8 bytes): `serde_json` keeps the brackets enclosing the current one on a
///   scratch stack while it skips a raw argument with nested objects or arrays, and each decode has
///   a new deserializer. Bound: exactly that, so any added copy fails.
/// - Completion into a buffer with room: nothing at all, whatever the payload. Bound: 0.
/// - Broadcast: `encode_to_bytes` writes into a per-thread scratch buffer that keeps its capacity,
///   then copies the frame out into one exactly sized allocation. Bound: 1, whatever the payload.
const JSON_BOUNDS: [Bounds; 2] = [
    Bounds {
        decode_overhead: 1,
        completion: 0,
        broadcast: 1,
    },
    Bounds {
        decode_overhead: 2,
        completion: 0,
        broadcast: 1,
    },
];

/// MessagePack, for `[string32, object1k]`.
///
/// - Decode: binding costs 1 for the string, 21 for the `Order` (MessagePack arrays carry their
///   length, so its `Vec`s are allocated once at full size). Decoding adds exactly 1: the argument
///   list, allocated at its exact length. No scratch stack: the codec skips values with a counter.
///   Bound: 1.
/// - Completion into a buffer with room: 0. Bound: 0.
/// - Broadcast: as for JSON, one exactly sized copy out of the scratch buffer. Bound: 1.
const MSGPACK_BOUNDS: [Bounds; 2] = [
    Bounds {
        decode_overhead: 1,
        completion: 0,
        broadcast: 1,
    },
    Bounds {
        decode_overhead: 1,
        completion: 0,
        broadcast: 1,
    },
];

#[test]
#[allow(clippy::print_stderr)]
fn allocations_per_operation() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let string = STRING_32.to_owned();
    let order: Order = order();

    let columns = ["bind", "decode", "completion", "broadcast"];
    eprintln!(
        "allocations (bytes requested) per operation\n{:<12} {:<9} {:>13} {:>13} {:>13} {:>13}",
        "protocol", "payload", columns[0], columns[1], columns[2], columns[3]
    );
    let mut failures = Vec::new();
    for protocol in Protocol::ALL {
        let bounds = match protocol {
            Protocol::Json => JSON_BOUNDS,
            Protocol::MessagePack => MSGPACK_BOUNDS,
        };
        let rows = [
            ("string32", measure(protocol, &string)),
            ("object1k", measure(protocol, &order)),
        ];
        for ((payload, row), bounds) in rows.into_iter().zip(bounds) {
            let cell = |c: Count| format!("{} ({} B)", c.blocks, c.bytes);
            eprintln!(
                "{:<12} {:<9} {:>13} {:>13} {:>13} {:>13}",
                protocol.name(),
                payload,
                cell(row.bind),
                cell(row.decode),
                cell(row.completion),
                cell(row.broadcast)
            );
            let name = format!("{} {payload}", protocol.name());
            let overhead = row.decode.blocks.saturating_sub(row.bind.blocks);
            for (what, measured, bound) in [
                ("decode beyond bind", overhead, bounds.decode_overhead),
                ("completion", row.completion.blocks, bounds.completion),
                ("broadcast", row.broadcast.blocks, bounds.broadcast),
            ] {
                if measured > bound {
                    failures.push(format!(
                        "{name} {what}: {measured} allocations, at most {bound} expected"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
