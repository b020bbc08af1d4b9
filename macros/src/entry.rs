//! `#[gort::main]` and `#[gort::test]`: a function body run as a goroutine.
//!
//! `#[gort::main(gomaxprocs = N)] fn main() -> R { BODY }` becomes
//! `fn main() -> ExitCode { ::gort::__private::main(Some(N), || -> R { BODY }) }`:
//! the body runs as goroutine 1 through `gort::run`, `R` is reported as std
//! reports a `main` result (`Error: {e:?}`, exit code 1), and a successful
//! main exits the process at once without waiting for other goroutines.
//!
//! `#[gort::test(gomaxprocs = N)] fn t() -> R { BODY }` becomes a `#[test]`
//! whose body is spawned as a goroutine on the shared runtime and joined; a
//! panic comes back with its payload (so `#[should_panic(expected = ...)]`
//! works), and an `Err` is rendered inside the goroutine (errors need not
//! be `Send`). With `gomaxprocs`, the test body runs in a child process
//! started with `GOMAXPROCS=N`, since the setting is process-wide.
//!
//! Both bodies are goroutines, so their loops get preemption checks as in
//! `#[goroutine]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, ReturnType};

use crate::goroutine::{mentions_impl_trait, reject_qualifiers};
use crate::options::{self, Errors, Setting};
use crate::preempt;

/// Reads `gomaxprocs = N`, the only option of both attributes.
fn gomaxprocs(attr: TokenStream, what: &str) -> syn::Result<Option<Expr>> {
    let mut procs = None;
    let mut errors = Errors::default();
    for Setting { key, value } in options::parse_list.parse2(attr)? {
        match value {
            Some(v) if key == "gomaxprocs" => errors.set_once(&mut procs, v, &key),
            None if key == "gomaxprocs" => {
                errors.push(syn::Error::new(key.span(), "`gomaxprocs` needs a value: write `gomaxprocs = 4`"))
            }
            _ => errors
                .push(syn::Error::new(key.span(), format!("unknown {what} option `{key}`: expected `gomaxprocs = N`"))),
        }
    }
    errors.finish()?;
    Ok(procs)
}

/// The checks both attributes share: a plain function without parameters.
fn check_signature(f: &ItemFn, what: &str, args_hint: &str) -> Errors {
    let mut errors = reject_qualifiers(
        f,
        what,
        "gort runs blocking code in goroutines, there is no executor to await on; remove `async` and the `.await`s",
    );
    if !f.sig.inputs.is_empty() {
        errors.push(syn::Error::new(f.sig.inputs.span(), format!("{what} functions take no arguments: {args_hint}")));
    }
    if !f.sig.generics.params.is_empty() || f.sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new(f.sig.generics.span(), format!("{what} functions cannot be generic")));
    }
    errors
}

/// `|| -> R { BODY }` with the loops instrumented (no `-> R` for `impl Trait`).
fn body_closure(f: &mut ItemFn) -> TokenStream {
    preempt::instrument(&mut f.block);
    let block = &f.block;
    match &f.sig.output {
        ReturnType::Type(_, t) if !mentions_impl_trait(t.to_token_stream()) => quote!(move || -> #t #block),
        // `-> ()` spelled out: a body that only panics must not make the
        // closure's type fall back from `!`.
        ReturnType::Default => quote!(move || -> () #block),
        _ => quote!(move || #block),
    }
}

fn option_tokens(e: &Option<Expr>) -> TokenStream {
    match e {
        Some(e) => quote_spanned!(options::span_of(e)=> ::core::option::Option::Some(#e)),
        None => quote!(::core::option::Option::None),
    }
}

pub(crate) fn expand_main(attr: TokenStream, item: TokenStream) -> TokenStream {
    // On an error, a stand-in `fn main() {}` spares the user rustc's
    // "`main` function not found" on top of the real message.
    let stand_in = syn::parse2::<ItemFn>(item.clone()).ok().map(|f| {
        let (vis, ident) = (&f.vis, &f.sig.ident);
        quote!(#vis fn #ident() {})
    });
    let r = (|| -> syn::Result<TokenStream> {
        let procs = gomaxprocs(attr, "#[gort::main]")?;
        let mut f: ItemFn = syn::parse2(item)?;
        check_signature(&f, "#[gort::main]", "read the command line with `std::env::args()`").finish()?;
        let closure = body_closure(&mut f);
        let procs = option_tokens(&procs);
        let ItemFn { attrs, vis, sig, .. } = &f;
        let ident = &sig.ident;
        Ok(quote! {
            #(#attrs)*
            #vis fn #ident() -> ::std::process::ExitCode {
                ::gort::__private::main(#procs, #closure)
            }
        })
    })();
    r.unwrap_or_else(|e| {
        let e = e.to_compile_error();
        quote!(#e #stand_in)
    })
}

pub(crate) fn expand_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let r = (|| -> syn::Result<TokenStream> {
        let procs = gomaxprocs(attr, "#[gort::test]")?;
        let mut f: ItemFn = syn::parse2(item)?;
        check_signature(&f, "#[gort::test]", "a test gets nothing from its caller").finish()?;
        let mut errors = Errors::default();
        for a in &f.attrs {
            if a.path().is_ident("test") {
                errors.push(syn::Error::new(
                    a.span(),
                    "#[gort::test] already makes this a test: remove the extra `#[test]`",
                ));
            }
        }
        errors.finish()?;
        let closure = body_closure(&mut f);
        let procs = option_tokens(&procs);
        let ItemFn { attrs, vis, sig, .. } = &f;
        let ident = &sig.ident;
        // `#[should_panic]` needs a test that returns `()` as written, so the
        // return type is spelled only when the user wrote one.
        let output = match &sig.output {
            ReturnType::Default => quote!(),
            ReturnType::Type(arrow, t) => {
                quote_spanned!(options::span_of(t)=> #arrow <#t as ::gort::__private::TestOutcome>::Output)
            }
        };
        Ok(quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis fn #ident() #output {
                ::gort::__private::test(
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    #procs,
                    #closure,
                )
            }
        })
    })();
    r.unwrap_or_else(|e| e.to_compile_error())
}
