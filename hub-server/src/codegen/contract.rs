//! A hub's contract hash: what a generated client was built from — methods (wire names,
//! parameters, results, typed errors, streaming), callbacks, and the shapes of every type they
//! use — hashed, so the server can tell a client generated from other traits.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hub_core::hub::ParameterSource;
use sha2::{Digest, Sha256};
use ts_rs::Config;

use super::lossy;
use crate::registry::{self, HubMetadata, ParameterMetadata, TypeMetadata};

/// The contract hash of `hub` (16 hex digits of SHA-256 over a canonical description of its
/// methods, callbacks and type declarations in TypeScript). Equal for the generator and the
/// server as long as both run the same hub traits; docs and Rust-only details do not count.
pub fn contract_hash(hub: &HubMetadata) -> String {
    let config = Config::new().with_large_int(lossy::LARGE_INT);
    let mut declarations = BTreeMap::new();
    let mut name_of = |ty: &TypeMetadata| {
        let typescript = (ty.typescript)(&config);
        for declaration in typescript.declarations {
            declarations.insert(declaration.name, declaration.declaration);
        }
        typescript.name
    };
    let mut text = format!("hub {}\n", hub.name);
    let mut methods: Vec<_> = hub.methods.iter().collect();
    methods.sort_by_key(|method| method.wire_name);
    for method in methods {
        let params = parameters(method.parameters, &mut name_of);
        let result = name_of(&method.output.ty);
        let error = (method.error)().map_or_else(|| "-".to_owned(), |ty| name_of(&ty));
        let _ = writeln!(
            text,
            "method {} stream={} ({params}) -> {result} ! {error}",
            method.wire_name, method.output.stream
        );
    }
    let mut callbacks: Vec<_> = hub.client.callbacks.iter().collect();
    callbacks.sort_by_key(|callback| callback.wire_name);
    for callback in callbacks {
        let params = parameters(callback.parameters, &mut name_of);
        let result = callback
            .result
            .as_ref()
            .map_or_else(|| "void".to_owned(), &mut name_of);
        let _ = writeln!(
            text,
            "callback {} ({params}) -> {result}",
            callback.wire_name
        );
    }
    for (name, declaration) in &declarations {
        let _ = writeln!(text, "type {name} = {declaration}");
    }
    let digest = Sha256::digest(text.as_bytes());
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The contract hash of the registered hub named `name` (a `#[hub]` trait's name).
pub(crate) fn contract_of(name: &str) -> Option<String> {
    registry::hubs()
        .into_iter()
        .find(|hub| hub.name == name)
        .map(contract_hash)
}

/// `a: T, b: AsyncIterable<U>` as the wire sees them (context parameters are not sent).
fn parameters(
    parameters: &[ParameterMetadata],
    name_of: &mut impl FnMut(&TypeMetadata) -> String,
) -> String {
    parameters
        .iter()
        .filter(|param| param.source != ParameterSource::Context)
        .map(|param| match param.source {
            ParameterSource::Upload => format!("upload {}", name_of(&param.ty)),
            _ => name_of(&param.ty),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
