//! The `key = value` settings shared by the macros: `name = "…"`,
//! `stack_size = N`, `locked` (goroutine settings) and `gomaxprocs = N`
//! (`#[gort::main]`). Unknown and duplicated keys are errors at the key.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

/// One `key` or `key = value` item.
pub(crate) struct Setting {
    pub key: Ident,
    pub value: Option<Expr>,
}

impl Parse for Setting {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Setting { key, value })
    }
}

/// Parses a comma-separated list of settings (a trailing comma is allowed).
pub(crate) fn parse_list(input: ParseStream) -> syn::Result<Vec<Setting>> {
    Ok(Punctuated::<Setting, Token![,]>::parse_terminated(input)?.into_iter().collect())
}

/// What a goroutine-starting macro was asked for: the parts of a
/// `gort::Builder` call chain.
#[derive(Default)]
pub(crate) struct GoSettings {
    pub name: Option<Expr>,
    pub stack_size: Option<Expr>,
    pub locked: Option<Ident>,
}

impl GoSettings {
    /// Validates `list` for `what` (`#[goroutine]` or `go!`).
    pub fn from_list(list: Vec<Setting>, what: &str) -> syn::Result<GoSettings> {
        let mut s = GoSettings::default();
        let mut errors = Errors::default();
        for Setting { key, value } in list {
            let k = key.to_string();
            match (k.as_str(), value) {
                ("name", Some(v)) => errors.set_once(&mut s.name, v, &key),
                ("stack_size", Some(v)) => errors.set_once(&mut s.stack_size, v, &key),
                ("locked", None) => errors.set_once(&mut s.locked, key.clone(), &key),
                ("locked", Some(_)) => errors.push(syn::Error::new(
                    key.span(),
                    format!(
                        "`locked` takes no value: write `{}` for a goroutine born locked to a thread of its own",
                        if what == "go!" { "go!(locked; f())" } else { "#[goroutine(locked)]" }
                    ),
                )),
                ("name" | "stack_size", None) => errors.push(syn::Error::new(
                    key.span(),
                    format!(
                        "`{k}` needs a value: write `{k} = {}`",
                        if k == "name" { "\"worker\"" } else { "1 << 20" }
                    ),
                )),
                _ => {
                    let hint = if what == "go!" {
                        format!(" (a `go!` block cannot start with `{k} = ...;`, which reads as settings: put that statement in braces)")
                    } else {
                        String::new()
                    };
                    errors.push(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown {what} option `{k}`: expected `name = \"...\"`, `stack_size = BYTES` or `locked`{hint}"
                        ),
                    ))
                }
            }
        }
        errors.finish()?;
        Ok(s)
    }

    /// `::gort::Builder::new().name(…).stack_size(…).locked()`.
    pub fn builder(&self) -> TokenStream {
        let mut b = quote!(::gort::Builder::new());
        if let Some(name) = &self.name {
            b = quote_spanned!(span_of(name)=> #b.name(::std::convert::Into::<::std::string::String>::into(#name)));
        }
        if let Some(size) = &self.stack_size {
            b = quote_spanned!(span_of(size)=> #b.stack_size(#size));
        }
        if let Some(locked) = &self.locked {
            b = quote_spanned!(locked.span()=> #b.locked());
        }
        b
    }
}

/// The span of an expression's first token (the best stable Rust offers).
pub(crate) fn span_of(e: &impl quote::ToTokens) -> Span {
    e.to_token_stream().into_iter().next().map_or_else(Span::call_site, |t| t.span())
}

/// Collects every error of a macro input so the user sees them all at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// Stores `v` in `slot` unless `key` was already given.
    pub fn set_once<T>(&mut self, slot: &mut Option<T>, v: T, key: &Ident) {
        if slot.is_some() {
            self.push(syn::Error::new(key.span(), format!("duplicate option `{key}`: give it once")));
        } else {
            *slot = Some(v);
        }
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Parses settings up to and including a `;` (see `go!`).
pub(crate) fn parse_list_until_semi(input: ParseStream) -> syn::Result<Vec<Setting>> {
    let list = Punctuated::<Setting, Token![,]>::parse_separated_nonempty(input)?;
    input.parse::<Token![;]>()?;
    Ok(list.into_iter().collect())
}
