//! acidic: ACIDic jobs (skeleton).
#![warn(missing_docs)]

pub mod context;
pub mod job;
pub mod workflow;

#[doc(hidden)]
pub mod __private;

pub use acidic_macros::{acidic_job, steps};
pub use context::StepContext;
pub use job::{Backoff, Job, JobOptions, UniqueBy};
pub use workflow::{BoxFuture, Flow, OneStep, Perform, RecoveryPoint, StepError, StepResult, Workflow};

/// Errors of the runtime (skeleton).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder.
    #[error("placeholder")]
    Placeholder,
}

/// Everything a job module needs: `use acidic_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Flow, Job, Perform, StepContext, StepError, StepResult, Workflow, acidic_job, steps,
    };
}
