//! hub-core stays sans-IO: no async runtime, HTTP or WebSocket crate in its dependency tree
//! (`futures-core`, which only defines the `Stream` trait, is allowed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

#[test]
fn no_runtime_http_or_websocket_crates_in_the_dependency_tree() {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "-p", "hub-core", "-e", "normal", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(tree.contains("serde_json"), "the tree was read: {tree}");
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        for forbidden in [
            "tokio",
            "hyper",
            "tungstenite",
            "async-std",
            "mio",
            "futures-io",
            "futures-util",
            "futures-executor",
        ] {
            assert!(
                !name.starts_with(forbidden),
                "hub-core must stay sans-IO, but depends on {name}"
            );
        }
    }
}
