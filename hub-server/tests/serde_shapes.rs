//! The TypeScript generator refuses a type whose serde attributes ts-rs cannot follow, naming the
//! field and the fix, instead of writing a wrong type.

#![allow(clippy::unwrap_used, missing_docs, dead_code)]

use hub_server::codegen::{CodegenError, TypeScriptPackage};
use hub_server::hub;
use serde::{Deserialize, Serialize, Serializer};

fn as_text<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

/// `id` goes on the wire as a string, which ts-rs cannot see: it would say `number`.
#[derive(Serialize, Deserialize, ts_rs::TS)]
pub struct Ticket {
    #[serde(serialize_with = "as_text")]
    pub id: u64,
    pub title: String,
}

/// The same field with the shape spelled out for TypeScript.
#[derive(Serialize, Deserialize, ts_rs::TS)]
pub struct Receipt {
    #[serde(serialize_with = "as_text")]
    #[ts(type = "string")]
    pub id: u64,
}

#[hub]
pub trait Tickets {
    async fn open(&self, title: String) -> Ticket;
}

#[hub]
pub trait Receipts {
    async fn last(&self) -> Receipt;
}

#[test]
fn a_serialize_with_field_fails_generation_with_its_name_and_the_fix() {
    let error = TypeScriptPackage::new("tickets")
        .only(&["Tickets"])
        .files()
        .unwrap_err();
    let CodegenError::UnsupportedSerde(problems) = &error else {
        panic!("expected UnsupportedSerde, got {error}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    let text = error.to_string();
    assert!(text.contains("`Ticket.id`"), "{text}");
    assert!(text.contains("serde_shapes.rs"), "{text}");
    assert!(text.contains("#[serde(serialize_with = …)]"), "{text}");
    assert!(text.contains("#[ts(type = \"…\")]"), "{text}");
}

#[test]
fn a_field_whose_shape_is_spelled_out_generates() {
    let files = TypeScriptPackage::new("receipts")
        .only(&["Receipts"])
        .files()
        .unwrap();
    let dts = &files
        .iter()
        .find(|file| file.path == "index.d.ts")
        .unwrap()
        .contents;
    assert!(dts.contains("id: string"), "{dts}");
}
