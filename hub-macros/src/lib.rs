//! Procedural macros for SignalR-style hubs.
//!
//! The `#[hub]` attribute arrives with the hub runtime (see the project's issue list); until then this
//! crate only reserves the name and builds with the workspace.
