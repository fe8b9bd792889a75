//! Fuzz target `traceparent`: the checks live in `../checks.rs`, shared with
//! `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::traceparent(data);
});
