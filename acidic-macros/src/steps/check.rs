//! Rules of `steps!`, one function each. Errors go to the [`Ctxt`]; nothing stops early.

use std::collections::{HashMap, HashSet};

use quote::ToTokens;

use super::ast::{Step, Workflow};
use crate::ctxt::Ctxt;

/// The stored name of the terminal state.
pub(crate) const TERMINAL_NAME: &str = "finished";
/// The variant of the terminal state.
pub(crate) const TERMINAL_VARIANT: &str = "Finished";

/// Strict and reserved keywords of the 2024 edition: none can name a step method without
/// `r#`, and a raw name would be stored differently from how it is written.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "_",
];

pub(crate) fn check(workflow: &Workflow, cx: &mut Ctxt) {
    check_not_empty(workflow, cx);
    for step in &workflow.steps {
        check_name(step, cx);
        check_awaits(step, cx);
    }
    check_unique_names(workflow, cx);
}

/// Whether the step's name can be called as a method and used as a variant; the fallback
/// expansion only calls these.
pub(crate) fn is_usable_name(step: &Step) -> bool {
    let name = step.stored_name();
    !name.starts_with("r#") && !KEYWORDS.contains(&name.as_str()) && variant_is_valid(step)
}

fn variant_is_valid(step: &Step) -> bool {
    let variant = step.variant_name();
    variant.chars().next().is_some_and(char::is_alphabetic)
        && variant != TERMINAL_VARIANT
        && variant != "Self"
}

fn check_not_empty(workflow: &Workflow, cx: &mut Ctxt) {
    if workflow.steps.is_empty() {
        let job = workflow.job.to_token_stream().to_string().replace(' ', "");
        cx.error_spanned_by(
            &workflow.job,
            format!(
                "workflow `{job}` has no steps: list at least one, e.g. `steps!({job}: first_step)`, or implement `Perform` for a job of one step"
            ),
        );
    }
}

fn check_name(step: &Step, cx: &mut Ctxt) {
    let name = step.stored_name();
    let span = step.name.span();
    if let Some(bare) = name.strip_prefix("r#") {
        cx.error_at(
            span,
            format!(
                "step names cannot be raw identifiers: `{name}` would be stored as \"{bare}\" but called as `{name}`; rename the step and its method, e.g. `{bare}_step`"
            ),
        );
    } else if name == "_" {
        cx.error_at(
            span,
            "`_` cannot name a step: name the step after its method",
        );
    } else if KEYWORDS.contains(&name.as_str()) {
        cx.error_at(
            span,
            format!(
                "`{name}` is a Rust keyword and cannot name a step: rename the step and its method, e.g. `{name}_step`"
            ),
        );
    } else if name == TERMINAL_NAME {
        cx.error_at(
            span,
            "`finished` cannot name a step: it is reserved for the terminal state of every workflow; rename the step, e.g. `finish_order`",
        );
    } else if !variant_is_valid(step) {
        let variant = step.variant_name();
        let why = if variant == TERMINAL_VARIANT || variant == "Self" {
            format!("`{variant}`, which is reserved")
        } else {
            format!("`{variant}`, which is not an identifier")
        };
        cx.error_at(
            span,
            format!(
                "step `{name}` would become the recovery point {why}: rename the step so that it starts with a letter and does not read `{TERMINAL_NAME}`"
            ),
        );
    }
}

fn check_awaits(step: &Step, cx: &mut Ctxt) {
    let Some(awaits) = &step.awaits else { return };
    if awaits.jobs.is_empty() {
        cx.error_at(
            awaits.brackets,
            format!(
                "`awaits []` lists no job types: name the jobs step `{}` waits for, e.g. `awaits [ShopifyFulfill]`, or remove `awaits`",
                step.name
            ),
        );
        return;
    }
    let mut seen = HashSet::new();
    for job in &awaits.jobs {
        let written = job.to_token_stream().to_string().replace(' ', "");
        if !seen.insert(written.clone()) {
            cx.error_spanned_by(
                job,
                format!(
                    "`{written}` is listed twice in the `awaits` of step `{}`: list each job type once (the step may still enqueue any number of `{written}` runs)",
                    step.name
                ),
            );
        }
    }
}

/// Duplicate step names, and distinct names that map to the same recovery-point variant.
fn check_unique_names(workflow: &Workflow, cx: &mut Ctxt) {
    let mut names = HashSet::new();
    let mut variants: HashMap<String, &Step> = HashMap::new();
    for step in workflow.steps.iter().filter(|s| is_usable_name(s)) {
        let name = step.stored_name();
        if !names.insert(name.clone()) {
            cx.error_at(
                step.name.span(),
                format!(
                    "duplicate step `{name}`: each step runs once per pass through the workflow; remove this one, or return `Ok(Flow::Repeat)` from `{name}` to run it again"
                ),
            );
            continue;
        }
        let variant = step.variant_name();
        if let Some(first) = variants.get(&variant) {
            cx.error_at(
                step.name.span(),
                format!(
                    "steps `{}` and `{name}` both become the recovery point `{variant}`: rename one of them",
                    first.name
                ),
            );
        } else {
            variants.insert(variant, step);
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::steps::parse::parse;

    fn errors(tokens: TokenStream) -> Vec<String> {
        let mut cx = Ctxt::new();
        let workflow = parse(tokens, &mut cx).expect("a workflow");
        check(&workflow, &mut cx);
        cx.messages()
    }

    #[test]
    fn a_valid_workflow_has_no_errors() {
        let e = errors(
            quote!(FulfillOrder: process_order; fulfill_order awaits [ShopifyFulfill]; send_emails),
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn empty_workflow() {
        let e = errors(quote!(jobs::FulfillOrder:));
        assert_eq!(
            e,
            [
                "workflow `jobs::FulfillOrder` has no steps: list at least one, e.g. `steps!(jobs::FulfillOrder: first_step)`, or implement `Perform` for a job of one step"
            ]
        );
        assert_eq!(errors(quote!(J)).len(), 1);
    }

    #[test]
    fn duplicate_step_is_reported_at_the_second() {
        let e = errors(quote!(J: a; b; a));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("duplicate step `a`"), "{e:?}");
    }

    #[test]
    fn variant_collisions() {
        let e = errors(quote!(J: foo_bar; foo__bar; fooBar));
        assert_eq!(
            e,
            [
                "steps `foo_bar` and `foo__bar` both become the recovery point `FooBar`: rename one of them",
                "steps `foo_bar` and `fooBar` both become the recovery point `FooBar`: rename one of them",
            ]
        );
    }

    #[test]
    fn reserved_and_keyword_names() {
        let e = errors(quote!(J: finished; match; r#type; finished_; _1; self_; _));
        assert_eq!(e.len(), 7, "{e:?}");
        assert!(e[0].starts_with("`finished` cannot name a step"));
        assert!(e[1].starts_with("`match` is a Rust keyword"));
        assert!(e[2].starts_with("step names cannot be raw identifiers: `r#type`"));
        assert!(e[3].starts_with(
            "step `finished_` would become the recovery point `Finished`, which is reserved"
        ));
        assert!(e[4].starts_with(
            "step `_1` would become the recovery point `1`, which is not an identifier"
        ));
        assert!(e[5].starts_with("step `self_` would become the recovery point `Self`"));
        assert!(e[6].starts_with("`_` cannot name a step"));
    }

    #[test]
    fn awaits_rules() {
        let e = errors(quote!(J: a awaits []; b awaits [X, Y, X]));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("`awaits []` lists no job types"));
        assert!(e[1].starts_with("`X` is listed twice in the `awaits` of step `b`"));
    }

    #[test]
    fn snake_case_is_not_required() {
        assert!(errors(quote!(J: ProcessOrder; sendEmails)).is_empty());
    }

    #[test]
    fn all_errors_are_reported_together() {
        let e = errors(quote!(J: a; a; finished; b awaits []));
        assert_eq!(e.len(), 3, "{e:?}");
    }
}
