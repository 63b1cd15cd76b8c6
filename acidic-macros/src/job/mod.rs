//! `#[acidic_job(...)]`: parse → check → expand, or errors plus a fallback.

mod ast;
mod check;
mod expand;
mod fallback;
mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Expands `#[acidic_job(args)] input`.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::new();
    let attr = parse::parse_args(args, &mut cx);
    let Some(item) = parse::parse_item(input.clone(), &mut cx) else {
        // Not a struct, enum or union: keep the item as it was, report the misplaced attribute.
        let mut out = input;
        out.extend(cx.into_compile_errors());
        return out;
    };
    let serde = parse::serde_fields(&item);
    check::check(&attr, &item, &serde, &mut cx);
    if cx.has_errors() {
        let mut out = fallback::expand(&item);
        out.extend(cx.into_compile_errors());
        out
    } else {
        expand::expand(&attr, &item, &serde)
    }
}
