//! `steps!(Job: a; b awaits [Child]; c)`: parse → check → expand, or errors plus a fallback.

mod ast;
mod check;
mod expand;
mod fallback;
mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Expands `steps!(input)`.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::new();
    let Some(workflow) = parse::parse(input, &mut cx) else {
        // Not even a job type: nothing to implement.
        return cx.into_compile_errors();
    };
    check::check(&workflow, &mut cx);
    if cx.has_errors() {
        let mut out = fallback::expand(&workflow);
        out.extend(cx.into_compile_errors());
        out
    } else {
        expand::expand(&workflow)
    }
}
