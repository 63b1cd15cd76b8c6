//! Runs: the durable record of one execution of a job, and what the API reports about it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// The id of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Waiting to be claimed (possibly scheduled for later: see [`RunInfo::scheduled_at`]).
    Available,
    /// Held by a worker.
    Running,
    /// Parked until its children finish.
    Awaiting,
    /// Finished successfully.
    Succeeded,
    /// Failed permanently or ran out of attempts; kept with its last error.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl RunState {
    /// Every state.
    pub const ALL: [RunState; 6] = [
        RunState::Available,
        RunState::Running,
        RunState::Awaiting,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
    ];

    /// The stored name of the state (the only place states become text).
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Available => "available",
            RunState::Running => "running",
            RunState::Awaiting => "awaiting",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Whether the run has finished (succeeded, failed or cancelled).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }

    pub(crate) fn parse(s: &str) -> Result<RunState, Error> {
        RunState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Corrupt {
                what: "acidic_runs.state",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point in time as stored: milliseconds since the Unix epoch, taken from the database's clock.
pub type Millis = i64;

pub(crate) fn system_time_to_ms(t: SystemTime) -> Millis {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The largest serialised arguments a run may have (16 MiB). Larger enqueues fail with
/// [`Error::PayloadTooLarge`] and store nothing.
pub const MAX_ARGS_BYTES: usize = 16 * 1024 * 1024;

/// The outcome of an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The run that holds the job.
    pub run_id: RunId,
    /// `true` when the job's unique key matched an existing run, which is returned instead of a
    /// new one.
    pub duplicate: bool,
}

/// Per-enqueue settings that override the job type's options.
///
/// ```
/// use std::time::Duration;
/// use acidic_runtime::EnqueueOptions;
/// let later = EnqueueOptions::new().run_after(Duration::from_secs(60)).priority(5);
/// # let _ = later;
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    pub(crate) run_at: Option<SystemTime>,
    pub(crate) run_after: Option<Duration>,
    pub(crate) queue: Option<String>,
    pub(crate) priority: Option<i16>,
}

impl EnqueueOptions {
    /// No overrides: run as soon as possible on the job's queue.
    pub fn new() -> Self {
        Self::default()
    }
    /// Do not start the run before this time.
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self.run_after = None;
        self
    }
    /// Do not start the run before this delay has passed (measured on the database's clock).
    pub fn run_after(mut self, delay: Duration) -> Self {
        self.run_after = Some(delay);
        self.run_at = None;
        self
    }
    /// Put the run on another queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Override the job's priority (higher runs first).
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }
}

/// Everything stored about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInfo {
    /// The run's id.
    pub id: RunId,
    /// The job kind.
    pub kind: String,
    /// The arguments, as stored JSON.
    pub args: String,
    /// The unique key (`unique_by` other than `job_id`).
    pub unique_key: Option<String>,
    /// The queue.
    pub queue: String,
    /// The priority.
    pub priority: i16,
    /// The state.
    pub state: RunState,
    /// The recovery point: the next step to run, or `"finished"`.
    pub step: String,
    /// Attempts of the current step so far.
    pub attempt: i32,
    /// Attempts allowed per step.
    pub max_attempts: i32,
    /// When the run may next start.
    pub scheduled_at: Millis,
    /// The worker holding the lease, while running.
    pub lease_owner: Option<String>,
    /// The last error, kept after retries and failure.
    pub last_error: Option<String>,
    /// The run that awaits this one, for children.
    pub parent_id: Option<RunId>,
    /// Creation time.
    pub created_at: Millis,
    /// Completion time.
    pub finished_at: Option<Millis>,
}

/// One entry of a run's step journal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The step.
    pub step: String,
    /// The attempt of that step.
    pub attempt: i32,
    /// `succeeded`, `repeated`, `snoozed`, `finished`, `errored`, `failed` or `rescued`.
    pub outcome: String,
    /// The error, for `errored`, `failed` and `rescued`.
    pub error: Option<String>,
    /// When the step started.
    pub started_at: Millis,
    /// When its outcome was recorded.
    pub finished_at: Millis,
}

impl JournalEntry {
    /// How long the attempt took.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.finished_at - self.started_at).unwrap_or(0))
    }
}

/// How many runs are in a state on a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    /// The queue.
    pub queue: String,
    /// The state.
    pub state: RunState,
    /// The number of runs.
    pub count: i64,
}
