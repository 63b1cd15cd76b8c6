//! The runtime handle: connect, migrate, enqueue, inspect and operate runs, start workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{PgPool, SqlitePool};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::run::{
    EnqueueOptions, Enqueued, JournalEntry, MAX_ARGS_BYTES, RunId, RunInfo, StateCount,
    duration_ms, system_time_to_ms,
};
use crate::store::{self, Db, NewRun, Store};
use crate::unique::unique_key;
use crate::worker::WorkerBuilder;
use crate::workflow::{RecoveryPoint, Workflow};

/// A handle on one acidic database: enqueue and inspect runs, and build workers. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), acidic_runtime::Error> {
/// let rt = acidic_runtime::Runtime::connect("sqlite://acidic.db").await?;
/// rt.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    /// Wakes this process's claimers when it enqueues (SQLite has no LISTEN/NOTIFY).
    pub(crate) wake: Notify,
}

/// Builds the row for `job`.
pub(crate) fn new_run<J: Workflow>(job: &J, options: &EnqueueOptions) -> Result<NewRun> {
    let value = serde_json::to_value(job).map_err(|source| Error::Json {
        op: "serialise",
        what: format!("arguments of {}", J::KIND),
        source,
    })?;
    let args = value.to_string();
    if args.len() > MAX_ARGS_BYTES {
        return Err(Error::PayloadTooLarge {
            kind: J::KIND,
            bytes: args.len(),
            limit: MAX_ARGS_BYTES,
        });
    }
    let unique_key = unique_key(J::KIND, J::OPTIONS.unique_by, &value)?;
    Ok(NewRun {
        kind: J::KIND,
        args,
        unique_key,
        queue: options
            .queue
            .clone()
            .unwrap_or_else(|| J::OPTIONS.queue.to_owned()),
        priority: options.priority.unwrap_or(J::OPTIONS.priority),
        step: first_step::<J>(),
        max_attempts: i32::try_from(J::OPTIONS.max_attempts.max(1)).unwrap_or(i32::MAX),
        at_ms: options.run_at.map(system_time_to_ms),
        delay_ms: options.run_after.map(duration_ms).unwrap_or(0),
        parent: None,
    })
}

/// The stored name of a workflow's first step (the terminal state for a workflow of no steps).
fn first_step<W: Workflow>() -> &'static str {
    W::Step::STEPS
        .first()
        .copied()
        .unwrap_or(W::Step::TERMINAL)
        .name()
}

impl Runtime {
    /// Connects to `postgres://...` or `sqlite:...` (the SQLite file is created if missing), with
    /// a pool of 10 connections.
    pub async fn connect(url: &str) -> Result<Runtime> {
        Ok(Self::from_store(Store::connect(url, 10).await?))
    }

    /// Uses an existing PostgreSQL pool.
    pub fn from_pg_pool(pool: PgPool) -> Runtime {
        Self::from_store(Store::Postgres(pool))
    }

    /// Uses an existing SQLite pool. The runtime relies on WAL mode and a busy timeout; see
    /// [`Runtime::sqlite_pool`] for a pool that sets them.
    pub fn from_sqlite_pool(pool: SqlitePool) -> Runtime {
        Self::from_store(Store::sqlite(pool))
    }

    /// A SQLite pool with the settings the runtime relies on (WAL, `synchronous = NORMAL`,
    /// busy timeout, foreign keys), for [`Runtime::from_sqlite_pool`].
    pub fn sqlite_pool(
        options: sqlx::sqlite::SqliteConnectOptions,
        max_connections: u32,
    ) -> SqlitePool {
        Store::sqlite_pool(options, max_connections)
    }

    fn from_store(store: Store) -> Runtime {
        Runtime {
            inner: Arc::new(Inner {
                store,
                wake: Notify::new(),
            }),
        }
    }

    /// `"PostgreSQL"` or `"SQLite"`.
    pub fn backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    /// Creates or upgrades the `acidic_` tables. Safe to call from many processes at once.
    pub async fn migrate(&self) -> Result<()> {
        self.inner.store.migrate().await
    }

    /// Starts configuring a worker for this database.
    pub fn worker(&self) -> WorkerBuilder {
        WorkerBuilder::new(self.clone())
    }

    /// Enqueues a run of `job`. With `unique_by` other than `job_id`, equal arguments return the
    /// existing run (`duplicate: true`) instead of creating one, also under concurrent enqueues.
    pub async fn enqueue<J: Workflow>(&self, job: &J) -> Result<Enqueued> {
        self.enqueue_with(job, EnqueueOptions::new()).await
    }

    /// [`enqueue`](Self::enqueue) with per-run options (schedule, queue, priority).
    pub async fn enqueue_with<J: Workflow>(
        &self,
        job: &J,
        options: EnqueueOptions,
    ) -> Result<Enqueued> {
        let run = new_run(job, &options)?;
        let out = store::enqueue(self.inner.store.acquire().await?.db(), &run).await?;
        self.inner.wake.notify_waiters();
        Ok(out)
    }

    /// Enqueues inside the caller's own transaction: the run exists only if that transaction
    /// commits. Pass `&mut tx` (a `sqlx::Transaction`) or `&mut *tx`.
    ///
    /// ```no_run
    /// # use acidic_runtime::prelude::*;
    /// # #[acidic_job] #[derive(serde::Serialize, serde::Deserialize)] struct Ship { order: i64 }
    /// # impl Perform for Ship { async fn perform(&self, _: &mut StepContext<'_>) -> StepResult { Ok(Flow::Next) } }
    /// # async fn demo(rt: acidic_runtime::Runtime, pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("UPDATE orders SET state = 'paid' WHERE id = $1").bind(7_i64).execute(&mut *tx).await?;
    /// rt.enqueue_in(&mut tx, &Ship { order: 7 }).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_in<'c, J: Workflow>(
        &self,
        db: impl Into<Db<'c>>,
        job: &J,
    ) -> Result<Enqueued> {
        let run = new_run(job, &EnqueueOptions::new())?;
        let out = store::enqueue(db.into(), &run).await?;
        // Too early on SQLite (the caller has not committed yet); the workers' poll covers it.
        self.inner.wake.notify_waiters();
        Ok(out)
    }

    /// Enqueues many runs of one job type in one statement. The result is in input order.
    pub async fn enqueue_many<J: Workflow>(&self, jobs: &[J]) -> Result<Vec<Enqueued>> {
        let mut conn = self.inner.store.acquire().await?;
        self.enqueue_many_in(conn.db(), jobs).await
    }

    /// [`enqueue_many`](Self::enqueue_many) inside the caller's own transaction.
    pub async fn enqueue_many_in<'c, J: Workflow>(
        &self,
        db: impl Into<Db<'c>>,
        jobs: &[J],
    ) -> Result<Vec<Enqueued>> {
        let options = EnqueueOptions::new();
        let runs = jobs
            .iter()
            .map(|j| new_run(j, &options))
            .collect::<Result<Vec<_>>>()?;
        let out = store::enqueue_many(db.into(), &runs).await?;
        self.inner.wake.notify_waiters();
        Ok(out)
    }

    /// Everything stored about a run, or `None`.
    pub async fn run(&self, id: RunId) -> Result<Option<RunInfo>> {
        self.inner.store.run(id).await
    }

    /// The run's step journal, oldest first.
    pub async fn journal(&self, id: RunId) -> Result<Vec<JournalEntry>> {
        self.inner.store.journal(id).await
    }

    /// A committed context value of a run.
    pub async fn context_value<T: serde::de::DeserializeOwned>(
        &self,
        id: RunId,
        key: &str,
    ) -> Result<Option<T>> {
        self.inner
            .store
            .context_get_committed(id, key)
            .await?
            .map(|s| {
                serde_json::from_str(&s).map_err(|source| Error::Json {
                    op: "deserialise",
                    what: format!("context value `{key}`"),
                    source,
                })
            })
            .transpose()
    }

    /// Counts of runs by queue and state.
    pub async fn counts(&self) -> Result<Vec<StateCount>> {
        self.inner.store.counts().await
    }

    /// Cancels a run that has not finished. A running run stops at its next step boundary: the
    /// step in flight cannot commit. Returns `false` when the run had already finished.
    pub async fn cancel(&self, id: RunId) -> Result<bool> {
        self.inner.store.cancel(id).await
    }

    /// Makes a failed or cancelled run available again at its stored step, with fresh attempts.
    pub async fn retry(&self, id: RunId) -> Result<()> {
        self.retry_impl(id, None).await
    }

    /// Moves a failed or cancelled run to the named step (for example after a deploy renamed
    /// its stored recovery point) and makes it available again. The name is checked against
    /// the workflow's steps.
    pub async fn retry_at_step<W: Workflow>(&self, id: RunId, step: W::Step) -> Result<()> {
        self.retry_impl(id, Some(step.name())).await
    }

    async fn retry_impl(&self, id: RunId, step: Option<&str>) -> Result<()> {
        if self.inner.store.retry(id, step).await? {
            self.inner.wake.notify_waiters();
            return Ok(());
        }
        match self.run(id).await? {
            None => Err(Error::RunNotFound(id)),
            Some(info) => Err(Error::InvalidState {
                run_id: id,
                state: info.state.to_string(),
                op: "retry",
                expected: "failed, cancelled or available",
            }),
        }
    }

    /// Deletes finished runs (with their journal and context) that finished more than
    /// `older_than` ago, `batch` at a time. Returns how many were deleted. Deleting a unique run
    /// frees its key.
    pub async fn purge(&self, older_than: Duration, batch: u32) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self
                .inner
                .store
                .purge(duration_ms(older_than), i64::from(batch.max(1)))
                .await?;
            total += n;
            if n < u64::from(batch.max(1)) {
                return Ok(total);
            }
        }
    }

    /// Waits until the run has finished (succeeded, failed or cancelled) and returns it; polls
    /// the database every 20 ms until `timeout`.
    pub async fn wait_for(&self, id: RunId, timeout: Duration) -> Result<RunInfo> {
        let start = Instant::now();
        loop {
            let info = self.run(id).await?.ok_or(Error::RunNotFound(id))?;
            if info.state.is_finished() {
                return Ok(info);
            }
            if start.elapsed() >= timeout {
                return Err(Error::WaitTimeout {
                    run_id: id,
                    waited_ms: start.elapsed().as_millis(),
                    state: info.state.to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }
}
