//! Spanned checks: each points at the smallest token at fault and says how to fix it.

use std::collections::HashMap;

use syn::spanned::Spanned;
use syn::{FnArg, ItemTrait, TraitItemFn, Type};

use crate::ast::{Errors, MethodModel, Shape, TraitKind};
use crate::authorize::AuthModel;
use crate::naming;

/// Proxy methods the generated client proxy defines itself.
const RESERVED_PROXY_METHODS: &[&str] = &["untyped"];

/// The trait itself: no generics, no `unsafe`/`auto`.
pub(crate) fn trait_header(kind: TraitKind, item: &ItemTrait, errors: &mut Errors) {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(
            &item.generics,
            format!(
                "a `#[{}]` trait cannot be generic: clients call it with concrete types; remove the type parameters",
                attribute(kind)
            ),
        );
    }
    if let Some(token) = &item.unsafety {
        errors.at(
            token.span,
            "remove `unsafe`: a hub trait has nothing unsafe to promise",
        );
    }
    if let Some(token) = &item.auto_token {
        errors.at(token.span, "remove `auto`: a hub trait declares methods");
    }
}

/// A method's signature: `async`, `&self`, no generics, no body.
pub(crate) fn signature(
    kind: TraitKind,
    trait_name: &syn::Ident,
    method: &TraitItemFn,
    errors: &mut Errors,
) {
    let sig = &method.sig;
    let name = &sig.ident;
    if sig.asyncness.is_none() {
        errors.at(
            sig.fn_token.span,
            format!(
                "a {} must be an `async fn`: write `async fn {name}`",
                kind.noun()
            ),
        );
    }
    if let Some(token) = &sig.constness {
        errors.at(
            token.span,
            format!("remove `const`: a {} is an `async fn`", kind.noun()),
        );
    }
    if let Some(token) = &sig.unsafety {
        errors.at(
            token.span,
            format!(
                "remove `unsafe`: a {} cannot be unsafe to call",
                kind.noun()
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.at(
            abi.span(),
            format!(
                "remove the ABI: a {} is a plain Rust `async fn`",
                kind.noun()
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.at(
            variadic.span(),
            "remove `...`: list each parameter with its type",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(
            &sig.generics,
            format!(
                "a {} cannot be generic: values on the wire have one concrete type; use a concrete type (an enum for alternatives)",
                kind.noun()
            ),
        );
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            if receiver.colon_token.is_some() {
                errors.at(
                    receiver.span(),
                    "take `&self` here: other receiver types are not supported",
                );
            } else if receiver.reference.is_none() {
                errors.at(
                    receiver.self_token.span,
                    format!(
                        "take `&self`: the {} is shared by every connection, so a call cannot consume it",
                        if kind == TraitKind::Hub { "hub" } else { "client" }
                    ),
                );
            } else if let Some(token) = &receiver.mutability {
                errors.at(
                    token.span,
                    "take `&self`, not `&mut self`: calls run concurrently; keep mutable state behind a `Mutex` or in per-connection state",
                );
            }
        }
        _ => errors.at(
            name.span(),
            format!("add `&self` as the first parameter of `{name}`"),
        ),
    }
    if let Some(body) = &method.default {
        errors.spanned(
            body,
            format!(
                "remove this body: declare the {} here and implement it in `impl {trait_name} for YourType`",
                kind.noun(),
            ),
        );
    }
}

/// A parameter's type: owned and concrete.
pub(crate) fn parameter_type(kind: TraitKind, ty: &Type, errors: &mut Errors) {
    match ty {
        Type::Reference(_) => errors.spanned(
            ty,
            format!(
                "a {} parameter must be an owned type (`String`, not `&str`): its value arrives in a message",
                kind.noun()
            ),
        ),
        Type::ImplTrait(_) => errors.spanned(
            ty,
            format!(
                "a {} parameter cannot be `impl Trait`: name a concrete type (upload streams are `UploadStream<T>`)",
                kind.noun()
            ),
        ),
        Type::Infer(_) | Type::Never(_) | Type::TraitObject(_) | Type::BareFn(_) => errors.spanned(
            ty,
            format!("a {} parameter needs a concrete type that serializes", kind.noun()),
        ),
        _ => {}
    }
}

/// No two methods share a wire name, compared ignoring case as the server looks them up.
pub(crate) fn unique_wire_names(kind: TraitKind, methods: &[MethodModel], errors: &mut Errors) {
    let mut seen: HashMap<String, &MethodModel> = HashMap::new();
    for method in methods {
        let folded = naming::fold(&method.wire_name);
        match seen.get(&folded) {
            Some(first) if kind == TraitKind::Client => errors.at(
                method.wire_span,
                format!(
                    "`{}` and `{}` both have the wire name `{}`: a client callback has one signature, which the generated client registers; rename one or give it `#[hub(name = \"...\")]`, or push `{}` with other arguments untyped: `clients.all().send(\"{}\", (a, b))`",
                    first.ident,
                    method.ident,
                    method.wire_name,
                    method.wire_name,
                    method.wire_name,
                ),
            ),
            Some(first) => errors.at(
                method.wire_span,
                format!(
                    "`{}` and `{}` both have the wire name `{}` ({}s are matched ignoring case); rename one or give it `#[hub(name = \"...\")]`",
                    first.ident,
                    method.ident,
                    method.wire_name,
                    kind.noun(),
                ),
            ),
            None => {
                seen.insert(folded, method);
            }
        }
    }
}

/// Client callbacks do not take the names the generated proxy uses itself.
pub(crate) fn client_names(methods: &[MethodModel], errors: &mut Errors) {
    for method in methods {
        if RESERVED_PROXY_METHODS
            .iter()
            .any(|reserved| method.ident == reserved)
        {
            errors.at(
                method.ident.span(),
                format!(
                    "`{}` is a method of the generated proxy; rename the callback and keep its wire name with `#[hub(name = \"{}\")]`",
                    method.ident, method.wire_name
                ),
            );
        }
    }
}

fn attribute(kind: TraitKind) -> &'static str {
    match kind {
        TraitKind::Hub => "hub",
        TraitKind::Client => "hub_client",
    }
}

/// A connection hook: one of each kind; `on_connected` takes context parameters and returns `()`
/// or `Result<(), E>`; `on_disconnected` ends with the error (`error: Option<String>`) and returns
/// `()`.
pub(crate) fn hook(
    slot: &mut Option<MethodModel>,
    key: proc_macro2::Span,
    disconnected: bool,
    method: MethodModel,
    errors: &mut Errors,
) {
    if let Some(first) = slot {
        errors.at(
            key,
            format!(
                "`{}` is already this hook; a hub has one of each",
                first.ident
            ),
        );
        return;
    }
    let unit = matches!(method.output.shape, Shape::Unit);
    if disconnected && (!unit || method.output.fallible) {
        errors.spanned(
            hook_output(&method),
            "`on_disconnected` returns nothing: the connection is already gone",
        );
    } else if !unit {
        errors.spanned(
            hook_output(&method),
            "`on_connected` returns `()` or `Result<(), E>` (an error closes the connection)",
        );
    }
    if disconnected && method.params.is_empty() {
        errors.at(
            method.ident.span(),
            "`on_disconnected` ends with the reason the connection ended: add `error: Option<String>`",
        );
    }
    *slot = Some(method);
}

/// What a hook's return-type error points at: the type, or the name when there is none.
fn hook_output(method: &MethodModel) -> &dyn quote::ToTokens {
    match &method.output.ty {
        Some(ty) => ty,
        None => &method.ident,
    }
}

/// `#[authorize]` belongs on hub traits, and `#[allow_anonymous]` on methods.
pub(crate) fn trait_auth(kind: TraitKind, auth: &AuthModel, errors: &mut Errors) {
    if kind == TraitKind::Client {
        if let Some(span) = auth.span.or(auth.allow_anonymous) {
            errors.at(
                span,
                "authorization applies to hub methods clients invoke, not to client callbacks; \
                 move it to the `#[hub]` trait or one of its methods",
            );
        }
        return;
    }
    if let Some(span) = auth.allow_anonymous {
        errors.at(
            span,
            "`#[allow_anonymous]` goes on a method, to open it inside an `#[authorize]` trait; \
             to let anyone connect, remove `#[authorize]` from the trait",
        );
    }
}

/// A method's `#[authorize]` / `#[allow_anonymous]`: hub methods only, not hooks.
pub(crate) fn method_auth(kind: TraitKind, hook: bool, auth: &AuthModel, errors: &mut Errors) {
    let Some(span) = auth.span.or(auth.allow_anonymous) else {
        return;
    };
    if kind == TraitKind::Client {
        errors.at(
            span,
            "authorization applies to hub methods clients invoke, not to client callbacks; \
             remove it here",
        );
    } else if hook {
        errors.at(
            span,
            "a connection hook runs for every connection and cannot be authorized; put \
             `#[authorize]` on the trait to decide who may connect",
        );
    } else if auth.allow_anonymous.is_some() && auth.span.is_some() {
        errors.at(
            span,
            "`#[allow_anonymous]` and `#[authorize]` on one method contradict each other; keep one",
        );
    }
}
