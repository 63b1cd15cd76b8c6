//! Procedural macros of [acidic](https://docs.rs/acidic-runtime): `#[acidic_job]` and `steps!`.
//!
//! Use them through `acidic_runtime` (`use acidic_runtime::prelude::*;`), which re-exports both;
//! the generated code refers to the runtime by absolute paths (`::acidic_runtime::__private`).
//!
//! Each macro is split into phases: `parse` turns tokens into a typed AST that keeps the
//! user's tokens for spans, `check` applies one small function per rule, `expand` generates the
//! code, and `fallback` generates a minimal skeleton when there are errors so that only the
//! real mistakes are reported.
#![warn(missing_docs)]

mod ctxt;
mod job;
mod steps;

use proc_macro::TokenStream;

/// Declares a job type: implements `acidic_runtime::Job` for a struct whose fields are the
/// arguments of the job's runs.
///
/// # Syntax
///
/// ```text
/// #[acidic_job]
/// #[acidic_job(option = value, ...)]
/// ```
///
/// The struct must not be generic (a job needs one stable kind name) and must implement
/// `serde::Serialize` and `serde::Deserialize` (usually by `#[derive]`, placed below the
/// attribute). Named-field, tuple and unit structs are accepted.
///
/// # Options
///
/// | option | value | default |
/// | --- | --- | --- |
/// | `kind` | non-empty string: the stable name stored with each run, so that the type can be renamed without orphaning runs | the type's name |
/// | `queue` | non-empty string: the queue its runs are placed on | `"default"` |
/// | `priority` | `i16` integer literal, negative allowed; higher runs first | `0` |
/// | `max_attempts` | integer `>= 1`: attempts of one step before the run fails | `25` |
/// | `unique_by` | `"job_id"` (every enqueue is its own run), `"args"` (equal arguments are one run), or a list of field names `["field_a", "field_b"]` (equal values of those fields are one run; structs with named fields only; a field with `#[serde(rename = "x")]` is keyed as `"x"`; fields with `flatten`/`skip` or structs with `rename_all` are rejected) | `"job_id"` |
/// | `backoff_base_ms` | `u64`: delay before the first retry, in milliseconds | `1000` |
/// | `backoff_max_ms` | `u64`: largest delay between attempts, `>= backoff_base_ms` | `3600000` |
///
/// Each option may appear once. Mistakes (an unknown option, a value of the wrong type, a
/// duplicate option, an unknown `unique_by` value, a field that does not exist, ...) are
/// compile errors pointing at the offending token, all reported together.
///
/// # Example
///
/// ```ignore
/// use acidic_runtime::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[acidic_job(unique_by = ["order_id"], queue = "orders", priority = 5, max_attempts = 8)]
/// #[derive(Debug, Serialize, Deserialize)]
/// pub struct FulfillOrder {
///     pub order_id: i64,
///     pub note: String,
/// }
///
/// assert_eq!(FulfillOrder::KIND, "FulfillOrder");
/// assert_eq!(FulfillOrder::OPTIONS.queue, "orders");
/// ```
#[proc_macro_attribute]
pub fn acidic_job(args: TokenStream, input: TokenStream) -> TokenStream {
    job::expand(args.into(), input.into()).into()
}

/// Declares the steps of a job: implements `acidic_runtime::Workflow` for it, with one
/// recovery point per step plus the terminal state `finished`.
///
/// # Syntax
///
/// ```text
/// steps!(JobType: step_one; step_two awaits [ChildJob, OtherChild]; step_three);
/// ```
///
/// The job type (a path to an `#[acidic_job]` struct) is followed by `:` and the steps in
/// order, separated by `;` (a trailing `;` is allowed). Each step names an inherent method of
/// the job with the signature
///
/// ```text
/// async fn step_one(&self, cx: &mut StepContext<'_>) -> StepResult
/// ```
///
/// (any method that can be called as `JobType::step_one(&job, cx)` and returns a `Send`
/// future of `StepResult` fits). A step may declare the child jobs it waits for with
/// `awaits [JobType, ...]`; each must be an `#[acidic_job]` type, listed once.
///
/// The stored name of each recovery point is the step's identifier (`"step_one"`); the
/// terminal state is stored as `"finished"`. Renaming a step therefore changes its stored
/// name: runs parked at the old name fail with an error naming it.
///
/// # Rules (compile errors)
///
/// - at least one step; step names are unique; `finished` is reserved;
/// - a step name cannot be a Rust keyword or a raw identifier (`r#match`);
/// - two step names cannot map to the same recovery point (`foo_bar` and `foo__bar` are both
///   `FooBar`);
/// - `awaits` is followed by a non-empty bracketed list of job types, without repeats;
/// - every step has a method of the right signature (the error points at the step name).
///
/// Step names are not required to be snake_case (rustc already warns about the method
/// name); they are stored exactly as written.
///
/// # Example
///
/// ```ignore
/// use acidic_runtime::prelude::*;
///
/// steps!(FulfillOrder:
///     process_order;
///     fulfill_order awaits [ShopifyFulfill];
///     send_emails
/// );
///
/// impl FulfillOrder {
///     async fn process_order(&self, cx: &mut StepContext<'_>) -> StepResult { Ok(Flow::Next) }
///     async fn fulfill_order(&self, cx: &mut StepContext<'_>) -> StepResult { Ok(Flow::Next) }
///     async fn send_emails(&self, cx: &mut StepContext<'_>) -> StepResult { Ok(Flow::Next) }
/// }
/// ```
#[proc_macro]
pub fn steps(input: TokenStream) -> TokenStream {
    steps::expand(input.into()).into()
}
