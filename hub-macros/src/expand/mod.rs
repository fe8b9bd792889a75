//! Expansion: one generator per output. `trait_def` re-emits the trait with `Send` futures,
//! `serve` the `ServeX` dispatcher, `metadata` what code generators read, `proxy` the typed
//! client proxy.

mod metadata;
mod proxy;
mod serve;
mod trait_def;

use proc_macro2::TokenStream;
use syn::ItemTrait;

use crate::ast::{self, Errors, TraitKind};
use crate::{attr, fallback};

/// Expands `#[hub]` or `#[hub_client]`.
pub(crate) fn expand(kind: TraitKind, args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(trait_item) = syn::parse2::<ItemTrait>(item.clone()) else {
        return fallback::not_a_trait(kind, item);
    };
    let mut errors = Errors::default();
    let model = ast::parse(kind, args, trait_item, &mut errors);
    if !errors.is_empty() {
        return fallback::emit(&model.item, &errors);
    }
    let runtime = attr::runtime_path(model.args.krate.as_ref());
    let definition = trait_def::generate(&model);
    match kind {
        TraitKind::Hub => {
            let serve = serve::generate(&model, &runtime);
            let metadata = metadata::hub(&model, &runtime);
            quote::quote!(#definition #serve #metadata)
        }
        TraitKind::Client => {
            let proxy = proxy::generate(&model, &runtime);
            quote::quote!(#definition #proxy)
        }
    }
}

/// `tokens` (a path to the runtime) with every token spanned at `span`, so an error in the
/// expression built from them points at the user's code that caused it (e.g. a parameter type).
pub(crate) fn respan(tokens: &TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
