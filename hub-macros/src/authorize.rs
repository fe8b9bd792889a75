//! `#[authorize(...)]` on a hub trait (to connect, and for every method) or a method, and
//! `#[allow_anonymous]` on a method: parsed into requirements the generated code hands the
//! server as `hub_server::Authorization`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::ParseStream;
use syn::{Attribute, Ident, LitStr, Token};

use crate::ast::Errors;

/// The keys `#[authorize(...)]` takes.
const KEYS: &[&str] = &["role", "claim", "value", "policy"];

/// One requirement, as written.
#[derive(Clone)]
pub(crate) enum RequirementModel {
    /// `#[authorize]`: an authenticated user (every `#[authorize]` implies it).
    Authenticated,
    /// `role = "admin, ops"`: any of these roles.
    Roles(Vec<String>),
    /// `claim = "scope"` (with `value = "write"`).
    Claim(String, Option<String>),
    /// `policy = "name"`.
    Policy(String),
}

/// What a trait or a method says about authorization.
#[derive(Clone, Default)]
pub(crate) struct AuthModel {
    /// From its `#[authorize(...)]` attributes, all of which must hold.
    pub(crate) requirements: Vec<RequirementModel>,
    /// The span of `#[allow_anonymous]`, when given.
    pub(crate) allow_anonymous: Option<Span>,
    /// The span of the first `#[authorize]`, when given (for errors).
    pub(crate) span: Option<Span>,
}

impl AuthModel {
    /// `hub_server::Authorization::all([...])` with `inherited` (the trait's) first, unless the
    /// method allows anonymous callers.
    pub(crate) fn expand(&self, inherited: &AuthModel, p: &TokenStream) -> TokenStream {
        let requirements: Vec<&RequirementModel> = if self.allow_anonymous.is_some() {
            Vec::new()
        } else {
            inherited
                .requirements
                .iter()
                .chain(&self.requirements)
                .collect()
        };
        let items = requirements.iter().map(|requirement| match requirement {
            RequirementModel::Authenticated => quote!(#p::Requirement::Authenticated),
            RequirementModel::Roles(roles) => quote!(#p::Requirement::role([#(#roles),*])),
            RequirementModel::Claim(name, None) => quote!(#p::Requirement::claim(#name)),
            RequirementModel::Claim(name, Some(value)) => {
                quote!(#p::Requirement::claim_value(#name, #value))
            }
            RequirementModel::Policy(name) => quote!(#p::Requirement::policy(#name)),
        });
        quote!(#p::Authorization::all([#(#items),*]))
    }
}

/// Takes `#[authorize(...)]` and `#[allow_anonymous]` off `attrs` and parses them.
pub(crate) fn take(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> AuthModel {
    let mut model = AuthModel::default();
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if attr.path().is_ident("allow_anonymous") {
            if let Err(error) = attr.meta.require_path_only() {
                errors.at(
                    error.span(),
                    "`#[allow_anonymous]` takes no arguments; write it alone",
                );
            }
            model
                .allow_anonymous
                .get_or_insert(attr.path().segments[0].ident.span());
            continue;
        }
        if !attr.path().is_ident("authorize") {
            kept.push(attr);
            continue;
        }
        model
            .span
            .get_or_insert(attr.path().segments[0].ident.span());
        model.requirements.push(RequirementModel::Authenticated);
        if matches!(attr.meta, syn::Meta::Path(_)) {
            continue;
        }
        let parsed = attr.parse_args_with(|input: ParseStream<'_>| parse(input, errors));
        match parsed {
            Ok(requirements) => model.requirements.extend(requirements),
            Err(error) => errors.push(error),
        }
    }
    *attrs = kept;
    model
}

fn parse(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Vec<RequirementModel>> {
    let mut requirements = Vec::new();
    let mut claim: Option<(String, Span)> = None;
    let mut value: Option<LitStr> = None;
    while !input.is_empty() {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if !KEYS.iter().any(|known| key == known) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown key `{key}` in `#[authorize(...)]`; expected one of: `role = \"admin\"`, \
                     `claim = \"scope\"` (with `value = \"write\"`), `policy = \"name\"`, or nothing \
                     for any authenticated user"
                ),
            ));
        }
        input.parse::<Token![=]>()?;
        let literal: LitStr = input.parse()?;
        let text = literal.value();
        if text.trim().is_empty() {
            errors.at(
                literal.span(),
                format!("`{key}` cannot be empty; name the {key} required"),
            );
        }
        match key.to_string().as_str() {
            "role" => {
                let roles: Vec<String> = text
                    .split([',', ' '])
                    .filter(|role| !role.is_empty())
                    .map(str::to_owned)
                    .collect();
                if roles.is_empty() {
                    errors.at(
                        literal.span(),
                        "name at least one role, e.g. `role = \"admin\"`",
                    );
                } else {
                    requirements.push(RequirementModel::Roles(roles));
                }
            }
            "claim" => claim = Some((text, literal.span())),
            "value" => value = Some(literal),
            _ => requirements.push(RequirementModel::Policy(text)),
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    match (claim, value) {
        (Some((name, _)), value) => {
            requirements.push(RequirementModel::Claim(name, value.map(|v| v.value())))
        }
        (None, Some(value)) => errors.at(
            value.span(),
            "`value` goes with `claim`: write `claim = \"name\", value = \"...\"`",
        ),
        (None, None) => {}
    }
    Ok(requirements)
}
