//! The trait as users implement it: each `async fn` becomes a method returning a `Send` future (so
//! the server can run it on any thread), and the trait requires `Send + Sync + 'static`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{parse_quote, FnArg, Pat, ReturnType, TraitItem, Type, TypeParamBound};

use crate::ast::{TraitKind, TraitModel};

/// The rewritten trait.
pub(crate) fn generate(kind: TraitKind, model: &TraitModel) -> TokenStream {
    let mut item = model.item.clone();
    if item.colon_token.is_none() {
        item.colon_token = Some(Default::default());
    }
    item.supertraits.push(parse_quote!(::core::marker::Send));
    item.supertraits.push(parse_quote!(::core::marker::Sync));
    item.supertraits.push(parse_quote!('static));
    for trait_item in &mut item.items {
        let TraitItem::Fn(method) = trait_item else {
            continue;
        };
        method.sig.asyncness = None;
        for input in &mut method.sig.inputs {
            if let FnArg::Typed(typed) = input {
                if let Pat::Ident(pat) = &mut *typed.pat {
                    pat.mutability = None;
                }
            }
        }
        let output: Type = match &method.sig.output {
            ReturnType::Default => parse_quote!(()),
            ReturnType::Type(_, ty) => {
                let mut ty = (**ty).clone();
                if kind == TraitKind::Hub {
                    stream_bounds(&mut ty);
                }
                ty
            }
        };
        method.sig.output = parse_quote! {
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
    }
    quote!(#item)
}

/// Adds `Send + 'static` to a server stream's `impl Stream` (also inside `Result<_, E>`): the
/// stream runs on its own task after the method returns.
fn stream_bounds(ty: &mut Type) {
    match ty {
        Type::ImplTrait(impl_trait) => {
            let has = |name: &str| {
                impl_trait.bounds.iter().any(|bound| match bound {
                    TypeParamBound::Trait(bound) => bound
                        .path
                        .segments
                        .last()
                        .is_some_and(|segment| segment.ident == name),
                    _ => false,
                })
            };
            let has_send = has("Send");
            let has_static = impl_trait.bounds.iter().any(|bound| {
                matches!(bound, TypeParamBound::Lifetime(lifetime) if lifetime.ident == "static")
            });
            if !has_send {
                impl_trait.bounds.push(parse_quote!(::core::marker::Send));
            }
            if !has_static {
                impl_trait.bounds.push(parse_quote!('static));
            }
        }
        Type::Path(path) => {
            let Some(last) = path.path.segments.last_mut() else {
                return;
            };
            if last.ident != "Result" {
                return;
            }
            if let syn::PathArguments::AngleBracketed(args) = &mut last.arguments {
                if let Some(syn::GenericArgument::Type(ok)) = args.args.first_mut() {
                    stream_bounds(ok);
                }
            }
        }
        Type::Paren(paren) => stream_bounds(&mut paren.elem),
        _ => {}
    }
}
