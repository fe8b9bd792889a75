//! The TypeScript types generated clients get follow serde's wire shapes: renames, tagging,
//! flattening, skipping, optional fields, unit enums as string unions, `Option` as `T | null`.

#![allow(clippy::unwrap_used, missing_docs, dead_code)]

use hub_server::registry::typescript_type;
use serde::{Deserialize, Serialize};
use ts_rs::{Config, TS};

#[derive(Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
struct Profile {
    display_name: String,
    #[serde(rename = "avatar")]
    avatar_url: Option<String>,
    #[serde(skip)]
    secret: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nickname: Option<String>,
    #[serde(flatten)]
    extra: Extra,
    big: i64,
}

#[derive(Serialize, Deserialize, TS)]
struct Extra {
    score: f64,
}

#[derive(Serialize, Deserialize, TS)]
enum Mood {
    Happy,
    Sad,
}

#[derive(Serialize, Deserialize, TS)]
#[serde(tag = "type", content = "data", rename_all = "camelCase")]
enum Event {
    Joined { name: String },
    Left(String),
    Cleared,
}

#[derive(Serialize, Deserialize, TS)]
#[serde(tag = "kind")]
enum Shape {
    Circle { radius: f64 },
    Square { side: f64 },
}

#[derive(Serialize, Deserialize, TS)]
#[serde(untagged)]
enum Id {
    Number(u32),
    Text(String),
}

fn declaration<T: TS + 'static>() -> String {
    let config = Config::new().with_large_int("number");
    let ts = typescript_type::<T>(&config);
    ts.declarations
        .iter()
        .find(|d| d.name == ts.name)
        .map(|d| d.declaration.clone())
        .unwrap()
}

#[test]
fn struct_attributes() {
    let profile = declaration::<Profile>();
    assert!(profile.contains("displayName: string"), "{profile}");
    assert!(profile.contains("avatar: string | null"), "{profile}");
    assert!(!profile.contains("secret"), "{profile}");
    assert!(profile.contains("nickname?: string"), "{profile}");
    assert!(profile.contains("score: number"), "flattened: {profile}");
    assert!(profile.contains("big: number"), "{profile}");
}

#[test]
fn enum_representations() {
    assert_eq!(declaration::<Mood>(), r#"type Mood = "Happy" | "Sad";"#);
    let event = declaration::<Event>();
    assert!(
        event.contains(r#"{ "type": "joined", "data": { name: string, } }"#),
        "{event}"
    );
    assert!(
        event.contains(r#"{ "type": "left", "data": string }"#),
        "{event}"
    );
    assert!(event.contains(r#"{ "type": "cleared" }"#), "{event}");
    let shape = declaration::<Shape>();
    assert!(
        shape.contains(r#"{ "kind": "Circle", radius: number, }"#),
        "{shape}"
    );
    assert_eq!(declaration::<Id>(), "type Id = number | string;");
}
