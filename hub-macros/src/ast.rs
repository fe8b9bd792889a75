//! The typed model of an annotated trait: what each method is called on the wire, what it takes
//! and what it returns. Built by [`parse`], which reports every problem it finds at once.

use proc_macro2::{Span, TokenStream};
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Ident, ItemTrait, Lit, Meta, Pat, PathArguments,
    ReturnType, TraitItem, Type, TypeParamBound,
};

use crate::attr::{self, TraitArgs};
use crate::authorize::{self, AuthModel};
use crate::{naming, valid};

/// Errors gathered while reading the trait, all reported together.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    pub(crate) fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// An error spanning all of `tokens` (a whole type or pattern, not only its first token).
    pub(crate) fn spanned(
        &mut self,
        tokens: &dyn quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// One `compile_error!` per error.
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.errors
            .iter()
            .map(syn::Error::to_compile_error)
            .collect()
    }
}

/// Which attribute the trait carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraitKind {
    /// `#[hub]`: methods clients invoke.
    Hub,
    /// `#[hub_client]`: callbacks the server calls on clients.
    Client,
}

impl TraitKind {
    /// What the methods are called in messages.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            TraitKind::Hub => "hub method",
            TraitKind::Client => "client callback",
        }
    }
}

/// An annotated trait.
pub(crate) struct TraitModel {
    /// The trait as written, with method attributes of ours taken off.
    pub(crate) item: ItemTrait,
    /// The trait attribute's arguments.
    pub(crate) args: TraitArgs,
    /// The trait's doc comment.
    pub(crate) docs: String,
    /// The methods clients invoke (or callbacks), in order.
    pub(crate) methods: Vec<MethodModel>,
    /// The connection hooks (hub traits only).
    pub(crate) hooks: Hooks,
    /// `#[authorize(...)]` on the trait: required to connect, and of every method.
    pub(crate) auth: AuthModel,
}

/// Methods marked `#[hub(on_connected)]` / `#[hub(on_disconnected)]`: not invoked by clients,
/// called by the server when a connection starts or ends.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) connected: Option<MethodModel>,
    pub(crate) disconnected: Option<MethodModel>,
}

/// One method of the trait.
#[derive(Clone)]
pub(crate) struct MethodModel {
    /// The Rust name.
    pub(crate) ident: Ident,
    /// The name on the wire.
    pub(crate) wire_name: String,
    /// Where the wire name comes from: the override's literal, else the method's name.
    pub(crate) wire_span: Span,
    /// The doc comment.
    pub(crate) docs: String,
    /// The parameters after `&self`.
    pub(crate) params: Vec<ParamModel>,
    /// What it returns.
    pub(crate) output: OutputModel,
    /// `#[authorize(...)]` / `#[allow_anonymous]` on the method.
    pub(crate) auth: AuthModel,
}

/// One parameter.
#[derive(Clone)]
pub(crate) struct ParamModel {
    /// Its name.
    pub(crate) ident: Ident,
    /// Its type.
    pub(crate) ty: Type,
}

/// What a method returns, by shape.
#[derive(Clone)]
pub(crate) struct OutputModel {
    /// The return type as written (`None` for no return type).
    pub(crate) ty: Option<Type>,
    /// Wrapped in `Result<_, E>`.
    pub(crate) fallible: bool,
    /// `E` of `Result<_, E>`, when written (not for a one-parameter alias like `anyhow::Result`).
    pub(crate) error: Option<Type>,
    /// What is inside the `Result`, or the whole type.
    pub(crate) shape: Shape,
}

/// A return type's shape.
#[derive(Clone)]
pub(crate) enum Shape {
    /// Nothing (or `()`).
    Unit,
    /// A value.
    Value(Type),
    /// `impl Stream<Item = T>` or `impl Stream<Item = Result<T, E>>`.
    Stream {
        /// `T`.
        item: Type,
        /// Whether items are `Result`s.
        fallible_items: bool,
    },
}

impl OutputModel {
    /// The type clients receive: the value, the stream's item, or `()`.
    pub(crate) fn wire_type(&self) -> Type {
        match &self.shape {
            Shape::Unit => syn::parse_quote!(()),
            Shape::Value(ty) | Shape::Stream { item: ty, .. } => ty.clone(),
        }
    }

    pub(crate) fn is_stream(&self) -> bool {
        matches!(self.shape, Shape::Stream { .. })
    }
}

/// Reads an annotated trait. Always returns the model it could build; `errors` says what is
/// wrong with the rest.
pub(crate) fn parse(
    kind: TraitKind,
    args: TokenStream,
    mut item: ItemTrait,
    errors: &mut Errors,
) -> TraitModel {
    let args = attr::trait_args(args, kind == TraitKind::Client, errors);
    let auth = authorize::take(&mut item.attrs, errors);
    valid::trait_auth(kind, &auth, errors);
    valid::trait_header(kind, &item, errors);
    let docs = docs(&item.attrs);
    let mut methods = Vec::new();
    let trait_name = item.ident.clone();
    let mut hooks = Hooks::default();
    for trait_item in &mut item.items {
        match trait_item {
            TraitItem::Fn(method) => {
                let method_args = attr::method_args(kind, &mut method.attrs, errors);
                let hook = method_args.hook;
                let method_auth = authorize::take(&mut method.attrs, errors);
                valid::method_auth(kind, hook.is_some(), &method_auth, errors);
                if let Some(mut model) =
                    parse_method(kind, &trait_name, method, method_args, errors)
                {
                    model.auth = method_auth;
                    match hook {
                        Some(attr::Hook::Connected(span)) => {
                            valid::hook(&mut hooks.connected, span, false, model, errors)
                        }
                        Some(attr::Hook::Disconnected(span)) => {
                            valid::hook(&mut hooks.disconnected, span, true, model, errors)
                        }
                        None => methods.push(model),
                    }
                }
            }
            other => errors.spanned(
                other,
                format!(
                    "a `#[{}]` trait holds only `async fn` methods; move this item out of the trait",
                    if kind == TraitKind::Hub { "hub" } else { "hub_client" }
                ),
            ),
        }
    }
    valid::unique_wire_names(kind, &methods, errors);
    if kind == TraitKind::Client {
        valid::client_names(&methods, errors);
    }
    TraitModel {
        item,
        args,
        docs,
        methods,
        hooks,
        auth,
    }
}

fn parse_method(
    kind: TraitKind,
    trait_name: &Ident,
    method: &syn::TraitItemFn,
    args: attr::MethodArgs,
    errors: &mut Errors,
) -> Option<MethodModel> {
    let before = errors_len(errors);
    valid::signature(kind, trait_name, method, errors);
    let mut params = Vec::new();
    for input in method.sig.inputs.iter().skip(1) {
        let FnArg::Typed(typed) = input else { continue };
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            other => {
                errors.spanned(
                    other,
                    format!(
                        "use a plain parameter name here: a {} parameter needs a name that generated clients can show",
                        kind.noun()
                    ),
                );
                continue;
            }
        };
        valid::parameter_type(kind, &typed.ty, errors);
        params.push(ParamModel {
            ident,
            ty: (*typed.ty).clone(),
        });
    }
    if kind == TraitKind::Client && params.len() > 12 {
        errors.at(
            method.sig.ident.span(),
            "a client callback takes at most 12 arguments; group them in a struct",
        );
    }
    let output = output(kind, &method.sig.output, errors);
    let (wire_name, wire_span) = match args.name {
        Some(name) => (name.value(), name.span()),
        None => (
            naming::wire_name(&method.sig.ident.to_string()),
            method.sig.ident.span(),
        ),
    };
    if errors_len(errors) != before {
        return None;
    }
    Some(MethodModel {
        ident: method.sig.ident.clone(),
        wire_name,
        wire_span,
        docs: docs(&method.attrs),
        params,
        output: output?,
        auth: AuthModel::default(),
    })
}

fn errors_len(errors: &Errors) -> usize {
    errors.errors.len()
}

/// Classifies a return type.
fn output(kind: TraitKind, ret: &ReturnType, errors: &mut Errors) -> Option<OutputModel> {
    let ty = match ret {
        ReturnType::Default => {
            return Some(OutputModel {
                ty: None,
                fallible: false,
                error: None,
                shape: Shape::Unit,
            })
        }
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if kind == TraitKind::Client {
        let shape = match &ty {
            Type::Tuple(tuple) if tuple.elems.is_empty() => Shape::Unit,
            Type::ImplTrait(_) | Type::Reference(_) | Type::Infer(_) => {
                errors.spanned(
                    &ty,
                    "a client callback returns nothing (the server does not wait) or the owned type the client answers with (a client result)",
                );
                return None;
            }
            _ => Shape::Value(ty.clone()),
        };
        return Some(OutputModel {
            ty: Some(ty),
            fallible: false,
            error: None,
            shape,
        });
    }
    let (fallible, inner) = match result_ok_type(&ty) {
        Some(ok) => (true, ok),
        None => (false, ty.clone()),
    };
    let shape = shape(&inner, errors)?;
    Some(OutputModel {
        error: fallible.then(|| result_err_type(&ty)).flatten(),
        ty: Some(ty),
        fallible,
        shape,
    })
}

fn shape(ty: &Type, errors: &mut Errors) -> Option<Shape> {
    match ty {
        Type::Tuple(tuple) if tuple.elems.is_empty() => Some(Shape::Unit),
        Type::Paren(paren) => shape(&paren.elem, errors),
        Type::ImplTrait(impl_trait) => {
            let item = impl_trait.bounds.iter().find_map(|bound| match bound {
                TypeParamBound::Trait(bound) => {
                    let last = bound.path.segments.last()?;
                    if last.ident != "Stream" {
                        return None;
                    }
                    let PathArguments::AngleBracketed(args) = &last.arguments else {
                        return None;
                    };
                    args.args.iter().find_map(|arg| match arg {
                        GenericArgument::AssocType(assoc) if assoc.ident == "Item" => {
                            Some(assoc.ty.clone())
                        }
                        _ => None,
                    })
                }
                _ => None,
            });
            let has_send = impl_trait.bounds.iter().any(|bound| {
                matches!(bound, TypeParamBound::Trait(bound)
                    if bound.path.segments.last().is_some_and(|segment| segment.ident == "Send"))
            });
            let has_static = impl_trait.bounds.iter().any(|bound| {
                matches!(bound, TypeParamBound::Lifetime(lifetime) if lifetime.ident == "static")
            });
            if item.is_some() && !(has_send && has_static) {
                errors.spanned(
                    ty,
                    "a server stream runs on its own task after the method returns: write `+ Send + 'static` after `impl Stream<Item = …>`, here and in your `impl` of this trait",
                );
                return None;
            }
            match item {
                Some(item) => Some(match result_ok_type(&item) {
                    Some(ok) => Shape::Stream {
                        item: ok,
                        fallible_items: true,
                    },
                    None => Shape::Stream {
                        item,
                        fallible_items: false,
                    },
                }),
                None => {
                    errors.spanned(
                        ty,
                        "a hub method returns a value, `Result<T, E>`, or a server stream written `impl Stream<Item = T> + Send + 'static`; name a concrete type here",
                    );
                    None
                }
            }
        }
        Type::Reference(_) => {
            errors.spanned(
                ty,
                "a hub method returns an owned value (`String`, not `&str`): the result is sent after the method returns",
            );
            None
        }
        Type::Infer(_) | Type::Never(_) | Type::BareFn(_) | Type::TraitObject(_) => {
            errors.spanned(
                ty,
                "a hub method returns a value that serializes, `Result<T, E>`, or `impl Stream<Item = T> + Send + 'static`",
            );
            None
        }
        _ => Some(Shape::Value(ty.clone())),
    }
}

/// `T` of `Result<T, …>` (any path whose last segment is `Result`, so aliases like
/// `io::Result<T>` count).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    })
}

/// `E` of `Result<T, E>` (the second type argument).
fn result_err_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    args.args
        .iter()
        .filter_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty.clone()),
            _ => None,
        })
        .nth(1)
}

/// The doc comment of an item: its `///` lines joined, one leading space trimmed from each.
pub(crate) fn docs(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(meta) = &attr.meta {
            if let Expr::Lit(expr) = &meta.value {
                if let Lit::Str(text) = &expr.lit {
                    let text = text.value();
                    lines.push(text.strip_prefix(' ').unwrap_or(&text).to_owned());
                }
            }
        }
    }
    lines.join("\n")
}
