//! `ServeX<T>`: serves any implementation of hub trait `X` through the runtime's `HubDispatch`.
//! Each method binds its parameters by type (`FromCall`) and turns its result into the method's
//! output with the runtime helper for its shape.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{MethodModel, Shape, TraitModel};
use crate::authorize::AuthModel;
use crate::naming;

/// The struct, its constructors and its `HubDispatch` impl.
pub(crate) fn generate(model: &TraitModel, rt: &TokenStream) -> TokenStream {
    let trait_ident = &model.item.ident;
    let vis = &model.item.vis;
    let serve = naming::serve_struct(trait_ident);
    let p = quote!(#rt::__private);
    let cx = quote!(#p::Context);
    let descriptors = model
        .methods
        .iter()
        .map(|method| descriptor(method, &model.auth, &p));
    let hub_authorization = model.auth.expand(&AuthModel::default(), &p);
    let arms = model.methods.iter().enumerate().map(|(index, method)| {
        let call = method_call(trait_ident, method, &p);
        quote!(#index => #call,)
    });
    let on_connected = model
        .hooks
        .connected
        .as_ref()
        .map(|hook| connected(trait_ident, hook, &p));
    let on_disconnected = model
        .hooks
        .disconnected
        .as_ref()
        .map(|hook| disconnected(trait_ident, hook, &p));
    let client = match &model.args.client {
        Some(path) => {
            let proxy = super::metadata::proxy_path(path);
            quote!(#proxy)
        }
        None => quote!(#p::ClientProxy),
    };
    let hub_name = trait_ident.to_string();
    let doc = format!(
        "Serves an implementation of [`{trait_ident}`] as a hub: \
         `HubServer::builder().hub(\"/path\", {serve}::new(your_hub))`."
    );
    quote! {
        #[doc = #doc]
        #vis struct #serve<T> {
            hub: #p::Arc<T>,
            table: #p::MethodTable,
        }

        impl<T: #trait_ident> #serve<T> {
            /// Serves `hub`.
            pub fn new(hub: T) -> Self {
                Self::from_arc(#p::Arc::new(hub))
            }

            /// Serves a hub shared with other code.
            pub fn from_arc(hub: #p::Arc<T>) -> Self {
                #serve {
                    hub,
                    table: #p::MethodTable::from_descriptors([#(#descriptors),*]),
                }
            }

            /// The implementation being served.
            pub fn hub(&self) -> &#p::Arc<T> {
                &self.hub
            }
        }

        impl<T: #trait_ident> #p::TypedHub for #serve<T> {
            type Client = #client;
        }

        impl<T: #trait_ident> #p::HubDispatch<#cx> for #serve<T> {
            fn methods(&self) -> &[#p::MethodDescriptor] {
                self.table.descriptors()
            }

            fn name(&self) -> #p::Option<&str> {
                #p::Option::Some(#hub_name)
            }

            fn find(&self, name: &str) -> #p::Option<usize> {
                self.table.find(name)
            }

            fn call(
                &self,
                index: usize,
                cx: #cx,
                arguments: #p::Arguments,
                uploads: #p::Vec<#p::RawUpload>,
            ) -> #p::BoxFuture<#p::Result<#p::MethodOutput, #p::CallError>> {
                match index {
                    #(#arms)*
                    _ => #p::unknown_method(),
                }
            }

            fn authorization(&self) -> #p::Authorization {
                #hub_authorization
            }

            #on_connected
            #on_disconnected
        }
    }
}

/// `0usize + <P as FromCall<Context>>::SOURCE.arguments() + …` (or `.uploads()`).
fn count(method: &MethodModel, p: &TokenStream, which: &str) -> TokenStream {
    let which = format_ident!("{}", which);
    let terms = method.params.iter().map(|param| {
        let ty = &param.ty;
        let p = super::respan(p, ty.span());
        quote_spanned!(ty.span()=> <#ty as #p::FromCall<#p::Context>>::SOURCE.#which())
    });
    quote!(0usize #(+ #terms)*)
}

fn descriptor(method: &MethodModel, hub: &AuthModel, p: &TokenStream) -> TokenStream {
    let wire = &method.wire_name;
    let kind = if method.output.is_stream() {
        quote!(#p::MethodKind::ServerStream)
    } else {
        quote!(#p::MethodKind::Unary)
    };
    let arguments = count(method, p, "arguments");
    let uploads = count(method, p, "uploads");
    let authorization = method.auth.expand(hub, p);
    quote! {
        #p::MethodDescriptor {
            name: <#p::String as ::core::convert::From<&str>>::from(#wire),
            kind: #kind,
            arguments: #arguments,
            upload_streams: #uploads,
            authorization: #authorization,
        }
    }
}

/// `(<P0 as FromCall<Context>>::from_call(parts)?, …)`, each spanned at the user's type.
fn bind_tuple(params: &[crate::ast::ParamModel], p: &TokenStream) -> TokenStream {
    let binds = params.iter().map(|param| {
        let ty = &param.ty;
        let p = super::respan(p, ty.span());
        quote_spanned!(ty.span()=> <#ty as #p::FromCall<#p::Context>>::from_call(__parts)?)
    });
    quote!((#(#binds,)*))
}

fn names(count: usize) -> Vec<syn::Ident> {
    (0..count)
        .map(|index| format_ident!("__p{}", index))
        .collect()
}

fn method_call(trait_ident: &syn::Ident, method: &MethodModel, p: &TokenStream) -> TokenStream {
    let ident = &method.ident;
    let expected = count(method, p, "arguments");
    let bind = bind_tuple(&method.params, p);
    let names = names(method.params.len());
    let call = quote!(<T as #trait_ident>::#ident(&*__hub, #(#names),*).await);
    let span = method
        .output
        .ty
        .as_ref()
        .map_or_else(|| method.ident.span(), Spanned::span);
    // The runtime path carries the return type's span too, so an error type that does not
    // convert into `HubError` is reported at the user's type, not at `#[hub]`.
    let rt = &super::respan(p, span);
    let output = match (&method.output.shape, method.output.fallible) {
        (Shape::Unit, false) => quote!({ #call; #rt::value_output(()) }),
        (Shape::Unit | Shape::Value(_), true) => {
            // A `ClientError` becomes a typed error; anything else converts as its type says
            // (autoref specialisation on `ErrorProbe`).
            quote_spanned!(span=> {
                let __output = #call;
                let __output = __output.map_err(|__error| {
                    #[allow(unused_imports)]
                    use #rt::{PlainErrorProbe as _, TypedErrorProbe as _};
                    (&#rt::ErrorProbe::new(__error)).hub_error()
                });
                #rt::result_output(__output)
            })
        }
        (Shape::Value(_), false) => {
            quote_spanned!(span=> { let __output = #call; #rt::value_output(__output) })
        }
        (Shape::Stream { fallible_items, .. }, fallible) => {
            let helper = if *fallible_items {
                quote!(#rt::fallible_stream_output)
            } else {
                quote!(#rt::stream_output)
            };
            if fallible {
                quote_spanned!(span=> { let __output = #call; #rt::try_output(__output, #helper) })
            } else {
                quote_spanned!(span=> { let __output = #call; #helper(__output) })
            }
        }
    };
    quote! {{
        let __hub = <#p::Arc<T> as ::core::clone::Clone>::clone(&self.hub);
        #p::bind_call(
            cx,
            &arguments,
            uploads,
            #expected,
            |__parts: &mut #p::CallParts<'_, #p::Context>| -> #p::Result<_, #p::BindError> {
                #p::Result::Ok(#bind)
            },
            move |(#(#names,)*)| async move { #output },
        )
    }}
}

fn connected(trait_ident: &syn::Ident, hook: &MethodModel, p: &TokenStream) -> TokenStream {
    let ident = &hook.ident;
    let bind = bind_tuple(&hook.params, p);
    let names = names(hook.params.len());
    let call = quote!(<T as #trait_ident>::#ident(&*__hub, #(#names),*).await);
    let result = if hook.output.fallible {
        quote!(#p::hook_result(#call))
    } else {
        quote!({ #call; #p::Result::Ok(()) })
    };
    quote! {
        fn on_connected(&self, cx: #p::Context) -> #p::BoxFuture<#p::Result<(), #p::HubError>> {
            let __hub = <#p::Arc<T> as ::core::clone::Clone>::clone(&self.hub);
            match #p::bind_context(&cx, |__parts: &mut #p::CallParts<'_, #p::Context>| -> #p::Result<_, #p::BindError> {
                #p::Result::Ok(#bind)
            }) {
                #p::Result::Ok((#(#names,)*)) => #p::Box::pin(async move { #result }),
                #p::Result::Err(error) => #p::Box::pin(#p::ready(#p::Result::Err(error))),
            }
        }
    }
}

fn disconnected(trait_ident: &syn::Ident, hook: &MethodModel, p: &TokenStream) -> TokenStream {
    let ident = &hook.ident;
    let context_params = &hook.params[..hook.params.len().saturating_sub(1)];
    let bind = bind_tuple(context_params, p);
    let names = names(context_params.len());
    quote! {
        fn on_disconnected(
            &self,
            cx: #p::Context,
            error: #p::Option<#p::String>,
        ) -> #p::BoxFuture<()> {
            let __hub = <#p::Arc<T> as ::core::clone::Clone>::clone(&self.hub);
            match #p::bind_context(&cx, |__parts: &mut #p::CallParts<'_, #p::Context>| -> #p::Result<_, #p::BindError> {
                #p::Result::Ok(#bind)
            }) {
                #p::Result::Ok((#(#names,)*)) => #p::Box::pin(async move {
                    <T as #trait_ident>::#ident(&*__hub, #(#names,)* error).await;
                }),
                #p::Result::Err(_) => #p::Box::pin(#p::ready(())),
            }
        }
    }
}
