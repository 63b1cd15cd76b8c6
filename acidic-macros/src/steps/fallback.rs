//! What `steps!` emits when the invocation has errors: a `Workflow` impl of one placeholder
//! step, so that registering or awaiting the job elsewhere does not add "has no steps" errors.
//! It still calls the methods of the steps whose names are valid and checks the awaited types,
//! so that those mistakes are reported together with the macro's own errors.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Workflow;
use super::check::is_usable_name;
use super::expand::{job_assertions, step_call};

pub(crate) fn expand(workflow: &Workflow) -> TokenStream {
    let p = quote!(::acidic_runtime::__private);
    let job = &workflow.job;
    let mut seen = std::collections::HashSet::new();
    let calls: Vec<_> = workflow
        .steps
        .iter()
        .filter(|s| is_usable_name(s) && seen.insert(s.stored_name()))
        .map(|s| step_call(job, s))
        .collect();
    let arms = 1..=calls.len();
    let assertions = job_assertions(&workflow.steps);
    quote! {
        const _: () = {
            impl #p::Workflow for #job {
                type Step = #p::OneStep;
                fn run_step<'a>(
                    &'a self,
                    _: #p::OneStep,
                    cx: &'a mut #p::StepContext<'_>,
                ) -> #p::BoxFuture<'a, #p::StepResult> {
                    match 0usize {
                        #(#arms => #calls,)*
                        _ => #p::terminal(),
                    }
                }
            }
            #assertions
        };
    }
}
