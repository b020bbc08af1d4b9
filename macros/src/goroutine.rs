//! `#[goroutine]` and `#[gort::preemptible]`.
//!
//! `#[goroutine(name = "...", stack_size = N, locked)] fn f(ARGS) -> T { BODY }`
//! becomes `fn f(ARGS) -> ::gort::JoinHandle<T>` whose body checks each
//! argument (`Send + 'static`, at the argument's span), then starts `BODY`
//! — with a preemption check at the top of every loop — as a goroutine
//! through `gort::Builder::spawn`. Parameters written as patterns become
//! `__gort_argN` in the signature and are destructured inside the
//! goroutine, so `mut x` and `(a, b): (u8, u8)` work. A method must take
//! `self` by value (`self`, `mut self`, `self: Box<Self>`, `self: Arc<Self>`):
//! the goroutine outlives the call.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::options::{self, Errors, GoSettings};
use crate::preempt;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand_inner(attr, item.clone()) {
        Ok(t) => t,
        Err(e) => with_item(e, item),
    }
}

/// The error, and the item as written so that its callers do not get
/// errors of their own ("cannot find function").
pub(crate) fn with_item(e: syn::Error, item: TokenStream) -> TokenStream {
    let e = e.to_compile_error();
    quote!(#e #item)
}

/// The checks shared by the attributes that turn a function into something
/// else: no `async`, no `const`, no C-variadics.
pub(crate) fn reject_qualifiers(f: &ItemFn, what: &str, async_hint: &str) -> Errors {
    let mut errors = Errors::default();
    if let Some(a) = &f.sig.asyncness {
        errors.push(syn::Error::new(a.span, format!("{what} cannot be used on an `async fn`: {async_hint}")));
    }
    if let Some(c) = &f.sig.constness {
        errors.push(syn::Error::new(
            c.span,
            format!("{what} cannot be used on a `const fn`: it runs at run time; remove `const`"),
        ));
    }
    if let Some(v) = &f.sig.variadic {
        errors.push(syn::Error::new(v.span(), format!("{what} cannot be used on a variadic function")));
    }
    errors
}

fn expand_inner(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let settings = GoSettings::from_list(options::parse_list.parse2(attr)?, "#[goroutine]")?;
    let mut f: ItemFn = syn::parse2(item)?;
    let mut errors = reject_qualifiers(
        &f,
        "#[goroutine]",
        "a goroutine is a plain function that blocks instead of awaiting; remove `async` and the `.await`s",
    );

    // Each parameter: the signature keeps a name, the goroutine gets the pattern.
    let mut checks = Vec::new();
    let mut unpack = Vec::new();
    for (i, arg) in f.sig.inputs.iter_mut().enumerate() {
        match arg {
            FnArg::Receiver(r) => {
                if r.reference.is_some() || matches!(&*r.ty, Type::Reference(_)) {
                    let what = if r.mutability.is_some() && r.reference.is_some() { "&mut self" } else { "&self" };
                    errors.push(syn::Error::new(
                        r.span(),
                        format!(
                            "#[goroutine] methods must take `self` by value, not `{what}`: the goroutine outlives \
                             this call, so it cannot borrow `self`; take `self` (on a clone, or `self: Arc<Self>`)"
                        ),
                    ));
                }
            }
            FnArg::Typed(pt) => {
                let sig_name = match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => pi.ident.clone(),
                    p => format_ident!("__gort_arg{}", i, span = p.span().resolved_at(Span::mixed_site())),
                };
                let local = format_ident!("__gort_arg{}_checked", i, span = Span::mixed_site());
                let span = options::span_of(&pt.pat);
                let check = quote_spanned!(span=> ::gort::__private::go_arg(::gort::__private::Value(#sig_name)));
                checks.push(quote!(let #local = #check;));
                let pat = &pt.pat;
                // A parameter only the `name`/`stack_size` expressions use
                // is used, though not in the body.
                let allow = if settings.name.is_some() || settings.stack_size.is_some() {
                    quote!(#[allow(unused_variables)])
                } else {
                    quote!()
                };
                unpack.push(quote!(#allow let #pat = #local.into_inner();));
                *pt.pat = Pat::Ident(syn::PatIdent {
                    attrs: Vec::new(),
                    by_ref: None,
                    mutability: None,
                    ident: sig_name,
                    subpat: None,
                });
            }
        }
    }
    errors.finish()?;

    preempt::instrument(&mut f.block);
    let stmts = &f.block.stmts;
    let (ret_ty, ret_span) = match &f.sig.output {
        ReturnType::Default => (quote!(()), f.sig.ident.span()),
        ReturnType::Type(_, t) => (t.to_token_stream(), options::span_of(t)),
    };
    // A closure cannot declare `-> impl Trait`; it infers it from the body.
    let closure_ret = if mentions_impl_trait(ret_ty.clone()) { quote!() } else { quote!(-> #ret_ty) };
    f.sig.output = syn::parse_quote_spanned!(ret_span=> -> ::gort::JoinHandle<#ret_ty>);
    let builder = settings.builder();
    let spawn = quote_spanned!(ret_span=> ::gort::__private::spawn);
    let body = quote! {{
        let __gort_builder = #builder;
        #(#checks)*
        #spawn(__gort_builder, move || #closure_ret {
            #(#unpack)*
            #(#stmts)*
        })
    }};
    f.block = Box::new(syn::parse2(body)?);
    Ok(f.into_token_stream())
}

/// `#[gort::preemptible]`: the same loop instrumentation, without a goroutine.
pub(crate) fn expand_preemptible(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = item.clone();
    let r = (|| -> syn::Result<TokenStream> {
        if !attr.is_empty() {
            return Err(syn::Error::new_spanned(&attr, "#[gort::preemptible] takes no options"));
        }
        let mut f: ItemFn = syn::parse2(item)?;
        if let Some(c) = &f.sig.constness {
            return Err(syn::Error::new(
                c.span,
                "#[gort::preemptible] cannot be used on a `const fn`: a preemption check runs at run time; remove `const`",
            ));
        }
        preempt::instrument(&mut f.block);
        Ok(f.into_token_stream())
    })();
    r.unwrap_or_else(|e| with_item(e, original))
}

/// Whether a type's tokens contain `impl` (an `impl Trait` a closure
/// cannot name).
pub(crate) fn mentions_impl_trait(ty: TokenStream) -> bool {
    ty.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "impl",
        proc_macro2::TokenTree::Group(g) => mentions_impl_trait(g.stream()),
        _ => false,
    })
}
