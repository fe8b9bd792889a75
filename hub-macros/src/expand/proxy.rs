//! `XProxy<K>`: the typed proxy of client-callback trait `X`. Fire-and-forget callbacks exist for
//! every target; callbacks with a result exist only where `K: ResultKind` (one connection).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ast::{MethodModel, Shape, TraitModel};
use crate::expand::metadata::type_metadata;
use crate::naming;

/// The proxy struct, its callbacks and its `ClientCallbacks` impl.
pub(crate) fn generate(model: &TraitModel, rt: &TokenStream) -> TokenStream {
    let p = quote!(#rt::__private);
    let trait_ident = &model.item.ident;
    let vis = &model.item.vis;
    let proxy = naming::proxy_struct(trait_ident);
    let callbacks = model.methods.iter().map(|method| callback(method, &p));
    let metadata = model
        .methods
        .iter()
        .map(|method| callback_metadata(method, &p));
    let deliveries = model
        .methods
        .iter()
        .map(|method| delivery(trait_ident, method, &p));
    let name = trait_ident.to_string();
    let docs = &model.docs;
    let doc = format!(
        "Calls the [`{trait_ident}`] callbacks on the clients a target reaches. \
         `{proxy}` (the default, [`ManyClients`]({rt}::ManyClients)) may reach many connections; \
         `{proxy}<SingleClient>` reaches one and can also await client results. Get one from \
         `Context<{proxy}>::clients()` or `HubContext::typed::<{proxy}>()`.",
        rt = rt.to_string().replace(' ', ""),
    );
    quote! {
        #[doc = #doc]
        #vis struct #proxy<K: #p::ProxyKind = #p::ManyClients> {
            proxy: <K as #p::ProxyKind>::Proxy,
        }

        impl<K: #p::ProxyKind> ::core::clone::Clone for #proxy<K> {
            fn clone(&self) -> Self {
                #proxy { proxy: ::core::clone::Clone::clone(&self.proxy) }
            }
        }

        impl<K: #p::ProxyKind> #proxy<K> {
            #(#callbacks)*

            /// The untyped proxy underneath, to call methods by name.
            pub fn untyped(&self) -> &<K as #p::ProxyKind>::Proxy {
                &self.proxy
            }
        }

        impl<H: #trait_ident> #p::Deliver<H> for #proxy {
            fn deliver<'a>(
                handler: &'a H,
                target: &str,
                arguments: &#p::Arguments,
            ) -> #p::Option<#p::Delivery<'a>> {
                #(#deliveries)*
                #p::Option::None
            }
        }

        impl #p::ClientCallbacks for #proxy {
            type Many = #proxy<#p::ManyClients>;
            type Single = #proxy<#p::SingleClient>;
            const METADATA: #p::ClientMetadata = #p::ClientMetadata {
                name: #name,
                docs: #docs,
                callbacks: &[#(#metadata),*],
            };

            fn many(proxy: #p::ClientProxy) -> Self::Many {
                #proxy { proxy }
            }

            fn single(proxy: #p::SingleClientProxy) -> Self::Single {
                #proxy { proxy }
            }
        }
    }
}

fn callback(method: &MethodModel, p: &TokenStream) -> TokenStream {
    let ident = &method.ident;
    let wire = &method.wire_name;
    let docs = method.docs.lines().map(|line| quote!(#[doc = #line]));
    let params: Vec<_> = method
        .params
        .iter()
        .enumerate()
        .map(|(index, param)| {
            let name = if param.ident == "self" {
                format_ident!("__arg{}", index)
            } else {
                param.ident.clone()
            };
            let ty = &param.ty;
            (name, quote!(impl #p::AsArgument<#ty>))
        })
        .collect();
    let names = params.iter().map(|(name, _)| name);
    let declared = params.iter().map(|(name, ty)| quote!(#name: #ty));
    match &method.output.shape {
        Shape::Unit => quote! {
            #(#docs)*
            pub fn #ident(&self, #(#declared),*) -> impl #p::Future<Output = #p::Result<(), #p::LifetimeError>> + #p::Send + 'static {
                <K as #p::ProxyKind>::send(&self.proxy, #wire, (#(#names,)*))
            }
        },
        Shape::Value(result) | Shape::Stream { item: result, .. } => quote! {
            #(#docs)*
            ///
            /// A client result: only one connection can answer it, so this exists on
            /// single-connection proxies (`clients.caller()`, `clients.client(id)`).
            pub fn #ident(&self, #(#declared),*) -> #p::BoxFuture<#p::Result<#result, #p::ClientResultError>>
            where
                K: #p::ResultKind,
            {
                <K as #p::ResultKind>::invoke::<#result, _>(&self.proxy, #wire, (#(#names,)*))
            }
        },
    }
}

fn callback_metadata(method: &MethodModel, p: &TokenStream) -> TokenStream {
    let name = method.ident.to_string();
    let wire = &method.wire_name;
    let typescript_name = naming::typescript_name(&name);
    let docs = &method.docs;
    let parameters = method.params.iter().map(|param| {
        let name = param.ident.to_string();
        let param_ts = naming::typescript_name(&name);
        let ty = type_metadata(&param.ty, &param.ty, p);
        quote!(#p::ParameterMetadata { name: #name, typescript_name: #param_ts, source: #p::ParameterSource::Argument, ty: #ty })
    });
    let result = match &method.output.shape {
        Shape::Unit => quote!(#p::Option::None),
        Shape::Value(ty) | Shape::Stream { item: ty, .. } => {
            let ty = type_metadata(ty, ty, p);
            quote!(#p::Option::Some(#ty))
        }
    };
    quote! {
        #p::CallbackMetadata {
            name: #name,
            wire_name: #wire,
            typescript_name: #typescript_name,
            docs: #docs,
            parameters: &[#(#parameters),*],
            result: #result,
        }
    }
}

/// One arm of `Deliver::deliver`: bind the arguments, call the handler, box a client result.
fn delivery(trait_ident: &syn::Ident, method: &MethodModel, p: &TokenStream) -> TokenStream {
    let ident = &method.ident;
    let wire = &method.wire_name;
    let types = method.params.iter().map(|param| &param.ty);
    let names: Vec<_> = (0..method.params.len())
        .map(|index| format_ident!("__a{}", index))
        .collect();
    let call = quote!(<H as #trait_ident>::#ident(handler, #(#names),*).await);
    let result = match &method.output.shape {
        Shape::Unit => quote!({ #call; #p::Result::Ok(#p::Option::None) }),
        _ => quote!(#p::Result::Ok(#p::Option::Some(#p::Box::new(#call) as #p::BoxValue))),
    };
    quote! {
        if <str>::eq_ignore_ascii_case(target, #wire) {
            return #p::Option::Some(
                match <(#(#types,)*) as #p::FromArguments>::from_arguments(arguments) {
                    #p::Result::Ok((#(#names,)*)) => #p::Box::pin(async move { #result }),
                    #p::Result::Err(error) => #p::Box::pin(#p::ready(#p::Result::Err(error))),
                },
            );
        }
    }
}
