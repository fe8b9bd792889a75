//! Attribute parsing: `#[hub(route = "/chat", client = ChatClient, crate = path)]` on a hub trait,
//! `#[hub_client(crate = path)]` on a client-callback trait, `#[hub(name = "Wire")]` on methods.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Path, Token};

use crate::ast::{Errors, TraitKind};

/// The keys a hub trait's attribute takes.
const HUB_KEYS: &[&str] = &["route", "client", "crate"];
/// The keys a client-callback trait's attribute takes.
const CLIENT_KEYS: &[&str] = &["crate"];
/// The keys a method's `#[hub(...)]` takes in a hub trait.
const METHOD_KEYS: &[&str] = &["name", "on_connected", "on_disconnected"];
/// The keys a callback's `#[hub(...)]` takes in a client-callback trait.
const CALLBACK_KEYS: &[&str] = &["name"];

/// What `#[hub(...)]` or `#[hub_client(...)]` said about the trait.
#[derive(Default)]
pub(crate) struct TraitArgs {
    /// `route = "/chat"`.
    pub(crate) route: Option<LitStr>,
    /// `client = ChatClient`: the client-callback trait.
    pub(crate) client: Option<Path>,
    /// `crate = path`: where `hub_server` is, when renamed.
    pub(crate) krate: Option<Path>,
}

/// What `#[hub(...)]` on a method said.
#[derive(Default)]
pub(crate) struct MethodArgs {
    /// `name = "Wire"`: the wire name, overriding the PascalCase rule.
    pub(crate) name: Option<LitStr>,
    /// `on_connected` / `on_disconnected`: the method is a connection hook.
    pub(crate) hook: Option<Hook>,
}

/// A connection hook, with the span of its key.
#[derive(Clone, Copy)]
pub(crate) enum Hook {
    /// Runs after each handshake.
    Connected(Span),
    /// Runs when each connection ends.
    Disconnected(Span),
}

/// Parses the trait attribute's arguments; `keys` says which are allowed.
pub(crate) fn trait_args(
    tokens: TokenStream,
    client_trait: bool,
    errors: &mut Errors,
) -> TraitArgs {
    let keys = if client_trait { CLIENT_KEYS } else { HUB_KEYS };
    let attribute = if client_trait { "hub_client" } else { "hub" };
    let mut args = TraitArgs::default();
    let parser = |input: ParseStream<'_>| {
        parse_pairs(input, keys, attribute, |key, input| {
            match key.to_string().as_str() {
                "route" => set(&mut args.route, key, input.parse()?),
                "client" => set(&mut args.client, key, input.parse()?),
                "crate" => set(&mut args.krate, key, parse_path(input)?),
                _ => Ok(()),
            }
        })
    };
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    if let Some(route) = &args.route {
        if !route.value().starts_with('/') {
            errors.push(syn::Error::new(
                route.span(),
                "a hub route is a path that starts with `/`, e.g. `route = \"/chat\"`",
            ));
        }
    }
    args
}

/// Takes the `#[hub(...)]` attributes off a method and parses them.
pub(crate) fn method_args(
    kind: TraitKind,
    attrs: &mut Vec<Attribute>,
    errors: &mut Errors,
) -> MethodArgs {
    let keys = if kind == TraitKind::Hub {
        METHOD_KEYS
    } else {
        CALLBACK_KEYS
    };
    let mut args = MethodArgs::default();
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if !attr.path().is_ident("hub") {
            kept.push(attr);
            continue;
        }
        let result = attr.parse_args_with(|input: ParseStream<'_>| {
            parse_pairs(input, keys, "hub", |key, input| {
                match key.to_string().as_str() {
                    "on_connected" | "on_disconnected" => {
                        if args.hook.is_some() {
                            return Err(syn::Error::new(
                                key.span(),
                                "a method is one hook at most; keep one of `on_connected`, `on_disconnected`",
                            ));
                        }
                        args.hook = Some(if key == "on_connected" {
                            Hook::Connected(key.span())
                        } else {
                            Hook::Disconnected(key.span())
                        });
                        Ok(())
                    }
                    "name" => {
                        let name: LitStr = input.parse()?;
                        if name.value().is_empty() {
                            return Err(syn::Error::new(
                                name.span(),
                                "a wire name cannot be empty; give the name clients invoke",
                            ));
                        }
                        set(&mut args.name, key, name)
                    }
                    _ => Ok(()),
                }
            })
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    *attrs = kept;
    args
}

/// Parses `key = value, …`, rejecting unknown and repeated keys.
fn parse_pairs(
    input: ParseStream<'_>,
    keys: &[&str],
    attribute: &str,
    mut value: impl FnMut(&Ident, ParseStream<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    while !input.is_empty() {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if !keys.iter().any(|known| key == known) {
            let expected = keys
                .iter()
                .map(|known| format!("`{known}`"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown key `{key}` in `#[{attribute}(...)]`; expected one of: {expected}"
                ),
            ));
        }
        if key == "on_connected" || key == "on_disconnected" {
            value(&key, input)?;
        } else {
            input.parse::<Token![=]>()?;
            value(&key, input)?;
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

fn parse_path(input: ParseStream<'_>) -> syn::Result<Path> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        lit.parse()
    } else {
        Path::parse_mod_style(input)
    }
}

fn set<T: Spanned>(slot: &mut Option<T>, key: &Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` is given twice; keep one"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// The path generated code reaches the runtime through: `::hub_server` unless `crate = …` says.
pub(crate) fn runtime_path(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(path) => quote::quote!(#path),
        None => quote::quote_spanned!(Span::call_site()=> ::hub_server),
    }
}
