//! The runtime's error type.

use crate::RunId;

/// Errors returned by the runtime's API and by [`StepContext`](crate::StepContext) methods.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A database statement failed.
    #[error("database error while {op}: {source}")]
    Database {
        /// What the runtime was doing.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A job's arguments or a context value could not be serialised or deserialised.
    #[error("could not {op} {what}: {source}")]
    Json {
        /// `"serialise"` or `"deserialise"`.
        op: &'static str,
        /// What was being converted (a job kind or a context key).
        what: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// This worker no longer holds the run's lease (it expired and another worker took the run,
    /// or the run was cancelled): the step's transaction was rolled back and must not commit.
    #[error("run {run_id} is no longer held by this worker (lease lost or run cancelled)")]
    LeaseLost {
        /// The run.
        run_id: RunId,
    },
    /// A connection of the wrong database was asked for.
    #[error("this runtime uses {actual}, not {requested}")]
    WrongBackend {
        /// The backend the caller asked for.
        requested: &'static str,
        /// The backend in use.
        actual: &'static str,
    },
    /// A `unique_by` field is missing from the job's serialised arguments.
    #[error(
        "job {kind}: unique_by field `{field}` is not in its serialised arguments (unique_by names serialised field names)"
    )]
    UniqueField {
        /// The job kind.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// The job's arguments did not serialise to a JSON object, so `unique_by` fields cannot be read.
    #[error("job {kind}: unique_by fields need arguments that serialise to a JSON object")]
    UniqueNotObject {
        /// The job kind.
        kind: &'static str,
    },
    /// A job's serialised arguments exceed the size limit (they would bloat every claim).
    #[error(
        "arguments of {kind} are {bytes} bytes, over the limit of {limit} bytes; store large data elsewhere and pass a reference"
    )]
    PayloadTooLarge {
        /// The job kind.
        kind: &'static str,
        /// The size of the serialised arguments.
        bytes: usize,
        /// The limit ([`MAX_ARGS_BYTES`](crate::run::MAX_ARGS_BYTES)).
        limit: usize,
    },
    /// The database URL is neither `postgres://` nor `sqlite:`.
    #[error("unsupported database url `{0}`: expected postgres://... or sqlite:...")]
    UnsupportedUrl(String),
    /// A run does not exist.
    #[error("run {0} does not exist")]
    RunNotFound(RunId),
    /// A run is not in a state that allows the operation.
    #[error("run {run_id} is {state}; {op} needs a run that is {expected}")]
    InvalidState {
        /// The run.
        run_id: RunId,
        /// Its current state.
        state: String,
        /// The operation.
        op: &'static str,
        /// The states that allow it.
        expected: &'static str,
    },
    /// Waiting for a run timed out.
    #[error("run {run_id} did not finish within {waited_ms} ms (it is {state})")]
    WaitTimeout {
        /// The run.
        run_id: RunId,
        /// How long the caller waited.
        waited_ms: u128,
        /// Its state when the wait ended.
        state: String,
    },
    /// A stored value could not be understood (a corrupted or foreign row).
    #[error("unexpected stored value for {what}: `{value}`")]
    Corrupt {
        /// The column.
        what: &'static str,
        /// The value found.
        value: String,
    },
}

impl Error {
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Database { op, source }
    }
}

/// Result alias for the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;
