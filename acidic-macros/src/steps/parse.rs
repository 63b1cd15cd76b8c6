//! Parsing of `steps!`. A malformed step is reported and skipped up to the next `;`, so that
//! every mistake of the invocation shows at once.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Ident, Path, Token, Type, bracketed, token};

use super::ast::{Awaits, Step, Workflow, awaits};
use crate::ctxt::{Ctxt, skip_until};

const EXAMPLE: &str = "`steps!(MyJob: first_step; second_step awaits [ChildJob]; third_step)`";

/// Parses the whole input. `None` only when there is no job type to speak of.
pub(crate) fn parse(input: TokenStream, cx: &mut Ctxt) -> Option<Workflow> {
    let parser = |input: ParseStream<'_>| parse_workflow(input, cx);
    match parser.parse2(input) {
        Ok(workflow) => Some(workflow),
        Err(e) => {
            cx.syn_error(e);
            None
        }
    }
}

fn parse_workflow(input: ParseStream<'_>, cx: &mut Ctxt) -> syn::Result<Workflow> {
    if input.is_empty() {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("`steps!` needs a job type and its steps: write {EXAMPLE}"),
        ));
    }
    let job: Path = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("expected the job type first: write {EXAMPLE}"),
        )
    })?;
    if input.peek(Token![:]) {
        input.parse::<Token![:]>()?;
    } else if !input.is_empty() {
        cx.error_at(
            input.span(),
            format!("expected `:` after the job type: write {EXAMPLE}"),
        );
        // `Job; a; b` or `Job, a; b`: the separator stood for the colon.
        if input.peek(Token![;]) || input.peek(Token![,]) {
            input.parse::<proc_macro2::TokenTree>()?;
        }
    }
    let at_semi = |i: ParseStream<'_>| i.peek(Token![;]);
    let mut steps = Vec::new();
    while !input.is_empty() {
        if let Some(step) = parse_step(input, cx) {
            steps.push(step);
        }
        if input.is_empty() {
            break;
        }
        if input.parse::<Token![;]>().is_err() {
            cx.error_at(
                input.span(),
                "expected `;` after the step: steps are separated by `;`, and a step may be followed only by `awaits [JobType, ...]`",
            );
            skip_until(input, at_semi);
            input.parse::<Option<Token![;]>>()?;
        }
    }
    Ok(Workflow { job, steps })
}

fn parse_step(input: ParseStream<'_>, cx: &mut Ctxt) -> Option<Step> {
    let at_semi = |i: ParseStream<'_>| i.peek(Token![;]);
    if input.peek(Token![;]) {
        cx.error_at(
            input.span(),
            "expected a step name before `;`: remove the extra `;`",
        );
        return None;
    }
    // `parse_any` accepts keywords so that `check` can reject them with a pointed message.
    let Ok(name) = input.call(Ident::parse_any) else {
        let bad = skip_until(input, at_semi);
        cx.error_spanned_by(
            bad,
            "expected a step name: the name of a method of the job, e.g. `process_order`",
        );
        return None;
    };
    let mut step = Step { name, awaits: None };
    if input.peek(awaits) {
        let keyword = input.parse::<awaits>().ok()?;
        if !input.peek(token::Bracket) {
            let span = if input.is_empty() || input.peek(Token![;]) {
                keyword.span
            } else {
                input.span()
            };
            cx.error_at(
                span,
                "expected `[` after `awaits`: list the awaited job types in brackets, e.g. `awaits [ShopifyFulfill]`",
            );
            skip_until(input, at_semi);
            return Some(step);
        }
        match parse_awaits(input) {
            Ok(list) => step.awaits = Some(list),
            Err(e) => cx.syn_error(e),
        }
    }
    Some(step)
}

fn parse_awaits(input: ParseStream<'_>) -> syn::Result<Awaits> {
    let content;
    let brackets = bracketed!(content in input);
    let jobs = Punctuated::<Type, Token![,]>::parse_terminated(&content).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a job type: `awaits` lists job types separated by `,`, e.g. `awaits [ShopifyFulfill, SendReceipt]`",
        )
    })?;
    Ok(Awaits {
        brackets: brackets.span.join(),
        jobs: jobs.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use quote::{ToTokens, quote};

    use super::*;

    fn parse_ok(tokens: TokenStream) -> Workflow {
        let mut cx = Ctxt::new();
        let workflow = parse(tokens, &mut cx).expect("a workflow");
        assert_eq!(cx.messages(), Vec::<String>::new());
        workflow
    }

    fn parse_errors(tokens: TokenStream) -> Vec<String> {
        let mut cx = Ctxt::new();
        let _ = parse(tokens, &mut cx);
        cx.messages()
    }

    #[test]
    fn parses_steps_and_awaits() {
        let w = parse_ok(quote!(crate::jobs::FulfillOrder:
            process_order;
            fulfill_order awaits [ShopifyFulfill, mail::Receipt];
            send_emails;
        ));
        assert_eq!(
            w.job.to_token_stream().to_string(),
            "crate :: jobs :: FulfillOrder"
        );
        let names: Vec<_> = w.steps.iter().map(Step::stored_name).collect();
        assert_eq!(names, ["process_order", "fulfill_order", "send_emails"]);
        assert!(w.steps[0].awaits.is_none());
        let awaited: Vec<_> = w.steps[1]
            .awaits
            .as_ref()
            .unwrap()
            .jobs
            .iter()
            .map(|t| t.to_token_stream().to_string())
            .collect();
        assert_eq!(awaited, ["ShopifyFulfill", "mail :: Receipt"]);
    }

    #[test]
    fn keywords_are_parsed_for_check_to_reject() {
        let w = parse_ok(quote!(J: match; r#async));
        assert_eq!(w.steps.len(), 2);
        assert_eq!(w.steps[1].stored_name(), "r#async");
    }

    #[test]
    fn missing_colon_is_reported_and_steps_still_parsed() {
        let mut cx = Ctxt::new();
        let w = parse(quote!(J; a; b), &mut cx).unwrap();
        assert_eq!(w.steps.len(), 2);
        assert_eq!(cx.messages().len(), 1);
        assert!(cx.messages()[0].starts_with("expected `:` after the job type"));
    }

    #[test]
    fn awaits_without_brackets() {
        let e = parse_errors(quote!(J: a awaits ShopifyFulfill; b awaits));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e.iter()
                .all(|m| m.starts_with("expected `[` after `awaits`"))
        );
    }

    #[test]
    fn bad_separator_and_bad_step() {
        let e = parse_errors(quote!(J: a, b; 42; c));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("expected `;` after the step"));
        assert!(e[1].starts_with("expected a step name"));
    }

    #[test]
    fn empty_input() {
        let e = parse_errors(quote!());
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("`steps!` needs a job type"));
    }
}
