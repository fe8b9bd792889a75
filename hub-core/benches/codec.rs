//! Codec micro-benchmarks: what the server does per call and per broadcast, for both protocols and
//! two payloads (a 32-byte string and a ~1 KiB object of ~20 fields).
//!
//! - `decode_invocation/<protocol>/<payload>`: split a framed client invocation off the stream,
//!   decode it and deserialize its argument into the typed struct.
//! - `encode_completion/<protocol>/<payload>`: encode the reply into a reused buffer.
//! - `encode_broadcast/<protocol>/<payload>`: encode one invocation of a client method to `Bytes`.
//!
//! Run with `cargo bench -p hub-core --bench codec`; allocation counts of the same operations are
//! asserted by `tests/allocations.rs`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytestring::ByteString;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hub_core::protocol::{
    Completion, EncodeMessage, FrameDecoder, HubProtocol, Invocation, Protocol,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

mod payloads;
use payloads::{client_invocation, decode_call, order, STRING_32};

fn bench_payload<T>(c: &mut Criterion, name: &str, payload: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for protocol in Protocol::ALL {
        let id = BenchmarkId::new(protocol.name(), name);

        let input = client_invocation(protocol, payload);
        let mut decoder = FrameDecoder::new(protocol.framing(), 32 * 1024);
        assert_eq!(&decode_call::<T>(protocol, &mut decoder, &input), payload);
        let mut group = c.benchmark_group("decode_invocation");
        group.throughput(Throughput::Elements(1));
        group.bench_function(id.clone(), |b| {
            b.iter(|| black_box(decode_call::<T>(protocol, &mut decoder, black_box(&input))))
        });
        group.finish();

        // The invocation id comes from the decoded call: a shared `ByteString`, cloned cheaply.
        let invocation_id = ByteString::from_static("42");
        let mut buffer = Vec::with_capacity(4096);
        let mut group = c.benchmark_group("encode_completion");
        group.throughput(Throughput::Elements(1));
        group.bench_function(id.clone(), |b| {
            b.iter(|| {
                buffer.clear();
                let reply = Completion::result(invocation_id.clone(), black_box(payload));
                protocol
                    .encode(reply.as_message_ref(), &mut buffer)
                    .unwrap();
                black_box(&buffer);
            })
        });
        group.finish();

        let target = ByteString::from_static("Recv");
        let mut group = c.benchmark_group("encode_broadcast");
        group.throughput(Throughput::Elements(1));
        group.bench_function(id, |b| {
            b.iter(|| {
                let message = Invocation::new(target.clone(), (black_box(payload),));
                black_box(protocol.encode_to_bytes(&message).unwrap())
            })
        });
        group.finish();
    }
}

fn codec(c: &mut Criterion) {
    bench_payload(c, "string32", &STRING_32.to_owned());
    bench_payload(c, "object1k", &order());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = codec
}
criterion_main!(benches);
