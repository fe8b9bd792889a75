//! Serde attributes whose wire shape ts-rs cannot see.
//!
//! ts-rs reads most of serde's attributes (renames, tags, `skip`, `flatten`, …) and so describes
//! the JSON serde really writes. A few attributes hand the shape to code it cannot read:
//! `serialize_with`/`deserialize_with` on a field or variant, and `into`/`from`/`try_from`/
//! `remote` on a type (and `transparent` on a struct with named fields). ts-rs only prints a
//! warning for them and describes the Rust type instead, so the TypeScript would be wrong.
//!
//! The generator therefore reads the sources of the crate that declared each hub, finds the
//! types it is about to emit, and refuses to write a package while one of them uses such an
//! attribute without a `#[ts(type = "…")]` or `#[ts(as = "…")]` saying what the shape is. Types
//! from other crates are not read (their sources are not at hand); a type whose name is found in
//! several places is checked in each.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use syn::{Attribute, Fields, Item, Meta};

/// One attribute the TypeScript would misdescribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SerdeProblem {
    /// The file it was found in.
    pub(crate) file: PathBuf,
    /// `Type` or `Type.field` / `Type::Variant`.
    pub(crate) item: String,
    /// The serde key, e.g. `serialize_with`, or `f32`/`f64` for a float field.
    pub(crate) key: String,
}

impl SerdeProblem {
    /// A float field: a warning (the type is right for finite values), not an error.
    pub(crate) fn is_float(&self) -> bool {
        self.key == "f32" || self.key == "f64"
    }
}

impl fmt::Display for SerdeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_float() {
            return write!(
                f,
                "`{}` ({}) is an `{}`, typed `number`, but serde_json sends NaN and ±Infinity as `null`; \
                 if it can be non-finite, type it `#[ts(type = \"number | null\")]` (or send an `Option` \
                 that is `None` for them); if it is always finite, `#[ts(type = \"number\")]` says so",
                self.item,
                self.file.display(),
                self.key,
            );
        }
        let on = if self.item.contains(['.', ':']) {
            "on that field or variant"
        } else {
            "on the type"
        };
        write!(
            f,
            "`{}` ({}) uses `#[serde({} = …)]`, whose wire shape ts-rs cannot see, so its TypeScript type would be wrong; \
             describe the shape with `#[ts(type = \"…\")]` or `#[ts(as = \"…\")]` {on}, or drop the serde attribute",
            self.item,
            self.file.display(),
            self.key,
        )
    }
}

/// Serde keys on a field or variant that hand its shape to other code.
const MEMBER_KEYS: &[&str] = &["serialize_with", "deserialize_with", "with"];
/// Serde keys on a type that hand its shape to other code.
const TYPE_KEYS: &[&str] = &["into", "from", "try_from", "remote"];

/// Refuses types whose serde attributes ts-rs cannot follow, reading the sources of the crates
/// that declared the hubs; returns warnings: the float fields found there, and each crate whose
/// sources are not on this machine (nothing was checked for it).
pub(super) fn check_hubs(
    hubs: &[&'static crate::registry::HubMetadata],
    declarations: &super::model::Declarations,
) -> Result<Vec<String>, super::CodegenError> {
    let names: std::collections::BTreeSet<String> = declarations.by_name.keys().cloned().collect();
    let dirs: std::collections::BTreeSet<&str> = hubs.iter().map(|hub| hub.source_dir).collect();
    // The sources are where the server was built; a binary copied elsewhere cannot read them,
    // and says so rather than skipping the check in silence.
    let (present, missing): (Vec<&str>, Vec<&str>) =
        dirs.into_iter().partition(|dir| Path::new(dir).is_dir());
    let (floats, problems): (Vec<_>, Vec<_>) = present
        .into_iter()
        .flat_map(|dir| check_dir(Path::new(dir), &names))
        .partition(SerdeProblem::is_float);
    if problems.is_empty() {
        let mut warnings: Vec<String> = missing
            .iter()
            .map(|dir| {
                format!(
                    "the serde attributes of the types declared in {dir} were not checked: that crate's \
                     sources, where the server was built, are not on this machine; generate with a \
                     server built here (e.g. `cargo run -- --emit-ts <dir>`) to have them checked"
                )
            })
            .collect();
        warnings.extend(floats.iter().map(ToString::to_string));
        Ok(warnings)
    } else {
        Err(super::CodegenError::UnsupportedSerde(
            problems.iter().map(ToString::to_string).collect(),
        ))
    }
}

/// Checks every Rust file below `dir` (skipping `target`, `node_modules` and hidden folders) for
/// the types named `names` (their TypeScript names).
pub(crate) fn check_dir(dir: &Path, names: &BTreeSet<String>) -> Vec<SerdeProblem> {
    let mut problems = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                if let Ok(source) = std::fs::read_to_string(&path) {
                    problems.extend(check_source(&path, &source, names));
                }
            }
        }
    }
    problems
}

/// Checks one file's source for the types named `names`. A file that does not parse is skipped
/// (the compiler has its own say about it).
pub(crate) fn check_source(
    file: &Path,
    source: &str,
    names: &BTreeSet<String>,
) -> Vec<SerdeProblem> {
    let Ok(parsed) = syn::parse_file(source) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    check_items(file, &parsed.items, names, &mut problems);
    problems
}

fn check_items(file: &Path, items: &[Item], names: &BTreeSet<String>, out: &mut Vec<SerdeProblem>) {
    for item in items {
        match item {
            Item::Struct(item) if is_named(&item.ident, &item.attrs, names) => {
                let name = item.ident.to_string();
                if !overridden(&item.attrs) {
                    let transparent_object = matches!(item.fields, Fields::Named(_))
                        && serde_keys(&item.attrs)
                            .iter()
                            .any(|key| key == "transparent");
                    let keys = type_keys(&item.attrs)
                        .chain(transparent_object.then(|| "transparent".to_owned()));
                    out.extend(keys.map(|key| problem(file, &name, key)));
                    for (index, field) in item.fields.iter().enumerate() {
                        let member = match &field.ident {
                            Some(ident) => format!("{name}.{ident}"),
                            None => format!("{name}.{index}"),
                        };
                        out.extend(member_problems(file, &member, &field.attrs));
                        out.extend(float_problem(file, &member, field));
                    }
                }
            }
            Item::Enum(item) if is_named(&item.ident, &item.attrs, names) => {
                let name = item.ident.to_string();
                if !overridden(&item.attrs) {
                    out.extend(type_keys(&item.attrs).map(|key| problem(file, &name, key)));
                    for variant in &item.variants {
                        let member = format!("{name}::{}", variant.ident);
                        out.extend(member_problems(file, &member, &variant.attrs));
                        for (index, field) in variant.fields.iter().enumerate() {
                            let member = match &field.ident {
                                Some(ident) => format!("{member}.{ident}"),
                                None => format!("{member}.{index}"),
                            };
                            out.extend(member_problems(file, &member, &field.attrs));
                            out.extend(float_problem(file, &member, field));
                        }
                    }
                }
            }
            Item::Mod(module) => {
                if let Some((_, items)) = &module.content {
                    check_items(file, items, names, out);
                }
            }
            _ => {}
        }
    }
}

fn problem(file: &Path, item: &str, key: String) -> SerdeProblem {
    SerdeProblem {
        file: file.to_owned(),
        item: item.to_owned(),
        key,
    }
}

fn member_problems<'a>(
    file: &'a Path,
    member: &'a str,
    attrs: &'a [Attribute],
) -> impl Iterator<Item = SerdeProblem> + 'a {
    let keys = if overridden(attrs) {
        Vec::new()
    } else {
        serde_keys(attrs)
    };
    keys.into_iter()
        .filter(|key| MEMBER_KEYS.contains(&key.as_str()))
        .map(move |key| problem(file, member, key))
}

/// A field of type `f32`/`f64` (also inside `Option`, `Vec`, …) without a `#[ts(type/as)]`: its
/// TypeScript `number` hides that NaN and ±Infinity arrive as `null` in JSON.
fn float_problem(file: &Path, member: &str, field: &syn::Field) -> Option<SerdeProblem> {
    if overridden(&field.attrs) {
        return None;
    }
    float_in(&field.ty).map(|float| problem(file, member, float.to_owned()))
}

/// `f32` or `f64` when `ty` is or contains one.
fn float_in(ty: &syn::Type) -> Option<&'static str> {
    match ty {
        syn::Type::Path(path) => path.path.segments.iter().find_map(|segment| {
            if segment.ident == "f64" {
                return Some("f64");
            }
            if segment.ident == "f32" {
                return Some("f32");
            }
            match &segment.arguments {
                syn::PathArguments::AngleBracketed(args) => {
                    args.args.iter().find_map(|arg| match arg {
                        syn::GenericArgument::Type(ty) => float_in(ty),
                        _ => None,
                    })
                }
                _ => None,
            }
        }),
        syn::Type::Array(array) => float_in(&array.elem),
        syn::Type::Slice(slice) => float_in(&slice.elem),
        syn::Type::Reference(reference) => float_in(&reference.elem),
        syn::Type::Paren(paren) => float_in(&paren.elem),
        syn::Type::Group(group) => float_in(&group.elem),
        syn::Type::Tuple(tuple) => tuple.elems.iter().find_map(float_in),
        _ => None,
    }
}

fn type_keys(attrs: &[Attribute]) -> impl Iterator<Item = String> {
    serde_keys(attrs)
        .into_iter()
        .filter(|key| TYPE_KEYS.contains(&key.as_str()))
}

/// Whether the item's TypeScript name (its own, or a serde/ts `rename`) is one of `names`.
fn is_named(ident: &syn::Ident, attrs: &[Attribute], names: &BTreeSet<String>) -> bool {
    names.contains(&ident.to_string()) || renames(attrs).iter().any(|rename| names.contains(rename))
}

/// `#[ts(type = …)]` or `#[ts(as = …)]`: the user said what the shape is.
fn overridden(attrs: &[Attribute]) -> bool {
    keys_of(attrs, "ts")
        .iter()
        .any(|(key, _)| key == "type" || key == "as")
}

fn serde_keys(attrs: &[Attribute]) -> Vec<String> {
    keys_of(attrs, "serde")
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

fn renames(attrs: &[Attribute]) -> Vec<String> {
    let mut renames = keys_of(attrs, "serde");
    renames.extend(keys_of(attrs, "ts"));
    renames
        .into_iter()
        .filter(|(key, _)| key == "rename")
        .filter_map(|(_, value)| value)
        .collect()
}

/// The top-level keys of every `#[path(…)]` attribute, with their string values when they have
/// one (`rename = "X"` → `("rename", Some("X"))`, `transparent` → `("transparent", None)`).
fn keys_of(attrs: &[Attribute], path: &str) -> Vec<(String, Option<String>)> {
    let mut keys = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(path)) {
        let Meta::List(list) = &attr.meta else {
            continue;
        };
        let _ = list.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let value = if meta.input.peek(syn::Token![=]) {
                let expr: syn::Expr = meta.value()?.parse()?;
                match expr {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }) => Some(text.value()),
                    _ => None,
                }
            } else {
                if meta.input.peek(syn::token::Paren) {
                    // e.g. `rename(serialize = "a")`: not a key we judge; skip its contents.
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let _: proc_macro2::TokenStream = content.parse()?;
                }
                None
            };
            keys.push((key, value));
            Ok(())
        });
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary run where its hubs' sources are not (copied to another machine) says what it
    /// could not check instead of skipping it in silence.
    #[test]
    fn sources_that_are_not_here_are_named_in_a_warning() {
        static CLIENT: crate::registry::ClientMetadata = crate::registry::ClientMetadata {
            name: "",
            docs: "",
            callbacks: &[],
        };
        static HUB: crate::registry::HubMetadata = crate::registry::HubMetadata {
            name: "Elsewhere",
            route: None,
            docs: "",
            methods: &[],
            authorization: hub_core::hub::Authorization::anyone,
            client: &CLIENT,
            source_dir: "/nonexistent/build-machine/crates/chat",
        };
        let Ok(warnings) = check_hubs(&[&HUB], &super::super::model::Declarations::default())
        else {
            panic!("the check failed");
        };
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with(
            "the serde attributes of the types declared in /nonexistent/build-machine/crates/chat were not checked"
        ));
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    fn problems(source: &str, types: &[&str]) -> Vec<(String, String)> {
        check_source(Path::new("dto.rs"), source, &names(types))
            .into_iter()
            .map(|problem| (problem.item, problem.key))
            .collect()
    }

    #[test]
    fn attributes_ts_rs_follows_pass() {
        let source = r#"
            #[derive(Serialize, TS)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            struct Message {
                #[serde(rename = "t", skip_serializing_if = "Option::is_none", default)]
                text: Option<String>,
                #[serde(flatten)]
                extra: Extra,
                #[serde(skip)]
                cache: u8,
            }
            #[serde(tag = "kind", content = "data")]
            enum Event { #[serde(rename = "j")] Joined { at: u64 }, Left }
            #[serde(transparent)]
            struct UserId(String);
        "#;
        assert_eq!(problems(source, &["Message", "Event", "UserId"]), vec![]);
    }

    #[test]
    fn shape_changing_attributes_are_reported_with_their_place() {
        let source = r#"
            #[serde(into = "Wire", from = "Wire")]
            struct Stamp { at: u64 }
            struct Message {
                #[serde(serialize_with = "as_text", default)]
                id: u64,
                #[serde(deserialize_with = "lenient")]
                text: String,
            }
            enum Event {
                #[serde(with = "custom")]
                Tick(u64),
                Joined { #[serde(serialize_with = "x")] at: u64 },
            }
            #[serde(transparent)]
            struct Wrapper { inner: String }
            mod nested { #[serde(try_from = "String")] pub struct Room { name: String } }
        "#;
        let found = problems(source, &["Stamp", "Message", "Event", "Wrapper", "Room"]);
        let expected: Vec<(String, String)> = [
            ("Stamp", "into"),
            ("Stamp", "from"),
            ("Message.id", "serialize_with"),
            ("Message.text", "deserialize_with"),
            ("Event::Tick", "with"),
            ("Event::Joined.at", "serialize_with"),
            ("Wrapper", "transparent"),
            ("Room", "try_from"),
        ]
        .iter()
        .map(|(item, key)| ((*item).to_owned(), (*key).to_owned()))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn float_fields_are_reported_unless_their_type_is_given() {
        let source = r#"
            struct Load {
                cpu: f64,
                history: Vec<Option<f32>>,
                #[ts(type = "number | null")]
                memory: f64,
                count: u32,
            }
            enum Sample { Value { at: u32, value: f64 } }
        "#;
        let found = problems(source, &["Load", "Sample"]);
        let expected: Vec<(String, String)> = [
            ("Load.cpu", "f64"),
            ("Load.history", "f32"),
            ("Sample::Value.value", "f64"),
        ]
        .iter()
        .map(|(item, key)| ((*item).to_owned(), (*key).to_owned()))
        .collect();
        assert_eq!(found, expected);
        let problem = SerdeProblem {
            file: PathBuf::from("src/dto.rs"),
            item: "Load.cpu".to_owned(),
            key: "f64".to_owned(),
        };
        assert!(problem.is_float());
        assert!(problem.to_string().contains("NaN and ±Infinity as `null`"));
    }

    #[test]
    fn a_ts_override_or_another_type_is_not_reported() {
        let source = r#"
            struct Message {
                #[serde(serialize_with = "as_text")]
                #[ts(type = "string")]
                id: u64,
            }
            #[serde(into = "String")]
            #[ts(as = "String")]
            struct Stamp { at: u64 }
            struct Unrelated { #[serde(serialize_with = "x")] id: u64 }
        "#;
        assert_eq!(problems(source, &["Message", "Stamp"]), vec![]);
    }

    #[test]
    fn types_are_found_by_their_renamed_typescript_name() {
        let source = r#"
            #[serde(rename = "ChatMessage")]
            struct Message { #[serde(deserialize_with = "x")] text: String }
        "#;
        assert_eq!(
            problems(source, &["ChatMessage"]),
            vec![("Message.text".to_owned(), "deserialize_with".to_owned())]
        );
    }

    #[test]
    fn the_message_names_the_item_the_key_and_the_fix() {
        let problem = SerdeProblem {
            file: PathBuf::from("src/dto.rs"),
            item: "Message.id".to_owned(),
            key: "serialize_with".to_owned(),
        };
        let text = problem.to_string();
        assert!(text.starts_with("`Message.id` (src/dto.rs) uses `#[serde(serialize_with = …)]`"));
        assert!(
            text.contains("#[ts(type = \"…\")]` or `#[ts(as = \"…\")]` on that field or variant")
        );
    }
}
