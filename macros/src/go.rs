//! `go!`: Go's `go` statement.
//!
//! ```text
//! go!( [SETTINGS ;] CALL )        CALL = f(a, b) | recv.method(a)   (arguments evaluated now)
//! go!( [SETTINGS ;] CLOSURE )     move || body
//! go! { [SETTINGS ;] STMTS }      a move block
//! SETTINGS = name = EXPR, stack_size = EXPR, locked   (any subset, any order)
//! ```
//!
//! A proc macro cannot see whether it was called with `(…)` or `{…}`, so
//! the form is read from the tokens: a single call, method call or closure
//! expression without a trailing `;` is one of the first two forms,
//! anything else is a block. (`go! { f(x) }` therefore evaluates `x` now,
//! exactly like Go's `go f(x)`; write `go! { f(x); }` to evaluate it in the
//! goroutine.) A first segment of `key = value` items ending in `;` is read
//! as settings.
//!
//! Every value that moves into the goroutine — the function value, the
//! receiver, each argument — goes through `::gort::__private::go_arg`, which
//! checks `Send + 'static` at that value's span; the closures and blocks go
//! through the same check as a whole.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Block, Expr, Stmt, Token};

use crate::options::{self, GoSettings, Setting};

struct GoInput {
    settings: GoSettings,
    stmts: Vec<Stmt>,
}

/// Whether `input` starts with `key = value, … ;` (or the bare `locked`).
fn settings_prefix(input: ParseStream) -> Option<Vec<Setting>> {
    let fork = input.fork();
    let list = syn::punctuated::Punctuated::<Setting, Token![,]>::parse_separated_nonempty_with(&fork, |s| {
        // A plain identifier (not a keyword such as `let`) starts a setting.
        let key: syn::Ident = s.parse()?;
        let value = if s.peek(Token![=]) && !s.peek(Token![==]) && !s.peek(Token![=>]) {
            s.parse::<Token![=]>()?;
            Some(s.parse()?)
        } else {
            None
        };
        Ok(Setting { key, value })
    })
    .ok()?;
    if !fork.peek(Token![;]) {
        return None;
    }
    let looks_like_settings = list.iter().all(|s| s.value.is_some() || s.key == "locked");
    if !looks_like_settings {
        return None;
    }
    // Commit: advance the real stream past the settings and the `;`.
    let list = options::parse_list_until_semi(input).ok()?;
    Some(list)
}

impl Parse for GoInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let settings = match settings_prefix(input) {
            Some(list) => GoSettings::from_list(list, "go!")?,
            None => GoSettings::default(),
        };
        let stmts = Block::parse_within(input)?;
        Ok(GoInput { settings, stmts })
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match syn::parse2::<GoInput>(input) {
        Ok(g) => expand_parsed(g),
        Err(e) => e.to_compile_error(),
    }
}

fn expand_parsed(GoInput { settings, stmts }: GoInput) -> TokenStream {
    let builder = settings.builder();
    let start = quote!(::gort::__private::go);
    if stmts.is_empty() {
        return syn::Error::new(
            Span::call_site(),
            "go! needs something to run: `go!(f(x))`, `go!(move || ...)` or `go! { ... }`",
        )
        .to_compile_error();
    }
    if let [Stmt::Expr(e, None)] = stmts.as_slice() {
        match e {
            Expr::Call(call) => {
                let f = go_arg(&call.func, format_ident!("__gort_f", span = Span::mixed_site()));
                let (lets, args) = go_args(call.args.iter());
                let (f_let, f_val) = f;
                return quote! {{
                    #f_let
                    #(#lets)*
                    #start(#builder, move || {
                        let _ = (#f_val)(#(#args),*);
                    })
                }};
            }
            Expr::MethodCall(mc) => {
                let (r_let, r_val) = go_arg(&mc.receiver, format_ident!("__gort_recv", span = Span::mixed_site()));
                let (lets, args) = go_args(mc.args.iter());
                let method = &mc.method;
                let turbofish = &mc.turbofish;
                let dot = mc.dot_token;
                return quote! {{
                    #r_let
                    #(#lets)*
                    #start(#builder, move || {
                        let _ = #r_val #dot #method #turbofish(#(#args),*);
                    })
                }};
            }
            Expr::Closure(c) => {
                let call = quote_spanned!(c.span()=> #start);
                return quote!(#call(#builder, #c));
            }
            _ => {}
        }
    }
    let span = stmts.first().map_or_else(Span::call_site, |s| s.span());
    let call = quote_spanned!(span=> #start);
    quote! {
        #call(#builder, move || {
            let _ = { #(#stmts)* };
        })
    }
}

/// `let NAME = ::gort::__private::go_arg(EXPR);` and the expression that
/// takes the value back out inside the goroutine.
fn go_arg(e: &Expr, name: syn::Ident) -> (TokenStream, TokenStream) {
    let span = options::span_of(e);
    let check = quote_spanned!(span=> ::gort::__private::go_arg(::gort::__private::Value(#e)));
    (quote!(let #name = #check;), quote!(#name.into_inner()))
}

fn go_args<'a>(args: impl Iterator<Item = &'a Expr>) -> (Vec<TokenStream>, Vec<TokenStream>) {
    args.enumerate().map(|(i, a)| go_arg(a, format_ident!("__gort_a{}", i, span = Span::mixed_site()))).unzip()
}
