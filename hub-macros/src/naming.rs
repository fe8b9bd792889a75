//! The one place wire names and generated names are made.
//!
//! Rule (SignalR's convention): a method's wire name is the PascalCase of its Rust name — split at
//! underscores, each part's first character upper-cased, the rest kept (`send_message` →
//! `SendMessage`, `get_v2_item` → `GetV2Item`, `r#type` → `Type`). TypeScript members use the
//! camelCase of the same name (`sendMessage`). `#[hub(name = "...")]` overrides the wire name.

use proc_macro2::Ident;
use quote::format_ident;

/// The PascalCase wire name of a Rust method name.
pub(crate) fn wire_name(rust_name: &str) -> String {
    let rust_name = rust_name.strip_prefix("r#").unwrap_or(rust_name);
    let mut out = String::with_capacity(rust_name.len());
    for part in rust_name.split('_').filter(|part| !part.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// The camelCase TypeScript member name of a Rust method name.
pub(crate) fn typescript_name(rust_name: &str) -> String {
    let pascal = wire_name(rust_name);
    let mut chars = pascal.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Names compared the way the server looks methods up: ignoring case.
pub(crate) fn fold(name: &str) -> String {
    name.chars().flat_map(char::to_lowercase).collect()
}

/// The struct that serves a hub trait: `Chat` → `ServeChat`.
pub(crate) fn serve_struct(trait_name: &Ident) -> Ident {
    format_ident!("Serve{}", trait_name)
}

/// The typed proxy of a client-callback trait: `ChatClient` → `ChatClientProxy`.
pub(crate) fn proxy_struct(trait_name: &Ident) -> Ident {
    format_ident!("{}Proxy", trait_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_pascal_case() {
        for (rust, wire) in [
            ("send_message", "SendMessage"),
            ("echo", "Echo"),
            ("join_room", "JoinRoom"),
            ("get_v2_item", "GetV2Item"),
            ("r#type", "Type"),
            ("_private_thing", "PrivateThing"),
            ("double__underscore", "DoubleUnderscore"),
            ("already_Mixed_case", "AlreadyMixedCase"),
            ("x", "X"),
            ("ünïcode_name", "ÜnïcodeName"),
        ] {
            assert_eq!(wire_name(rust), wire, "{rust}");
        }
    }

    #[test]
    fn typescript_names_are_camel_case() {
        for (rust, ts) in [
            ("send_message", "sendMessage"),
            ("echo", "echo"),
            ("get_v2_item", "getV2Item"),
            ("r#type", "type"),
        ] {
            assert_eq!(typescript_name(rust), ts, "{rust}");
        }
    }

    #[test]
    fn folding_matches_the_servers_case_insensitive_lookup() {
        assert_eq!(fold("SendMessage"), fold("sendmessage"));
        assert_ne!(fold("SendMessage"), fold("SendMessages"));
    }

    #[test]
    fn generated_names_are_fixed_affixes() {
        let chat = format_ident!("Chat");
        assert_eq!(serve_struct(&chat).to_string(), "ServeChat");
        assert_eq!(
            proxy_struct(&format_ident!("ChatClient")).to_string(),
            "ChatClientProxy"
        );
    }
}
