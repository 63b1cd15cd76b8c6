//! Job types: what a job is called, where it runs, and how its runs are deduplicated.
//!
//! A job is a serialisable struct whose value is the run's arguments. The
//! [`acidic_job`](crate::acidic_job) attribute implements [`Job`] from its options; you rarely
//! implement it by hand.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How enqueues of a job are deduplicated into runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueBy {
    /// Every enqueue creates its own run (the default).
    JobId,
    /// Runs are keyed by the job kind and the canonical JSON of all its arguments: enqueuing
    /// equal arguments again returns the existing run.
    Args,
    /// Runs are keyed by the job kind and the canonical JSON of the named fields only (their
    /// serialised names).
    Fields(&'static [&'static str]),
}

/// Exponential retry backoff: attempt `n` waits about `base * 2^(n-1)`, capped at `max`, with
/// ±25% jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// Largest delay between two attempts.
    pub max: Duration,
}

impl Backoff {
    /// The default backoff: 1 second, doubling, capped at 1 hour.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(3600),
    };
}

/// Static options of a job type, set with `#[acidic_job(...)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// Queue the job's runs are placed on (default `"default"`).
    pub queue: &'static str,
    /// Higher priorities are claimed first within a queue (default 0).
    pub priority: i16,
    /// Attempts of one step before the run fails (default 25).
    pub max_attempts: u32,
    /// Deduplication of enqueues (default [`UniqueBy::JobId`]).
    pub unique_by: UniqueBy,
    /// Retry backoff.
    pub backoff: Backoff,
}

impl JobOptions {
    /// The defaults used for every option not given to `#[acidic_job(...)]`.
    pub const DEFAULT: JobOptions = JobOptions {
        queue: "default",
        priority: 0,
        max_attempts: 25,
        unique_by: UniqueBy::JobId,
        backoff: Backoff::DEFAULT,
    };
}

/// A job type: its stable kind name and options. The value of the type is the run's arguments.
///
/// Implemented by `#[acidic_job(...)]`:
///
/// ```
/// use acidic_runtime::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[acidic_job(unique_by = "args", queue = "mail", max_attempts = 5)]
/// #[derive(Debug, Serialize, Deserialize)]
/// struct SendReceipt {
///     order_id: i64,
/// }
///
/// impl Perform for SendReceipt {
///     async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
///         Ok(Flow::Next)
///     }
/// }
///
/// assert_eq!(SendReceipt::KIND, "SendReceipt");
/// assert_eq!(SendReceipt::OPTIONS.queue, "mail");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an acidic job",
    label = "not an acidic job",
    note = "add `#[acidic_job]` to the declaration of `{Self}`"
)]
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable name stored with each run; defaults to the type name, set with `kind = "..."`
    /// so that the type can be renamed without orphaning its runs.
    const KIND: &'static str;
    /// The job's options.
    const OPTIONS: JobOptions;
}
