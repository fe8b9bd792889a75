//! Shapes whose TypeScript type is right for most values and silently wrong for some: 64- and
//! 128-bit integers (typed `number`, exact in JavaScript only up to 2^53) and `Option<Option<T>>`
//! (both `None` and `Some(None)` travel as `null`). Floats, whose NaN and infinities serde_json
//! sends as `null`, are found in the sources by [`super::serde_check`].
//!
//! ts-rs is asked to print large integers as [`LARGE_INT`], a marker this module finds in the
//! generated text (so integers are found in every crate's types, not just the hub crate's) and
//! then replaces with `number`.

use std::fmt;

/// What ts-rs prints for `u64`, `i64`, `u128`, `i128` (and their `NonZero` forms) while generating.
pub(super) const LARGE_INT: &str = "__hubs_large_int__";

/// One lossy shape and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LossyShape {
    /// `Type.field`, `Type`, or `Hub.method(parameter)` / `Hub.method → result`.
    place: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LargeInt,
    NestedOption,
}

impl fmt::Display for LossyShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::LargeInt => write!(
                f,
                "`{}` is a 64- or 128-bit integer typed `number`, but JavaScript numbers are exact only up to 2^53 \
                 (Number.MAX_SAFE_INTEGER): larger values arrive rounded. If it stays below 2^53, say so with \
                 `#[ts(type = \"number\")]` on the field (for a parameter or result, use `i32`/`u32` or a newtype \
                 that says so); to keep every value exact, send it as a string (`#[serde(with = …)]` and \
                 `#[ts(type = \"string\")]`)",
                self.place
            ),
            Kind::NestedOption => write!(
                f,
                "`{}` is an `Option<Option<T>>`: `None` and `Some(None)` both travel as `null`, so the client cannot \
                 tell them apart. Use one `Option`, or an enum that names the cases",
                self.place
            ),
        }
    }
}

/// The lossy shapes in `ts`, a TypeScript type (`declaration` false) or a declaration such as
/// `type Message = { id: number, … }` (`declaration` true: fields are named) found at `place`.
pub(super) fn find(place: &str, ts: &str, declaration: bool) -> Vec<LossyShape> {
    let mut found = Vec::new();
    for (kind, marker) in [
        (Kind::LargeInt, LARGE_INT),
        (Kind::NestedOption, "| null | null"),
    ] {
        for (at, _) in ts.match_indices(marker) {
            let place = match declaration.then(|| field_before(&ts[..at])).flatten() {
                Some(field) => format!("{place}.{field}"),
                None => place.to_owned(),
            };
            let shape = LossyShape { place, kind };
            if !found.contains(&shape) {
                found.push(shape);
            }
        }
    }
    found
}

/// A warning when `rust` (a Rust type as written, e.g. `Vec<f64>`) holds a float that the server
/// sends to clients at `place`: serde_json writes NaN and ±Infinity as `null`.
pub(super) fn float_sent(place: &str, rust: &str) -> Option<String> {
    let float = rust
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .find(|word| *word == "f64" || *word == "f32")?;
    Some(format!(
        "`{place}` holds an `{float}`, typed `number`, but serde_json sends NaN and ±Infinity as `null`; \
         if it can be non-finite, send an `Option` that is `None` for them (typed `number | null`), or a \
         struct whose field says so with `#[ts(type = \"number | null\")]`"
    ))
}

/// `number` where ts-rs printed the large-integer marker.
pub(super) fn clean(ts: &str) -> String {
    ts.replace(LARGE_INT, "number")
}

/// The name of the field whose type starts in the last segment of `before` (`… sentAt: ` →
/// `sentAt`), if that segment has one.
fn field_before(before: &str) -> Option<String> {
    let start = before.rfind([',', '{', ';', '\n']).map_or(0, |at| at + 1);
    let (name, _) = before[start..].split_once(':')?;
    let name = name.trim().trim_end_matches('?').trim_matches('"');
    (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(found: &[LossyShape]) -> Vec<&str> {
        found.iter().map(|shape| shape.place.as_str()).collect()
    }

    #[test]
    fn large_integers_are_named_by_field() {
        let ts = format!(
            "type Message = {{ id: {LARGE_INT}, text: string, \"sent-at\"?: {LARGE_INT} | null, ids: Array<{LARGE_INT}>, }};"
        );
        let found = find("Message", &ts, true);
        assert_eq!(
            places(&found),
            ["Message.id", "Message.sent-at", "Message.ids"]
        );
        assert!(found[0].to_string().contains("2^53"));
        assert_eq!(clean(&ts).matches("number").count(), 3);
    }

    #[test]
    fn nested_options_are_found_and_plain_ones_are_not() {
        let ts = "type Patch = { name: string | null | null, age: number | null, };";
        let found = find("Patch", ts, true);
        assert_eq!(places(&found), ["Patch.name"]);
        assert!(found[0].to_string().contains("Some(None)"));
        assert!(find("Add(a)", "number", false).is_empty());
    }

    #[test]
    fn floats_sent_to_clients_are_found_by_their_rust_type() {
        assert!(float_sent("Hub.load → result", "Vec<f64>").is_some());
        assert!(float_sent("Hub.load → result", "Option < f32 >").is_some());
        assert!(float_sent("Hub.load → result", "MyF64Wrapper").is_none());
    }

    #[test]
    fn a_type_without_fields_is_named_by_its_place() {
        let found = find("Chat.count → result", LARGE_INT, false);
        assert_eq!(places(&found), ["Chat.count → result"]);
        let found = find(
            "Tuple",
            &format!("type Tuple = [string, {LARGE_INT}];"),
            true,
        );
        assert_eq!(places(&found), ["Tuple"]);
    }
}
