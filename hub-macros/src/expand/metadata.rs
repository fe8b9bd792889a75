//! What code generators read: a `METADATA` constant on `ServeX` and an `inventory` registration,
//! so a generator finds every hub linked into the program.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Path, Type};

use crate::ast::{MethodModel, TraitModel};
use crate::authorize::AuthModel;
use crate::naming;

/// `ServeX::METADATA` and its registration.
pub(crate) fn hub(model: &TraitModel, rt: &TokenStream) -> TokenStream {
    let p = quote!(#rt::__private);
    let trait_ident = &model.item.ident;
    let serve = naming::serve_struct(trait_ident);
    let name = trait_ident.to_string();
    let docs = &model.docs;
    let route = match &model.args.route {
        Some(route) => quote!(#p::Option::Some(#route)),
        None => quote!(#p::Option::None),
    };
    let client = match &model.args.client {
        Some(path) => {
            let proxy = proxy_path(path);
            quote_spanned!(path.span()=> &<#proxy as #p::ClientCallbacks>::METADATA)
        }
        None => quote!(&<#p::ClientProxy as #p::ClientCallbacks>::METADATA),
    };
    let methods = model
        .methods
        .iter()
        .map(|method| method_metadata(method, &model.auth, &p));
    let hub_authorization = model.auth.expand(&AuthModel::default(), &p);
    quote! {
        impl<T> #serve<T> {
            /// What code generators know about this hub: methods, wire names, types, docs.
            pub const METADATA: &'static #p::HubMetadata = &#p::HubMetadata {
                name: #name,
                route: #route,
                docs: #docs,
                methods: &[#(#methods),*],
                authorization: {
                    fn __authorization() -> #p::Authorization {
                        #hub_authorization
                    }
                    __authorization
                },
                client: #client,
                source_dir: #p::env!("CARGO_MANIFEST_DIR"),
            };
        }

        #p::inventory::submit! {
            #p::HubRegistration(#serve::<()>::METADATA)
        }
    }
}

fn method_metadata(method: &MethodModel, hub: &AuthModel, p: &TokenStream) -> TokenStream {
    let name = method.ident.to_string();
    let wire = &method.wire_name;
    let typescript_name = naming::typescript_name(&name);
    let docs = &method.docs;
    let parameters = method.params.iter().map(|param| {
        let name = param.ident.to_string();
        let param_ts = naming::typescript_name(&name);
        let ty = &param.ty;
        let at = super::respan(p, ty.span());
        let source = quote_spanned!(ty.span()=> <#ty as #at::FromCall<#at::Context>>::SOURCE);
        let wire_ty: Type =
            syn::parse_quote_spanned!(ty.span()=> <#ty as #at::FromCall<#at::Context>>::Wire);
        let ty_meta = type_metadata(&wire_ty, ty, p);
        quote!(#p::ParameterMetadata { name: #name, typescript_name: #param_ts, source: #source, ty: #ty_meta })
    });
    let wire_ty = method.output.wire_type();
    let output_ty = type_metadata(&wire_ty, &wire_ty, p);
    let stream = method.output.is_stream();
    let authorization = method.auth.expand(hub, p);
    // A unary method's `ClientError` is typed for generated clients (see `ErrorTypeProbe`).
    let error = match (&method.output.error, stream) {
        (Some(error), false) => {
            let at = super::respan(p, error.span());
            quote_spanned! {error.span()=> {
                fn __error() -> #p::Option<#p::TypeMetadata> {
                    #[allow(unused_imports)]
                    use #at::{TypedErrorType as _, UntypedErrorType as _};
                    (&#at::ErrorTypeProbe::<#error>::new()).error_type()
                }
                __error
            }}
        }
        _ => quote! {{
            fn __error() -> #p::Option<#p::TypeMetadata> {
                #p::Option::None
            }
            __error
        }},
    };
    quote! {
        #p::MethodMetadata {
            name: #name,
            wire_name: #wire,
            typescript_name: #typescript_name,
            docs: #docs,
            parameters: &[#(#parameters),*],
            output: #p::OutputMetadata { stream: #stream, ty: #output_ty },
            error: #error,
            authorization: {
                fn __authorization() -> #p::Authorization {
                    #authorization
                }
                __authorization
            },
        }
    }
}

/// A `TypeMetadata` for `ty`, whose "no TypeScript type" error points at `shown` (the type as
/// the user wrote it).
pub(crate) fn type_metadata(ty: &Type, shown: &Type, p: &TokenStream) -> TokenStream {
    let rust = quote!(#shown)
        .to_string()
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace(" ,", ",");
    let at = super::respan(p, shown.span());
    let typescript = quote_spanned!(shown.span()=> #at::typescript_type::<#ty>);
    quote!(#p::TypeMetadata { rust: #rust, typescript: #typescript })
}

/// `ChatClient` → `ChatClientProxy`, keeping the path's module prefix.
pub(crate) fn proxy_path(path: &Path) -> Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = naming::proxy_struct(&last.ident);
    }
    path
}
