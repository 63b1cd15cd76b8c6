//! The step context: the run's identity, the step's transaction and the run's durable values.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, SqliteConnection};

use crate::error::{Error, Result};
use crate::run::{EnqueueOptions, Enqueued, RunId};
use crate::runtime::new_run;
use crate::store::{self, Db, Lease, Store, Tx};
use crate::workflow::Workflow;

/// What a running step can see and use.
///
/// The step's transaction begins the first time the step touches the database through the
/// context ([`db`](Self::db), [`pg`](Self::pg), [`sqlite`](Self::sqlite), [`set`](Self::set),
/// [`enqueue`](Self::enqueue)): the run is locked and this worker's lease on it checked at that
/// moment. Do slow foreign calls *before* that, so no transaction or pooled connection is held
/// across them. Everything written through the context commits together with the advance of
/// the run's recovery point, or not at all.
///
/// ```
/// use acidic_runtime::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[acidic_job]
/// #[derive(Serialize, Deserialize)]
/// struct Charge {
///     order_id: i64,
/// }
///
/// impl Perform for Charge {
///     async fn perform(&self, cx: &mut StepContext<'_>) -> StepResult {
///         // 1. The foreign call, outside any transaction, with a key stable across retries.
///         let receipt = format!("charged-{}-{}", self.order_id, cx.idempotency_key());
///         // 2. Its result and our own writes commit with the step.
///         cx.set("receipt", &receipt).await?;
///         Ok(Flow::Next)
///     }
/// }
/// ```
pub struct StepContext<'r> {
    store: &'r Store,
    lease: Lease,
    kind: &'r str,
    step: &'static str,
    attempt: u32,
    iteration: u32,
    tx: Option<Tx>,
}

impl<'r> StepContext<'r> {
    pub(crate) fn new(
        store: &'r Store,
        lease: Lease,
        kind: &'r str,
        step: &'static str,
        attempt: u32,
        iteration: u32,
    ) -> Self {
        StepContext {
            store,
            lease,
            kind,
            step,
            attempt,
            iteration,
            tx: None,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.lease.run_id
    }

    /// The job kind.
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// The step's stored name.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// Which attempt of this step this is, from 1. A snoozed step keeps its attempt number.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many times this step has already returned [`Flow::Repeat`](crate::Flow::Repeat).
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// A key that is the same on every attempt of this step (and iteration) of this run, and
    /// different for every other: pass it to foreign APIs that deduplicate requests.
    pub fn idempotency_key(&self) -> String {
        format!(
            "acidic-{}-{}-{}",
            self.lease.run_id, self.step, self.iteration
        )
    }

    /// Whether the step's transaction has begun.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// The step's transaction, begun (and the run locked and checked) on first use.
    pub async fn db(&mut self) -> Result<Db<'_>> {
        Ok(self.tx().await?.db())
    }

    /// The step's transaction as a PostgreSQL connection: `query.execute(cx.pg().await?)`.
    pub async fn pg(&mut self) -> Result<&mut PgConnection> {
        let actual = self.store.backend();
        match self.tx().await? {
            Tx::Postgres(t) => Ok(&mut **t),
            Tx::Sqlite(..) => Err(Error::WrongBackend {
                requested: "PostgreSQL",
                actual,
            }),
        }
    }

    /// The step's transaction as a SQLite connection.
    pub async fn sqlite(&mut self) -> Result<&mut SqliteConnection> {
        let actual = self.store.backend();
        match self.tx().await? {
            Tx::Sqlite(t, _) => Ok(&mut **t),
            Tx::Postgres(_) => Err(Error::WrongBackend {
                requested: "SQLite",
                actual,
            }),
        }
    }

    /// Reads a durable context value of this run. Inside the step's transaction it sees the
    /// step's own writes; before it, the values committed by earlier steps.
    pub async fn get<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        let run = self.lease.run_id;
        let raw = match &mut self.tx {
            Some(tx) => store::context_get(tx.db(), run, key).await?,
            None => self.store.context_get_committed(run, key).await?,
        };
        raw.map(|s| {
            serde_json::from_str(&s).map_err(|source| Error::Json {
                op: "deserialise",
                what: format!("context value `{key}`"),
                source,
            })
        })
        .transpose()
    }

    /// Stores a durable context value of this run, in the step's transaction: it survives
    /// retries and later steps read it, once the step commits.
    pub async fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let raw = serde_json::to_string(value).map_err(|source| Error::Json {
            op: "serialise",
            what: format!("context value `{key}`"),
            source,
        })?;
        let run = self.lease.run_id;
        store::context_set(self.tx().await?.db(), run, key, &raw).await
    }

    /// Enqueues another job in the step's transaction: the run exists only if the step commits.
    pub async fn enqueue<J: Workflow>(&mut self, job: &J) -> Result<Enqueued> {
        self.enqueue_with(job, EnqueueOptions::new()).await
    }

    /// [`enqueue`](Self::enqueue) with per-run options.
    pub async fn enqueue_with<J: Workflow>(
        &mut self,
        job: &J,
        options: EnqueueOptions,
    ) -> Result<Enqueued> {
        let run = new_run(job, &options)?;
        store::enqueue(self.tx().await?.db(), &run).await
    }

    async fn tx(&mut self) -> Result<&mut Tx> {
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.store.begin_step(self.lease, self.step).await?,
        };
        Ok(self.tx.insert(tx))
    }

    pub(crate) fn take_tx(&mut self) -> Option<Tx> {
        self.tx.take()
    }
}
