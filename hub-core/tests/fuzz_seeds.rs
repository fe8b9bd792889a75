//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/*`) through the fuzz targets' checks
//! (`fuzz/checks.rs`), so the invariants the fuzzers check run on every `cargo test`, on stable.
//!
//! Seeds named `bad_*` must be rejected by every parser their target tries; every other seed must
//! be accepted by at least one (a decoded message, a parsed handshake or negotiate exchange), so a
//! seed cannot silently stop exercising what it was written for.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

type Check = fn(&[u8]) -> usize;

/// Replays every seed of `target`; returns the names of the seeds whose outcome was not the one
/// their name promises.
fn replay(target: &str, check: Check) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    let mut wrong = Vec::new();
    for seed in seeds {
        let name = seed.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&seed).unwrap();
        // The check panics, naming the seed through the panic hook's output, if an invariant breaks.
        let accepted = check(&data);
        if name.starts_with("bad_") != (accepted == 0) {
            wrong.push(format!("{target}/{name} (accepted {accepted})"));
        }
    }
    wrong
}

#[test]
fn json_decode_seeds() {
    assert_eq!(
        replay("json_decode", checks::json_decode),
        Vec::<String>::new()
    );
}

#[test]
fn msgpack_decode_seeds() {
    assert_eq!(
        replay("msgpack_decode", checks::msgpack_decode),
        Vec::<String>::new()
    );
}

#[test]
fn handshake_seeds() {
    assert_eq!(replay("handshake", checks::handshake), Vec::<String>::new());
}

#[test]
fn negotiate_seeds() {
    assert_eq!(replay("negotiate", checks::negotiate), Vec::<String>::new());
}

#[test]
fn connection_token_seeds() {
    assert_eq!(
        replay("connection_token", checks::connection_token),
        Vec::<String>::new()
    );
}

#[test]
fn traceparent_seeds() {
    assert_eq!(
        replay("traceparent", checks::traceparent),
        Vec::<String>::new()
    );
}
