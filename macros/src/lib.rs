//! The `#[profilis::profile]` attribute. Use it through the `profilis` crate,
//! which re-exports it; the generated code names `::profilis` paths only.
//!
//! ```
//! #[profilis::profile]
//! fn load_user(id: u64) -> Result<String, std::num::ParseIntError> {
//!     Ok(id.to_string())
//! }
//!
//! #[profilis::profile(name = "checkout")]
//! async fn checkout(total: u32) -> u32 {
//!     total
//! }
//! # assert_eq!(load_user(7).unwrap(), "7");
//! ```
//!
//! Each call is timed and recorded as an FN event named
//! `module_path!()::fn_name` (or the `name` given), with the error flag set
//! when the function returns `Err` or panics. The call runs inside a new
//! span, so events recorded in it carry the span as their parent.

// The README's example runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDocs;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{parse_macro_input, visit::Visit, ItemFn, LitStr, ReturnType, Type};

/// Times every call of a function and records it as an FN event.
///
/// Arguments: none, or `name = "..."` to replace the default name
/// (`module_path!()` + `::` + the function's name).
///
/// `backtrace`: a returned `Err` also carries the backtrace of the point
/// where the function returns it, outermost frame first (captured only on
/// that path).
///
/// Works on free functions, methods and associated functions, sync or
/// `async`. The error flag is set when the returned value is a `Result`
/// holding `Err` (with the error's type name as exception type and its
/// `Display` text, when it has one, as message), or when the body panics
/// (the panic still propagates).
/// An `async fn` enters its span on every poll, so the span follows the
/// future across `.await` points and threads.
#[proc_macro_attribute]
pub fn profile(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut name: Option<LitStr> = None;
    let mut backtrace = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            if name.is_some() {
                return Err(meta.error("`name` given twice"));
            }
            name = Some(meta.value()?.parse::<LitStr>()?);
            Ok(())
        } else if meta.path.is_ident("backtrace") {
            if backtrace {
                return Err(meta.error("`backtrace` given twice"));
            }
            backtrace = true;
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument: #[profile] accepts only `name = \"...\"` and `backtrace`",
            ))
        }
    });
    parse_macro_input!(attr with parser);

    let item2: TokenStream2 = item.clone().into();
    let function = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(_) => {
            return syn::Error::new(
                first_token_span(&item2),
                "#[profile] can only be applied to a function with a body",
            )
            .to_compile_error()
            .into();
        }
    };
    match expand(function, name, backtrace) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn first_token_span(tokens: &TokenStream2) -> proc_macro2::Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(proc_macro2::Span::call_site, |t| t.span())
}

fn expand(function: ItemFn, name: Option<LitStr>, backtrace: bool) -> syn::Result<TokenStream2> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new(
            c.span(),
            "#[profile] cannot time a `const fn`",
        ));
    }
    let ident = &sig.ident;
    let name_expr = match &name {
        Some(lit) => {
            if lit.value().is_empty() {
                return Err(syn::Error::new(lit.span(), "`name` must not be empty"));
            }
            lit.to_token_stream()
        }
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#ident)
        )),
    };
    // The type of the returned value, when it can be written in the body
    // (not an `impl Trait`): it pins the closure or async block's output so
    // `?` in the body infers as it would in the function itself, and lets
    // the generated code check for `Err`.
    let ret: Option<TokenStream2> = match &sig.output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) if !contains_impl_trait(ty) => Some(ty.to_token_stream()),
        ReturnType::Type(..) => None,
    };
    let span = sig.ident.span();
    let stack = if backtrace {
        quote!(::core::option::Option::Some(
            ::profilis::backtrace::capture().as_str()
        ))
    } else {
        quote!(::core::option::Option::None)
    };
    let check = match &ret {
        Some(_) => quote_spanned! {span=>
            #[allow(unused_imports)]
            use ::profilis::__private::{
                ErrorText as _, NoErrorText as _, NotAResult as _, ResultFailed as _,
            };
            if (&__profilis_ret).__profilis_failed() {
                __profilis_span.set_exception(
                    (&__profilis_ret).__profilis_error_type(),
                    &(&__profilis_ret).__profilis_error_text(),
                    #stack,
                );
            }
        },
        None => quote!(),
    };
    let body = if sig.asyncness.is_some() {
        let inner = match &ret {
            Some(ty) => quote!(::profilis::__private::typed_future::<#ty, _>(async move #block)),
            None => quote!(async move #block),
        };
        let bind = match &ret {
            Some(ty) => quote!(let __profilis_ret: #ty),
            None => quote!(let __profilis_ret),
        };
        quote_spanned! {span=>
            #[allow(unused_mut)]
            let mut __profilis_span = ::profilis::__private::future_span(::profilis::name!(#name_expr));
            #bind = __profilis_span.run(#inner).await;
            #check
            ::core::mem::drop(__profilis_span);
            __profilis_ret
        }
    } else {
        let call = match &ret {
            Some(ty) => quote!(::profilis::__private::call::<#ty, _>(move || #block)),
            None => quote!(::profilis::__private::call(move || #block)),
        };
        quote_spanned! {span=>
            #[allow(unused_mut)]
            let mut __profilis_span = ::profilis::__private::fn_span(::profilis::name!(#name_expr));
            let __profilis_ret = #call;
            #check
            ::core::mem::drop(__profilis_span);
            __profilis_ret
        }
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    })
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}
