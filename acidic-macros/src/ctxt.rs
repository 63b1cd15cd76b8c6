//! Error accumulator shared by the parse and check phases: every mistake of one macro
//! invocation is recorded here and reported together (`syn::Error::combine`).

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// The errors found so far in one macro invocation.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Ctxt::default()
    }

    /// Records an error at one span.
    pub(crate) fn error_at(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records an error spanning all of `tokens` (first to last token).
    pub(crate) fn error_spanned_by(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error produced by syn.
    pub(crate) fn syn_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All recorded errors as one `compile_error!` token stream (empty if there are none).
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.errors
            .into_iter()
            .reduce(|mut all, e| {
                all.combine(e);
                all
            })
            .map(|e| e.to_compile_error())
            .unwrap_or_default()
    }

    /// The messages recorded so far, in order (for unit tests).
    #[cfg(test)]
    pub(crate) fn messages(&self) -> Vec<String> {
        self.errors.iter().map(|e| e.to_string()).collect()
    }
}

/// Consumes token trees up to (not including) the next top-level token for which `stop`
/// returns true, or to the end. Used to recover after a malformed option or step so that the
/// following ones are still checked.
pub(crate) fn skip_until(
    input: syn::parse::ParseStream<'_>,
    stop: impl Fn(syn::parse::ParseStream<'_>) -> bool,
) -> TokenStream {
    let mut skipped = TokenStream::new();
    while !input.is_empty() && !stop(input) {
        match input.parse::<proc_macro2::TokenTree>() {
            Ok(tt) => skipped.extend([tt]),
            Err(_) => break,
        }
    }
    skipped
}
