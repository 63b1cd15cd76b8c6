//! # acidic: ACIDic jobs
//!
//! Background jobs and multi-step workflows that are transactional and idempotent: every step
//! runs in one database transaction that locks the run, checks that this worker still holds it,
//! applies the step's own writes and advances the run's persisted recovery point, all together or
//! not at all. Steps therefore take effect in the database exactly once, across crashes, retries,
//! duplicate enqueues and many worker processes. SQLite is the embedded default; PostgreSQL is the
//! production engine, shared by any number of worker processes.
//!
//! ```no_run
//! use acidic_runtime::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[acidic_job(unique_by = "args", queue = "orders", max_attempts = 8)]
//! #[derive(Debug, Serialize, Deserialize)]
//! pub struct FulfillOrder {
//!     pub order_id: i64,
//! }
//!
//! steps!(FulfillOrder: process_order; send_emails);
//!
//! impl FulfillOrder {
//!     async fn process_order(&self, cx: &mut StepContext<'_>) -> StepResult {
//!         sqlx::query("UPDATE orders SET state = 'processed' WHERE id = ?1")
//!             .bind(self.order_id)
//!             .execute(cx.sqlite().await?)
//!             .await?;
//!         Ok(Flow::Next)
//!     }
//!     async fn send_emails(&self, cx: &mut StepContext<'_>) -> StepResult {
//!         let _key = cx.idempotency_key(); // pass to the mail API
//!         Ok(Flow::Next)
//!     }
//! }
//!
//! # async fn demo() -> Result<(), acidic_runtime::Error> {
//! let rt = Runtime::connect("sqlite://acidic.db").await?;
//! rt.migrate().await?;
//! rt.enqueue(&FulfillOrder { order_id: 7 }).await?;
//! let worker = rt.worker().register::<FulfillOrder>().queue("orders", 4).start();
//! # worker.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod context;
pub mod error;
pub mod job;
pub mod run;
pub mod runtime;
pub mod worker;
pub mod workflow;

mod retry;
mod store;
mod unique;

#[doc(hidden)]
pub mod __private;

pub use acidic_macros::{acidic_job, steps};
pub use context::StepContext;
pub use error::{Error, Result};
pub use job::{Backoff, Job, JobOptions, UniqueBy};
pub use run::{
    EnqueueOptions, Enqueued, JournalEntry, MAX_ARGS_BYTES, Millis, RunId, RunInfo, RunState,
    StateCount,
};
pub use runtime::Runtime;
pub use store::Db;
pub use worker::{ShutdownReport, Worker, WorkerBuilder};
pub use workflow::{
    BoxFuture, Flow, OneStep, Perform, RecoveryPoint, StepError, StepResult, Workflow,
};

/// Everything a job module needs: `use acidic_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Db, Flow, Job, Perform, RecoveryPoint, RunId, Runtime, StepContext, StepError, StepResult,
        Workflow, acidic_job, steps,
    };
}
