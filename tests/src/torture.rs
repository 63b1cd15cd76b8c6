//! The crash-and-concurrency torture workload (SPEC §10), shared by the `torture` driver and the
//! `torture-worker` processes it starts and kills.
//!
//! Workflows are balance transfers: `debit` and `credit` each move money and write a ledger row,
//! `record` writes a transfer row. Steps sleep and fail at pseudo-random moments so that kills
//! land before, inside and after their transactions. Nothing here has a unique constraint on the
//! effects: a step applied twice must show up as a duplicate row, not as an error.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;
use std::time::Duration;

use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};

/// The queue the workload runs on.
pub const QUEUE: &str = "torture";
/// Accounts and their opening balance.
pub const ACCOUNTS: i64 = 100;
/// Opening balance of each account.
pub const OPENING: i64 = 1_000_000;

/// Runs one statement with integer and text parameters on the step's transaction.
macro_rules! exec {
    ($cx:expr, $sql:expr $(, $arg:expr)*) => {
        match $cx.db().await? {
            Db::Postgres(c) => sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|_| ())?,
            Db::Sqlite(c) => sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|_| ())?,
        }
    };
}

/// A pseudo-random number for (run, step, attempt, salt): the same on every execution of that
/// attempt, so a failure injected once is injected again only in the same attempt.
fn roll(cx: &StepContext<'_>, salt: u64) -> u64 {
    let mut h = DefaultHasher::new();
    (cx.run_id().0, cx.step(), cx.attempt(), salt).hash(&mut h);
    h.finish()
}

/// Sleeps up to `max_ms` (outside or inside the transaction) so that kills land before, inside
/// and after transactions.
async fn jitter(cx: &StepContext<'_>, salt: u64, max_ms: u64) {
    let ms = roll(cx, salt) % (max_ms + 1);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Fails about one attempt in eight, after the step's writes (which must then roll back); never
/// after attempt 3, so that every workflow can finish.
fn injected_failure(cx: &StepContext<'_>) -> StepResult {
    if cx.attempt() <= 3 && roll(cx, 99).is_multiple_of(8) {
        return Err(format!("injected failure in {} attempt {}", cx.step(), cx.attempt()).into());
    }
    Ok(Flow::Next)
}

/// A balance transfer in three steps.
#[acidic_job(
    kind = "torture.transfer",
    queue = "torture",
    max_attempts = 12,
    backoff_base_ms = 20,
    backoff_max_ms = 400
)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TortureTransfer {
    /// Debited account.
    pub from: i64,
    /// Credited account.
    pub to: i64,
    /// Amount moved.
    pub amount: i64,
}

steps!(TortureTransfer: debit; credit; record);

impl TortureTransfer {
    async fn debit(&self, cx: &mut StepContext<'_>) -> StepResult {
        self.move_money(cx, self.from, -self.amount).await
    }

    async fn credit(&self, cx: &mut StepContext<'_>) -> StepResult {
        self.move_money(cx, self.to, self.amount).await
    }

    async fn move_money(&self, cx: &mut StepContext<'_>, account: i64, delta: i64) -> StepResult {
        jitter(cx, 1, 15).await;
        let run = cx.run_id().0;
        let step = cx.step();
        exec!(
            cx,
            "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
            delta,
            account
        );
        jitter(cx, 2, 4).await;
        exec!(
            cx,
            "INSERT INTO ledger (run_id, step, account, delta) VALUES ($1, $2, $3, $4)",
            run,
            step,
            account,
            delta
        );
        injected_failure(cx)
    }

    async fn record(&self, cx: &mut StepContext<'_>) -> StepResult {
        jitter(cx, 3, 15).await;
        let run = cx.run_id().0;
        exec!(cx, "INSERT INTO transfers (run_id) VALUES ($1)", run);
        injected_failure(cx)
    }
}

/// A job enqueued several times with equal arguments: must become one run with one effect.
#[acidic_job(
    kind = "torture.dedup",
    queue = "torture",
    unique_by = "args",
    max_attempts = 12,
    backoff_base_ms = 20
)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dedup {
    /// The deduplication key.
    pub key: i64,
}

impl Perform for Dedup {
    async fn perform(&self, cx: &mut StepContext<'_>) -> StepResult {
        jitter(cx, 4, 15).await;
        let run = cx.run_id().0;
        exec!(
            cx,
            "INSERT INTO dedup_effects (run_id, dedup_key) VALUES ($1, $2)",
            run,
            self.key
        );
        injected_failure(cx)
    }
}

/// An iteration: one step that repeats, with its cursor in the run's context. Iterations are
/// slow (up to 80 ms each) so that a worker frozen past its lease wakes up while its successor
/// is still in the same step: only the lease token then stops the stale worker from writing an
/// item twice.
#[acidic_job(
    kind = "torture.batch",
    queue = "torture",
    max_attempts = 12,
    backoff_base_ms = 20
)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// How many items to process.
    pub items: i64,
}

steps!(Batch: process);

impl Batch {
    async fn process(&self, cx: &mut StepContext<'_>) -> StepResult {
        let cursor: i64 = cx.get("cursor").await?.unwrap_or(0);
        if cursor >= self.items {
            return Ok(Flow::Next);
        }
        // The slow part of an iteration (a foreign call for this item), outside the transaction.
        jitter(cx, 5, 80).await;
        let run = cx.run_id().0;
        exec!(
            cx,
            "INSERT INTO batch_items (run_id, item) VALUES ($1, $2)",
            run,
            cursor
        );
        cx.set("cursor", &(cursor + 1)).await?;
        jitter(cx, 6, 4).await;
        injected_failure(cx)?;
        Ok(Flow::Repeat)
    }
}

/// Where the workload runs: passed to worker processes as one string.
#[derive(Debug, Clone)]
pub enum Target {
    /// `postgres:<schema>@<url>`
    Postgres {
        /// The server.
        url: String,
        /// The schema of this run.
        schema: String,
    },
    /// `sqlite:<path>`
    Sqlite {
        /// The database file.
        path: String,
    },
}

impl Target {
    /// Parses the form [`Target::encode`] writes.
    pub fn parse(s: &str) -> Option<Target> {
        if let Some(rest) = s.strip_prefix("postgres:") {
            let (schema, url) = rest.split_once('@')?;
            Some(Target::Postgres {
                url: url.to_owned(),
                schema: schema.to_owned(),
            })
        } else {
            s.strip_prefix("sqlite:")
                .map(|p| Target::Sqlite { path: p.to_owned() })
        }
    }

    /// The string a worker process is given.
    pub fn encode(&self) -> String {
        match self {
            Target::Postgres { url, schema } => format!("postgres:{schema}@{url}"),
            Target::Sqlite { path } => format!("sqlite:{path}"),
        }
    }

    /// A pool on the target.
    pub fn pool(&self, size: u32) -> Result<Pool, sqlx::Error> {
        Ok(match self {
            Target::Postgres { url, schema } => {
                let opts = PgConnectOptions::from_str(url)?.options([("search_path", schema)]);
                Pool::Pg(
                    PgPoolOptions::new()
                        .max_connections(size)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_lazy_with(opts),
                )
            }
            Target::Sqlite { path } => {
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                Pool::Sqlite(Runtime::sqlite_pool(opts, size))
            }
        })
    }
}

/// A pool of either database, for the driver's set-up and checks.
#[derive(Clone)]
pub enum Pool {
    /// PostgreSQL.
    Pg(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

impl Pool {
    /// The runtime on this pool.
    pub fn runtime(&self) -> Runtime {
        match self {
            Pool::Pg(p) => Runtime::from_pg_pool(p.clone()),
            Pool::Sqlite(p) => Runtime::from_sqlite_pool(p.clone()),
        }
    }

    /// Runs a script (several statements).
    pub async fn script(&self, sql: &'static str) -> Result<(), sqlx::Error> {
        match self {
            Pool::Pg(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Pool::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        }
    }

    /// Runs one statement with one integer parameter.
    pub async fn exec(&self, sql: &'static str, arg: i64) -> Result<u64, sqlx::Error> {
        match self {
            Pool::Pg(p) => sqlx::query(sql)
                .bind(arg)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Sqlite(p) => sqlx::query(sql)
                .bind(arg)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
    }

    /// The integers of the first column.
    pub async fn ints(&self, sql: &'static str) -> Result<Vec<i64>, sqlx::Error> {
        match self {
            Pool::Pg(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
    }

    /// One integer.
    pub async fn int(&self, sql: &'static str) -> Result<i64, sqlx::Error> {
        match self {
            Pool::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
    }
}

/// The application tables of the workload.
pub const SCHEMA: &str = "
    CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL);
    CREATE TABLE ledger (run_id BIGINT NOT NULL, step TEXT NOT NULL, account BIGINT NOT NULL,
                         delta BIGINT NOT NULL);
    CREATE TABLE transfers (run_id BIGINT NOT NULL);
    CREATE TABLE dedup_effects (run_id BIGINT NOT NULL, dedup_key BIGINT NOT NULL);
    CREATE TABLE batch_items (run_id BIGINT NOT NULL, item BIGINT NOT NULL);
    CREATE INDEX ledger_run ON ledger (run_id);
    CREATE INDEX ledger_account ON ledger (account);
    CREATE INDEX transfers_run ON transfers (run_id);
    CREATE INDEX dedup_effects_run ON dedup_effects (run_id);
    CREATE INDEX batch_items_run ON batch_items (run_id);
";

/// Starts a worker on `target` that runs until the process is killed.
pub async fn run_worker(target: &Target, id: &str) -> Result<std::convert::Infallible, String> {
    let pool = target.pool(6).map_err(|e| e.to_string())?;
    let _worker = pool
        .runtime()
        .worker()
        .register::<TortureTransfer>()
        .register::<Dedup>()
        .register::<Batch>()
        .queue(QUEUE, 8)
        .prefetch(4)
        .id(id)
        .lease(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(400))
        .rescue_interval(Duration::from_millis(300))
        .poll_interval(Duration::from_millis(100))
        .start();
    std::future::pending().await
}
