//! Code generation of `steps!` for a checked workflow: the recovery-point enum, its
//! `RecoveryPoint` impl, and the `Workflow` impl that dispatches to the step methods.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, LitStr};

use super::ast::{Step, Workflow};
use super::check::{TERMINAL_NAME, TERMINAL_VARIANT};

pub(crate) fn expand(workflow: &Workflow) -> TokenStream {
    let p = quote!(::acidic_runtime::__private);
    let job = &workflow.job;
    let steps = &workflow.steps;
    let variants: Vec<Ident> = steps
        .iter()
        .map(|s| format_ident!("{}", s.variant_name()))
        .collect();
    let finished = format_ident!("{}", TERMINAL_VARIANT);
    let names = steps
        .iter()
        .map(|s| LitStr::new(&s.stored_name(), s.name.span()));
    let terminal_name = TERMINAL_NAME;
    let successors = variants.iter().skip(1).chain([&finished]);
    let awaits = steps.iter().zip(&variants).filter_map(|(step, variant)| {
        let jobs = &step.awaits.as_ref()?.jobs;
        Some(quote! {
            Self::#variant => {
                const KINDS: &[&str] = &[#(<#jobs as #p::Job>::KIND),*];
                KINDS
            }
        })
    });
    let calls = steps.iter().map(|s| step_call(job, s));
    quote! {
        const _: () = {
            #[derive(
                ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug,
                ::core::cmp::PartialEq, ::core::cmp::Eq,
            )]
            pub enum __AcidicSteps { #(#variants,)* #finished }

            impl #p::RecoveryPoint for __AcidicSteps {
                const STEPS: &'static [Self] = &[#(Self::#variants),*];
                const TERMINAL: Self = Self::#finished;
                fn name(self) -> &'static str {
                    match self { #(Self::#variants => #names,)* Self::#finished => #terminal_name }
                }
                fn next(self) -> Self {
                    match self { #(Self::#variants => Self::#successors,)* Self::#finished => Self::#finished }
                }
                fn awaits(self) -> &'static [&'static str] {
                    match self { #(#awaits)* _ => &[] }
                }
            }

            impl #p::Workflow for #job {
                type Step = __AcidicSteps;
                fn run_step<'a>(
                    &'a self,
                    step: __AcidicSteps,
                    cx: &'a mut #p::StepContext<'_>,
                ) -> #p::BoxFuture<'a, #p::StepResult> {
                    match step {
                        #(__AcidicSteps::#variants => #calls,)*
                        __AcidicSteps::#finished => #p::terminal(),
                    }
                }
            }
        };
    }
}

/// The call of one step's method, boxed. Located at the step's name in the `steps!` list, so
/// that a missing method or a wrong signature is reported there; names resolve at the call
/// site as usual.
pub(crate) fn step_call(job: &syn::Path, step: &Step) -> TokenStream {
    let name = &step.name;
    let span = Span::call_site().located_at(name.span());
    quote_spanned! {span=>
        ::std::boxed::Box::pin(<#job>::#name(self, cx))
    }
}

/// One assertion per awaited type that it is a job, located at that type. Only the fallback
/// needs these: the full expansion names `<T as Job>::KIND` in `awaits()`, which fails at the
/// same token with the same message (a second assertion would report every mistake twice).
pub(crate) fn job_assertions(steps: &[Step]) -> TokenStream {
    steps
        .iter()
        .filter_map(|s| s.awaits.as_ref())
        .flat_map(|a| &a.jobs)
        .map(|ty| {
            let span = Span::call_site().located_at(syn::spanned::Spanned::span(ty));
            quote_spanned! {span=>
                const _: () = ::acidic_runtime::__private::assert_job::<#ty>();
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::ctxt::Ctxt;
    use crate::steps::parse::parse;

    /// The expansion of the spec's example, pretty-printed line by line (prints with
    /// `cargo test -p acidic-macros -- --nocapture expansion_of_the_spec_example`).
    #[test]
    fn expansion_of_the_spec_example() {
        let mut cx = Ctxt::new();
        let workflow = parse(
            quote!(FulfillOrder: process_order; fulfill_order awaits [ShopifyFulfill]; send_emails),
            &mut cx,
        )
        .unwrap();
        let text = expand(&workflow).to_string();
        println!("{text}");
        for expected in [
            "pub enum __AcidicSteps { ProcessOrder , FulfillOrder , SendEmails , Finished }",
            "Self :: ProcessOrder => \"process_order\"",
            "Self :: FulfillOrder => Self :: SendEmails",
            "Self :: SendEmails => Self :: Finished",
            "< ShopifyFulfill as :: acidic_runtime :: __private :: Job > :: KIND",
            "< FulfillOrder > :: fulfill_order (self , cx)",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in {text}");
        }
    }
}
