//! The two peers, built or installed on demand (never by a normal build or CI):
//! `peers/socketioxide` (its own Cargo workspace and lockfile) and `peers/socketio-node`
//! (its own `package-lock.json`).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::procs::Launch;

/// Builds the socketioxide peer (release, its own lockfile) and returns how to start it.
pub(crate) fn socketioxide(crate_dir: &Path) -> Result<Launch> {
    let dir = crate_dir.join("peers/socketioxide");
    let target_dir = dir.join("target");
    eprintln!("hub-bench: building the socketioxide peer (cargo build --release --locked)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .context("running cargo for the socketioxide peer")?;
    if !status.success() {
        bail!("building the socketioxide peer failed");
    }
    Ok(Launch {
        program: target_dir.join("release/socketioxide-peer"),
        args: Vec::new(),
        dir: None,
        port_env: Some("PORT"),
        redis: None,
    })
}

/// Installs the Socket.IO/Node peer's packages (`npm ci`) if needed; returns how to start it.
pub(crate) fn socketio_node(crate_dir: &Path) -> Result<Launch> {
    let dir = crate_dir.join("peers/socketio-node");
    if !dir.join("node_modules/socket.io").exists() {
        eprintln!("hub-bench: installing the Socket.IO peer (npm ci)");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .context("running npm ci for the Socket.IO peer")?;
        if !status.success() {
            bail!("npm ci for the Socket.IO peer failed");
        }
    }
    Ok(Launch {
        program: "node".into(),
        args: vec!["server.js".to_owned()],
        dir: Some(dir),
        port_env: Some("PORT"),
        redis: None,
    })
}
