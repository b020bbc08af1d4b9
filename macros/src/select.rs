//! `select!`: Go's `select` statement, in crossbeam-channel's grammar.
//!
//! ```text
//! select! {
//!     recv(CH) -> PAT => BODY,        PAT: Option<T> (None: closed and drained)
//!     recv(CH) => BODY,               value dropped
//!     send(CH, VALUE) => BODY,        (`-> PAT` accepted too; PAT binds `()`)
//!     default => BODY,                at most one default: never block
//!     default(DURATION) => BODY,      or: block at most DURATION
//! }
//! ```
//!
//! A BODY is a block (comma optional) or an expression followed by a comma
//! (optional after the last arm). CH is a `Chan`, `Sender`/`Receiver` or a
//! reference to one. As in Go, every CH and VALUE is evaluated once, in
//! source order, when the select starts.
//!
//! Expansion: each arm becomes a case value on the stack
//! (`::gort::chan::__select::{recv, send}`), all are passed as
//! `[&dyn Case; N]` to `::gort::chan::__select::select`, which returns the
//! chosen index (Go's `selectgo`), and a `match` runs that arm's body with
//! its pattern bound. Bodies are not closures: `break`, `continue`,
//! `return` and `?` act on the enclosing function and loops.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Pat, Token};

enum Kind {
    Recv(Expr),
    Send(Expr, Expr),
    Default(Option<Expr>),
}

struct Arm {
    kind: Kind,
    pat: Option<Pat>,
    body: Expr,
    span: Span,
}

struct Input {
    arms: Vec<Arm>,
}

impl Parse for Arm {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = if input.peek(Token![default]) {
            let kw: Token![default] = input.parse()?;
            Ident::new("default", kw.span)
        } else {
            input.parse().map_err(|e| syn::Error::new(e.span(), "expected `recv(..)`, `send(..)` or `default`"))?
        };
        let kind = match name.to_string().as_str() {
            "recv" => {
                let content;
                syn::parenthesized!(content in input);
                let ch: Expr = content.parse()?;
                if !content.is_empty() {
                    return Err(content.error("`recv` takes one channel: `recv(ch) -> v => ...`"));
                }
                Kind::Recv(ch)
            }
            "send" => {
                let content;
                syn::parenthesized!(content in input);
                let ch: Expr = content.parse()?;
                let _: Token![,] = content.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`send` takes a channel and a value: `send(ch, v) => ...`")
                })?;
                let v: Expr = content.parse()?;
                let _: Option<Token![,]> = content.parse()?;
                if !content.is_empty() {
                    return Err(content.error("`send` takes a channel and a value: `send(ch, v) => ...`"));
                }
                Kind::Send(ch, v)
            }
            "default" => {
                if input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in input);
                    Kind::Default(Some(content.parse()?))
                } else {
                    Kind::Default(None)
                }
            }
            _ => {
                return Err(syn::Error::new(name.span(), "expected `recv(..)`, `send(..)` or `default`"));
            }
        };
        let pat = if input.peek(Token![->]) {
            let arrow: Token![->] = input.parse()?;
            if matches!(kind, Kind::Default(_)) {
                return Err(syn::Error::new(arrow.spans[0], "`default` binds nothing: write `default => ...`"));
            }
            Some(Pat::parse_single(input)?)
        } else {
            None
        };
        let _: Token![=>] = input.parse()?;
        let body: Expr = if input.peek(syn::token::Brace) {
            let block: syn::Block = input.parse()?;
            let _: Option<Token![,]> = input.parse()?;
            Expr::Block(syn::ExprBlock { attrs: Vec::new(), label: None, block })
        } else {
            let e: Expr = input.parse()?;
            if !input.is_empty() {
                let _: Token![,] =
                    input.parse().map_err(|e| syn::Error::new(e.span(), "expected `,` after the arm"))?;
            }
            e
        };
        Ok(Arm { kind, pat, body, span: name.span() })
    }
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut arms = Vec::new();
        while !input.is_empty() {
            arms.push(input.parse()?);
        }
        Ok(Input { arms })
    }
}

/// Expands `select! { ... }`.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match syn::parse2::<Input>(input) {
        Ok(i) => generate(i).unwrap_or_else(syn::Error::into_compile_error),
        Err(e) => e.into_compile_error(),
    }
}

fn generate(input: Input) -> syn::Result<TokenStream> {
    let rt = quote!(::gort::chan::__select);
    if input.arms.is_empty() {
        return Ok(quote!(#rt::block()));
    }
    let mut default: Option<(Option<Expr>, Expr)> = None;
    let mut setup = Vec::new();
    let mut cases = Vec::new();
    let mut arms = Vec::new();
    for arm in input.arms {
        let Arm { kind, pat, body, span } = arm;
        let i = cases.len();
        let ch = format_ident!("__gort_ch{}", i, span = Span::mixed_site());
        let case = format_ident!("__gort_case{}", i, span = Span::mixed_site());
        match kind {
            Kind::Default(timeout) => {
                if default.is_some() {
                    return Err(syn::Error::new(span, "`select!` has more than one `default` arm"));
                }
                default = Some((timeout, body));
                continue;
            }
            Kind::Recv(c) => {
                setup.push(quote_spanned! {c.span()=>
                    let #ch = &(#c);
                    let #case = #rt::recv(#ch);
                });
                let bind = match pat {
                    Some(p) => quote!(let #p = #case.take();),
                    None => quote!(let _ = #case.take();),
                };
                arms.push(quote! {
                    ::core::option::Option::Some(#i) => { #bind #body }
                });
            }
            Kind::Send(c, v) => {
                setup.push(quote_spanned! {c.span()=>
                    let #ch = &(#c);
                    let #case = #rt::send(#ch, #v);
                });
                let bind = match pat {
                    Some(p) => quote!(let #p = ();),
                    None => quote!(),
                };
                arms.push(quote! {
                    ::core::option::Option::Some(#i) => { #bind #body }
                });
            }
        }
        cases.push(case);
    }
    let n = cases.len();
    let sel = Ident::new("__gort_sel", Span::mixed_site());
    let (block, fallback) = match default {
        None => (quote!(#rt::blocking()), quote!(_ => ::core::unreachable!("select returned no case"))),
        Some((None, body)) => (quote!(#rt::nonblocking()), quote!(_ => { #body })),
        Some((Some(t), body)) => (quote!(#rt::deadline(#t)), quote!(_ => { #body })),
    };
    Ok(quote! {{
        #(#setup)*
        let #sel: [&dyn #rt::Case; #n] = [#(&#cases as &dyn #rt::Case),*];
        match #rt::select(#sel, #block) {
            #(#arms)*
            #fallback
        }
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(s: &str) -> String {
        expand(s.parse().unwrap()).to_string()
    }

    #[test]
    fn parses_all_arm_forms() {
        let out = expand_str(
            "recv(a) -> v => { f(v) } recv(&b) => g(), send(c, 1) => {}, send(d, 2) -> r => h(r), default => 0",
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("nonblocking"), "{out}");
    }

    #[test]
    fn empty_blocks_forever() {
        assert!(expand_str("").contains("block ()"));
    }

    #[test]
    fn two_defaults_are_an_error() {
        assert!(expand_str("default => 1, default => 2").contains("more than one `default`"));
    }

    #[test]
    fn timeout_default() {
        assert!(expand_str("recv(a) -> v => 1, default(d) => 2").contains("deadline"));
    }

    #[test]
    fn unknown_arm_is_an_error() {
        assert!(expand_str("foo(a) => 1").contains("expected `recv(..)`"));
    }
}
