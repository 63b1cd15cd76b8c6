//! Procedural macros of acidic (skeleton).
use proc_macro::TokenStream;

/// `#[acidic_job(...)]` (skeleton).
#[proc_macro_attribute]
pub fn acidic_job(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}

/// `steps!(Job: a; b; c)` (skeleton).
#[proc_macro]
pub fn steps(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
