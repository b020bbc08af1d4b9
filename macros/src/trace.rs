//! `#[derive(Trace)]`: reports the `Gc` handles a struct or enum owns.
//!
//! ```text
//! #[derive(Trace)]
//! #[trace(unsafe_drop)]              optional: the type may implement `Drop`
//! struct S<T> {
//!     a: Vec<Gc<T>>,                 traced
//!     #[trace(skip)]
//!     b: Arc<Gc<T>>,                 not traced: its handles stay roots
//! }
//! ```
//!
//! Expansion, for structs (named, tuple, unit) and enums:
//!
//! ```text
//! unsafe impl<T> ::gort::gc::Trace for S<T> where T: ::gort::gc::Trace {
//!     fn trace(&self, __t: &mut ::gort::gc::Tracer<'_>) {
//!         <Vec<Gc<T>> as ::gort::gc::Trace>::trace(&self.a, __t);   // spanned at the type
//!     }
//!     fn holds_no_handles() -> bool {                                // hidden
//!         true && (&&::gort::gc::NoHandlesProbe::<Vec<Gc<T>>>::NEW).holds_no_handles()
//!     }
//! }
//! impl<T> ::gort::gc::MustNotImplementDrop_…  for S<T> {}
//! ```
//!
//! An enum matches `self` and traces the bound fields of each variant.
//! Each call is spanned at its field's type, so a field whose type has no
//! `Trace` impl is an error at that field. Type parameters that appear in
//! a traced field get a `T: Trace` bound (not those only in skipped fields
//! or in `PhantomData`); an associated type used in a traced field
//! (`I::Item`) gets a bound of its own. The second impl conflicts with
//! gort's blanket `impl<T: Drop> MustNotImplementDrop_… for T`, so a
//! `Drop` impl on the type is a compile error unless the type says
//! `#[trace(unsafe_drop)]` (the sweep runs the drop glue of all garbage
//! before freeing any of it: a `Drop` that dereferences a `Gc` could reach
//! an object already dropped).
//!
//! Misuse — unknown or repeated options, an option in the wrong place,
//! a union — is an error at the offending token. The impl is then still
//! emitted, with an empty `trace`, so uses of the type elsewhere do not
//! add errors of their own.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Data, DeriveInput, Fields, Generics, Ident, Member, Type, TypePath, WherePredicate};

use crate::options::Errors;

/// The name of gort's hidden trait that a type with a `Drop` impl cannot
/// implement (gort defines it in `gc/impls.rs`).
const NO_DROP_TRAIT: &str = "MustNotImplementDrop_UseTraceUnsafeDropIfDropNeverDereferencesAGc";

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match syn::parse2::<DeriveInput>(input) {
        Ok(item) => expand_item(item),
        Err(e) => e.to_compile_error(),
    }
}

/// Where a `#[trace(...)]` attribute was written.
#[derive(Clone, Copy)]
enum Place {
    Type,
    Variant,
    Field,
}

/// The options of one type or field.
#[derive(Default)]
struct Options {
    skip: Option<Ident>,
    unsafe_drop: Option<Ident>,
}

/// Reads every `#[trace(...)]` of `attrs`, reporting misuse to `errors`.
fn parse_options(attrs: &[Attribute], place: Place, errors: &mut Errors) -> Options {
    let mut opts = Options::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        if let Place::Variant = place {
            errors.push(syn::Error::new(
                attr.path().span(),
                "`#[trace(...)]` does not go on an enum variant: put `#[trace(skip)]` on each of its fields not to trace",
            ));
            continue;
        }
        let (usage, meaning) = match place {
            Place::Field => ("`#[trace(skip)]`", "the field is not traced"),
            _ => ("`#[trace(unsafe_drop)]`", "allows a `Drop` impl that never dereferences a `Gc`"),
        };
        if let syn::Meta::Path(_) | syn::Meta::NameValue(_) = attr.meta {
            errors.push(syn::Error::new(attr.path().span(), format!("expected {usage} ({meaning})")));
            continue;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            let Some(key) = meta.path.get_ident().cloned() else {
                return Err(meta.error(format!("unknown trace option: expected {usage}")));
            };
            if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
                return Err(meta.error(format!("`{key}` takes no value: write {usage}")));
            }
            match (key.to_string().as_str(), place) {
                ("skip", Place::Field) => errors.set_once(&mut opts.skip, key.clone(), &key),
                ("unsafe_drop", Place::Type) => errors.set_once(&mut opts.unsafe_drop, key.clone(), &key),
                ("skip", _) => errors.push(syn::Error::new(
                    key.span(),
                    "`skip` is a field option: put `#[trace(skip)]` on each field not to trace",
                )),
                ("unsafe_drop", _) => errors.push(syn::Error::new(
                    key.span(),
                    "`unsafe_drop` is a type option: put `#[trace(unsafe_drop)]` next to `#[derive(Trace)]`",
                )),
                (k, Place::Field) => errors.push(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown trace option `{k}` on a field: expected `skip` (the field is not traced and the \
                         handles in it stay roots)"
                    ),
                )),
                (k, _) => errors.push(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown trace option `{k}` on a type: expected `unsafe_drop` (allows a `Drop` impl that \
                         never dereferences a `Gc`)"
                    ),
                )),
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    opts
}

/// One field to trace: how to reach it and where its type is written.
struct Traced {
    member: Member,
    ty: Type,
}

fn traced_fields(fields: &Fields, errors: &mut Errors) -> Vec<Traced> {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if parse_options(&f.attrs, Place::Field, errors).skip.is_some() {
            continue;
        }
        // The whole call, `self.field` included, is spanned at the type: an
        // expression spanning two places would be reported at the derive.
        let span = f.ty.span();
        let member = match &f.ident {
            Some(id) => {
                let mut id = id.clone();
                id.set_span(span);
                Member::Named(id)
            }
            None => Member::Unnamed(syn::Index { index: i as u32, span }),
        };
        out.push(Traced { member, ty: f.ty.clone() });
    }
    out
}

/// `<TYPE as ::gort::gc::Trace>::trace(EXPR, __t);`, spanned at the field's
/// type: a missing impl is then reported at the field, underlining its
/// whole type.
fn trace_call(ty: &Type, expr: TokenStream) -> TokenStream {
    quote_spanned!(ty.span()=> <#ty as ::gort::gc::Trace>::trace(#expr, __t);)
}

fn expand_item(item: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let type_opts = parse_options(&item.attrs, Place::Type, &mut errors);
    let (body, traced_types) = match &item.data {
        Data::Struct(s) => {
            let fields = traced_fields(&s.fields, &mut errors);
            let calls = fields.iter().map(|f| {
                let m = &f.member;
                trace_call(&f.ty, quote!(&self.#m))
            });
            (quote!(#(#calls)*), fields.into_iter().map(|f| f.ty).collect::<Vec<_>>())
        }
        Data::Enum(e) => {
            let mut types = Vec::new();
            let mut arms = Vec::new();
            for v in &e.variants {
                parse_options(&v.attrs, Place::Variant, &mut errors);
                let fields = traced_fields(&v.fields, &mut errors);
                let name = &v.ident;
                let bindings: Vec<Ident> =
                    fields.iter().enumerate().map(|(i, f)| format_ident!("__f{}", i, span = f.ty.span())).collect();
                let members = fields.iter().map(|f| &f.member);
                let calls = fields.iter().zip(&bindings).map(|(f, b)| trace_call(&f.ty, b.to_token_stream()));
                arms.push(quote!(Self::#name { #(#members: #bindings,)* .. } => { #(#calls)* }));
                types.extend(fields.into_iter().map(|f| f.ty));
            }
            let body = if types.is_empty() {
                // No variant holds anything to trace (or there are no variants).
                TokenStream::new()
            } else {
                quote!(match self { #(#arms)* })
            };
            (body, types)
        }
        Data::Union(u) => {
            errors.push(syn::Error::new(
                u.union_token.span,
                "`#[derive(Trace)]` cannot be used on a union: the collector cannot tell which field holds a \
                 value; use an enum, or a struct with the union field marked `#[trace(skip)]`",
            ));
            return errors.finish().unwrap_err().to_compile_error();
        }
    };

    let name = &item.ident;
    let generics = with_trace_bounds(&item.generics, &traced_types);
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    if let Err(e) = errors.finish() {
        // The impl still exists, so uses of the type add no errors of their own.
        let e = e.to_compile_error();
        return quote! {
            #e
            #[automatically_derived]
            unsafe impl #impl_g ::gort::gc::Trace for #name #ty_g #where_c {
                fn trace(&self, _: &mut ::gort::gc::Tracer<'_>) {}
            }
        };
    }
    let no_drop = if type_opts.unsafe_drop.is_some() {
        TokenStream::new()
    } else {
        let helper = Ident::new(NO_DROP_TRAIT, Span::call_site());
        let (impl_g, ty_g, where_c) = item.generics.split_for_impl();
        quote! {
            // Conflicts with gort's `impl<T: Drop + ?Sized> #helper for T`: a
            // `Drop` impl on this type is an error without `#[trace(unsafe_drop)]`.
            #[automatically_derived]
            impl #impl_g ::gort::gc::#helper for #name #ty_g #where_c {}
        }
    };
    // A field's type may be unsized (`str` last): asked through gort's
    // probe, which answers `false` for it.
    let probes = traced_types.iter().map(|ty| quote!((&&::gort::gc::NoHandlesProbe::<#ty>::NEW).holds_no_handles()));
    // SAFETY (of the generated impl): it calls `Trace::trace` once on each
    // field not marked `#[trace(skip)]`, and on nothing else; each field's
    // own impl reports the handles in it. A skipped field's handles are not
    // reported, which keeps them roots. `holds_no_handles` is true only if
    // every traced field's type says its values hold none, so `trace` then
    // reports nothing.
    quote! {
        #[automatically_derived]
        unsafe impl #impl_g ::gort::gc::Trace for #name #ty_g #where_c {
            #[inline]
            fn trace(&self, __t: &mut ::gort::gc::Tracer<'_>) {
                #body
            }

            // Unused if the type is unsized.
            #[allow(dead_code)]
            #[inline]
            fn holds_no_handles() -> bool {
                #[allow(unused_imports)]
                use ::gort::gc::{ProbeAny as _, ProbeSized as _};
                true #(&& #probes)*
            }
        }
        #no_drop
    }
}

/// `generics` plus a `Trace` bound for each type parameter used in a
/// traced field and each associated type (`I::Item`) used in one.
fn with_trace_bounds(generics: &Generics, traced: &[Type]) -> Generics {
    let params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    if params.is_empty() {
        return generics.clone();
    }
    let mut finder = ParamUses { params: &params, used: vec![false; params.len()], assoc: Vec::new() };
    for ty in traced {
        finder.visit_type_mut(&mut ty.clone());
    }
    let mut g = generics.clone();
    let mut bounded: Vec<Type> =
        params.iter().zip(&finder.used).filter(|(_, used)| **used).map(|(p, _)| syn::parse_quote!(#p)).collect();
    for a in finder.assoc {
        let text = a.to_token_stream().to_string();
        if !bounded.iter().any(|b| b.to_token_stream().to_string() == text) {
            bounded.push(a);
        }
    }
    let preds = &mut g.make_where_clause().predicates;
    for ty in bounded {
        let pred: WherePredicate = syn::parse_quote!(#ty: ::gort::gc::Trace);
        preds.push(pred);
    }
    g
}

/// Finds the type parameters a type mentions (outside `PhantomData`) and
/// the associated types of parameters it names (`T::Item`,
/// `<T as Iterator>::Item`).
struct ParamUses<'a> {
    params: &'a [Ident],
    used: Vec<bool>,
    assoc: Vec<Type>,
}

impl ParamUses<'_> {
    fn param_index(&self, id: &Ident) -> Option<usize> {
        self.params.iter().position(|p| p == id)
    }

    /// Whether `ty` mentions one of the parameters at all.
    fn mentions(&self, ty: &Type) -> bool {
        let mut inner = ParamUses { params: self.params, used: vec![false; self.params.len()], assoc: Vec::new() };
        inner.visit_type_mut(&mut ty.clone());
        inner.used.iter().any(|u| *u) || !inner.assoc.is_empty()
    }
}

impl VisitMut for ParamUses<'_> {
    fn visit_type_path_mut(&mut self, tp: &mut TypePath) {
        let segs = &tp.path.segments;
        if let Some(q) = &tp.qself {
            // `<T as Trait>::Assoc`: bound the whole projection.
            if self.mentions(&q.ty) {
                self.assoc.push(Type::Path(tp.clone()));
                return;
            }
        } else if tp.path.leading_colon.is_none() {
            if let Some(i) = self.param_index(&segs[0].ident) {
                if segs.len() == 1 {
                    self.used[i] = true;
                } else {
                    // `T::Assoc`: bound the projection, not `T` itself.
                    self.assoc.push(Type::Path(tp.clone()));
                }
                return;
            }
        }
        if segs.last().is_some_and(|s| s.ident == "PhantomData") {
            // `PhantomData<T>` traces nothing, whatever `T` is.
            return;
        }
        visit_mut::visit_type_path_mut(self, tp);
    }

    fn visit_type_macro_mut(&mut self, m: &mut syn::TypeMacro) {
        // A macro may expand to anything: bound every parameter it names.
        let tokens = m.mac.tokens.clone();
        for t in tokens {
            if let proc_macro2::TokenTree::Ident(id) = t {
                if let Some(i) = self.param_index(&id) {
                    self.used[i] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    fn expand(input: proc_macro2::TokenStream) -> String {
        super::expand(input).to_string()
    }

    /// Whether `out` contains `want`, both without whitespace (so that the
    /// expected text can be laid out freely).
    #[track_caller]
    fn assert_contains(out: &str, want: &str) {
        let bare = |s: &str| s.split_whitespace().collect::<String>();
        assert!(bare(out).contains(&bare(want)), "expected\n{want}\nin\n{out}");
    }

    #[test]
    fn named_struct_with_skip() {
        let out = expand(quote! {
            struct Node {
                name: String,
                next: Option<Gc<Node>>,
                #[trace(skip)]
                shared: Arc<Gc<Node>>,
            }
        });
        assert_contains(
            &out,
            "unsafe impl ::gort::gc::Trace for Node {
                #[inline]
                fn trace(&self, __t: &mut ::gort::gc::Tracer<'_>) {
                    <String as ::gort::gc::Trace>::trace(&self.name, __t);
                    <Option<Gc<Node>> as ::gort::gc::Trace>::trace(&self.next, __t);
                }
                #[allow(dead_code)]
                #[inline]
                fn holds_no_handles() -> bool {
                    #[allow(unused_imports)]
                    use ::gort::gc::{ProbeAny as _, ProbeSized as _};
                    true && (&&::gort::gc::NoHandlesProbe::<String>::NEW).holds_no_handles()
                        && (&&::gort::gc::NoHandlesProbe::<Option<Gc<Node>> >::NEW).holds_no_handles()
                }
            }",
        );
        assert_contains(&out, &format!("impl ::gort::gc::{} for Node {{}}", super::NO_DROP_TRAIT));
    }

    #[test]
    fn tuple_and_unit_structs() {
        let out = expand(quote!(
            struct Pair(u32, #[trace(skip)] Rc<u8>, Gc<u8>);
        ));
        assert_contains(
            &out,
            "<u32 as ::gort::gc::Trace>::trace(&self.0, __t); <Gc<u8> as ::gort::gc::Trace>::trace(&self.2, __t); }",
        );
        let out = expand(quote!(
            struct Unit;
        ));
        assert_contains(&out, "fn trace(&self, __t: &mut ::gort::gc::Tracer<'_>) {}");
    }

    #[test]
    fn enums() {
        let out = expand(quote! {
            enum E<T> {
                A,
                B(T, #[trace(skip)] Rc<T>),
                C { x: Gc<u8>, #[trace(skip)] y: u8 },
            }
        });
        assert_contains(
            &out,
            "match self {
                Self::A { .. } => {}
                Self::B { 0: __f0, .. } => { <T as ::gort::gc::Trace>::trace(__f0, __t); }
                Self::C { x: __f0, .. } => { <Gc<u8> as ::gort::gc::Trace>::trace(__f0, __t); }
            }",
        );
        assert_contains(&out, "impl<T> ::gort::gc::Trace for E<T> where T: ::gort::gc::Trace {");
        let out = expand(quote!(
            enum Never {}
        ));
        assert_contains(&out, "fn trace(&self, __t: &mut ::gort::gc::Tracer<'_>) {}");
        let out = expand(quote!(
            enum Color {
                Red,
                Green,
            }
        ));
        assert_contains(&out, "fn trace(&self, __t: &mut ::gort::gc::Tracer<'_>) {}");
    }

    #[test]
    fn generic_bounds() {
        let out = expand(quote! {
            struct S<'a, T: ?Sized, U, V, I: Iterator, const N: usize>
            where
                U: Clone,
            {
                t: Box<T>,
                #[trace(skip)]
                u: Arc<U>,
                v: PhantomData<V>,
                items: Vec<I::Item>,
                arr: [Option<<I as IntoIterator>::IntoIter>; N],
                r: PhantomData<&'a ()>,
            }
        });
        assert_contains(
            &out,
            "unsafe impl<'a, T: ?Sized, U, V, I: Iterator, const N: usize> ::gort::gc::Trace
            for S<'a, T, U, V, I, N>
            where
                U: Clone,
                T: ::gort::gc::Trace,
                I::Item: ::gort::gc::Trace,
                <I as IntoIterator>::IntoIter: ::gort::gc::Trace
            {",
        );
        // The no-`Drop` impl keeps the type's own bounds only.
        assert_contains(
            &out,
            &format!(
                "impl<'a, T: ?Sized, U, V, I: Iterator, const N: usize> ::gort::gc::{} for S<'a, T, U, V, I, N>
                where U: Clone, {{}}",
                super::NO_DROP_TRAIT
            ),
        );
    }

    #[test]
    fn unsafe_drop_omits_the_drop_check() {
        let out = expand(quote! {
            #[trace(unsafe_drop)]
            struct D { x: Gc<u8> }
        });
        assert!(!out.contains(super::NO_DROP_TRAIT), "{out}");
        assert_contains(&out, "<Gc<u8> as ::gort::gc::Trace>::trace(&self.x, __t);");
    }

    #[test]
    fn errors() {
        let cases = [
            ("struct S { #[trace(skp)] a: u8 }", "unknown trace option `skp` on a field: expected `skip`"),
            ("struct S { #[trace(skip, skip)] a: u8 }", "duplicate option `skip`: give it once"),
            ("struct S { #[trace(skip)] #[trace(skip)] a: u8 }", "duplicate option `skip`"),
            ("#[trace(unsafe_drop, unsafe_drop)] struct S;", "duplicate option `unsafe_drop`"),
            ("#[trace(skip)] struct S;", "`skip` is a field option"),
            ("struct S { #[trace(unsafe_drop)] a: u8 }", "`unsafe_drop` is a type option"),
            ("#[trace(drop)] struct S;", "unknown trace option `drop` on a type: expected `unsafe_drop`"),
            ("struct S { #[trace] a: u8 }", "expected `#[trace(skip)]`"),
            ("struct S { #[trace = \"skip\"] a: u8 }", "expected `#[trace(skip)]`"),
            ("struct S { #[trace(skip = true)] a: u8 }", "`skip` takes no value"),
            ("enum E { #[trace(skip)] A(u8) }", "does not go on an enum variant"),
            ("union U { a: u8 }", "`#[derive(Trace)]` cannot be used on a union"),
        ];
        for (input, want) in cases {
            let out = expand(input.parse().unwrap());
            assert!(out.contains("compile_error"), "{input}: no error in\n{out}");
            assert!(out.contains(want), "{input}: expected {want:?} in\n{out}");
        }
        // After an option error the impl is still emitted, empty, so that
        // uses of the type add no errors of their own.
        let out = expand(quote!(
            struct S {
                #[trace(skp)]
                a: Vec<u8>,
            }
        ));
        assert_contains(
            &out,
            "unsafe impl ::gort::gc::Trace for S { fn trace(&self, _: &mut ::gort::gc::Tracer<'_>) {} }",
        );
    }
}
