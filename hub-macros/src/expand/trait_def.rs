//! The trait as users implement it: each `async fn` becomes a method returning a `Send` future (so
//! the server can run it on any thread), and the trait requires `Send + Sync + 'static`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{parse_quote, FnArg, Pat, ReturnType, TraitItem, Type};

use crate::ast::TraitModel;

/// The rewritten trait.
pub(crate) fn generate(model: &TraitModel) -> TokenStream {
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
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        method.sig.output = parse_quote! {
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
    }
    quote!(#item)
}
