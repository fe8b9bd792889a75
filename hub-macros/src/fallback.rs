//! On invalid input, still emit the user's trait beside the errors, so the rest of their crate
//! compiles against it and they see our errors, not a cascade of unresolved names.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemTrait;

use crate::ast::{Errors, TraitKind};

/// The trait as written (our attributes taken off) and one `compile_error!` per problem.
pub(crate) fn emit(item: &ItemTrait, errors: &Errors) -> TokenStream {
    let errors = errors.to_compile_errors();
    let item = without_patterns(item);
    quote! {
        #[allow(async_fn_in_trait)]
        #item
        #errors
    }
}

/// The attribute was put on something that is not a trait.
pub(crate) fn not_a_trait(kind: TraitKind, item: TokenStream) -> TokenStream {
    let message = match kind {
        TraitKind::Hub => {
            "`#[hub]` goes on a trait of `async fn` methods, e.g. `#[hub] pub trait Chat { async fn send(&self, text: String); }`"
        }
        TraitKind::Client => {
            "`#[hub_client]` goes on a trait of `async fn` callbacks, e.g. `#[hub_client] pub trait ChatClient { async fn receive(&self, text: String); }`"
        }
    };
    let error = syn::Error::new(Span::call_site(), message).to_compile_error();
    quote!(#item #error)
}

/// The trait with every parameter pattern that is not a plain name replaced by `_`, so rustc does
/// not repeat our error about it ("patterns aren't allowed in functions without bodies").
fn without_patterns(item: &ItemTrait) -> ItemTrait {
    let mut item = item.clone();
    for trait_item in &mut item.items {
        let syn::TraitItem::Fn(method) = trait_item else {
            continue;
        };
        if method.default.is_some() {
            continue;
        }
        for input in &mut method.sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                match &mut *typed.pat {
                    syn::Pat::Ident(pat) => {
                        pat.mutability = None;
                        pat.by_ref = None;
                        pat.subpat = None;
                    }
                    pat => *pat = syn::parse_quote!(_),
                }
            }
        }
    }
    item
}
