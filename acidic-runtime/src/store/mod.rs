//! The `Store` seam: every SQL statement of the runtime, for PostgreSQL and SQLite.
//!
//! Each dialect module holds the same named statements ([`Q`]) with the same numbered
//! parameters; the Rust that binds and decodes them is written once here and compiled for both
//! connection types by [`on_db!`] and [`on_pool!`]. Every state change is guarded by the state it
//! expects and by the lease token (fencing), so a statement from a worker that lost its lease
//! changes nothing.

mod postgres;
mod sqlite;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{PgConnection, Postgres, Row, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::run::{Enqueued, JournalEntry, RunId, RunInfo, RunState, StateCount};

/// The named statements of one dialect.
pub(crate) struct Q {
    pub begin_write: &'static str,
    pub enqueue: &'static str,
    pub claim: &'static str,
    pub guard: &'static str,
    pub transition: &'static str,
    pub heartbeat: &'static str,
    pub rescue: &'static str,
    /// Rows `rescue` changes per rescued run (its journal insert, plus its update when that is a
    /// separate statement).
    pub rescue_rows_per_run: u64,
    pub release_owned: &'static str,
    pub cancel: &'static str,
    pub retry: &'static str,
    pub now: &'static str,
}

const RUN_COLUMNS: &str =
    "SELECT id, kind, args, unique_key, queue, priority, state, step, attempt,
    max_attempts, scheduled_at, lease_owner, last_error, parent_id, created_at, finished_at
    FROM acidic_runs WHERE id = $1";
const JOURNAL: &str = "SELECT step, attempt, outcome, error, started_at, finished_at
    FROM acidic_journal WHERE run_id = $1 ORDER BY id";
const COUNTS: &str =
    "SELECT queue, state, COUNT(*) FROM acidic_runs GROUP BY queue, state ORDER BY queue, state";
const CONTEXT_GET: &str = "SELECT value FROM acidic_context WHERE run_id = $1 AND key = $2";
const CONTEXT_SET: &str = "INSERT INTO acidic_context (run_id, key, value) VALUES ($1, $2, $3)
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value";
const EXISTING_BY_KEY: &str = "SELECT id FROM acidic_runs WHERE unique_key = $1";

/// Runs `$body` with `$c` bound to the concrete connection of a [`Db`], `$q` to its dialect's
/// statements and `$m` to its dialect module.
macro_rules! on_db {
    ($db:expr, |$c:ident, $q:ident, $m:ident| $body:expr) => {
        match $db {
            Db::Postgres($c) => {
                #[allow(unused_imports)]
                use postgres as $m;
                let $q = &postgres::SQL;
                $body
            }
            Db::Sqlite($c) => {
                #[allow(unused_imports)]
                use sqlite as $m;
                let $q = &sqlite::SQL;
                $body
            }
        }
    };
}

/// Like [`on_db!`], for the store's pool.
macro_rules! on_pool {
    ($store:expr, |$p:ident, $q:ident| $body:expr) => {
        match $store {
            Store::Postgres($p) => {
                let $q = &postgres::SQL;
                $body
            }
            Store::Sqlite($p, _) => {
                let $q = &sqlite::SQL;
                $body
            }
        }
    };
}

/// A connection of either database, borrowed for the duration of a call. Steps get one from
/// [`StepContext::db`](crate::StepContext::db); the caller's own transaction converts into one
/// for [`Runtime::enqueue_in`](crate::Runtime::enqueue_in).
pub enum Db<'c> {
    /// A PostgreSQL connection (or transaction, through `&mut *tx`).
    Postgres(&'c mut PgConnection),
    /// A SQLite connection (or transaction, through `&mut *tx`).
    Sqlite(&'c mut SqliteConnection),
}

impl<'c> From<&'c mut PgConnection> for Db<'c> {
    fn from(c: &'c mut PgConnection) -> Self {
        Db::Postgres(c)
    }
}

impl<'c> From<&'c mut SqliteConnection> for Db<'c> {
    fn from(c: &'c mut SqliteConnection) -> Self {
        Db::Sqlite(c)
    }
}

impl<'c> From<&'c mut Transaction<'_, Postgres>> for Db<'c> {
    fn from(tx: &'c mut Transaction<'_, Postgres>) -> Self {
        Db::Postgres(tx)
    }
}

impl<'c> From<&'c mut Transaction<'_, Sqlite>> for Db<'c> {
    fn from(tx: &'c mut Transaction<'_, Sqlite>) -> Self {
        Db::Sqlite(tx)
    }
}

/// A connection of the runtime's own pool (on SQLite, holding the writer gate).
pub(crate) enum Conn {
    Postgres(sqlx::pool::PoolConnection<Postgres>),
    /// The writer gate is held (for its drop) as long as the connection.
    Sqlite {
        conn: sqlx::pool::PoolConnection<Sqlite>,
        _turn: OwnedMutexGuard<()>,
    },
}

impl Conn {
    pub(crate) fn db(&mut self) -> Db<'_> {
        match self {
            Conn::Postgres(c) => Db::Postgres(c),
            Conn::Sqlite { conn, .. } => Db::Sqlite(conn),
        }
    }
}

/// An open write transaction of the runtime's own pool.
pub(crate) enum Tx {
    Postgres(Transaction<'static, Postgres>),
    /// SQLite's write transaction holds this process's writer gate until it ends.
    Sqlite(Transaction<'static, Sqlite>, OwnedMutexGuard<()>),
}

impl Tx {
    pub(crate) fn db(&mut self) -> Db<'_> {
        match self {
            Tx::Postgres(t) => Db::Postgres(t),
            Tx::Sqlite(t, _) => Db::Sqlite(t),
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(t) => t.commit().await,
            Tx::Sqlite(t, _gate) => t.commit().await,
        }
        .map_err(Error::db("committing"))
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Postgres(t) => t.rollback().await,
            Tx::Sqlite(t, _gate) => t.rollback().await,
        }
        .map_err(Error::db("rolling back"))
    }

    /// Ends the transaction by the outcome of what ran in it: commits after `Ok` (returning the
    /// commit's error if it fails), rolls back after `Err` (returning that error).
    pub(crate) async fn settle<T>(self, outcome: Result<T>) -> Result<T> {
        match outcome {
            Ok(v) => self.commit().await.map(|()| v),
            Err(e) => {
                let _ = self.rollback().await;
                Err(e)
            }
        }
    }
}

/// A run to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewRun {
    pub kind: &'static str,
    pub args: String,
    pub unique_key: Option<String>,
    pub queue: String,
    pub priority: i16,
    pub step: &'static str,
    pub max_attempts: i32,
    pub at_ms: Option<i64>,
    pub delay_ms: i64,
    pub parent: Option<i64>,
}

/// A run claimed by this worker.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub id: RunId,
    pub kind: String,
    pub args: String,
    pub step: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub token: i64,
    pub iteration: i32,
}

/// This worker's hold on a run: the fencing token every guarded statement checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub run_id: RunId,
    pub token: i64,
}

/// A guarded change of a running run, with its journal entry.
#[derive(Debug, Clone)]
pub(crate) struct Transition<'a> {
    pub state: RunState,
    pub step: &'a str,
    pub iteration: i32,
    pub attempt: i32,
    pub delay_ms: i64,
    pub outcome: &'static str,
    pub journal_attempt: i32,
    pub duration_ms: i64,
    pub error: Option<String>,
}

/// The store: a pool of one of the two databases.
///
/// SQLite has one writer at a time. Its writes in this process queue on an async gate (the
/// mutex) instead of on SQLite's busy handler, which sleeps and retries and collapses
/// throughput under concurrency; other processes still meet the busy timeout.
#[derive(Clone, Debug)]
pub(crate) enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool, Arc<Mutex<()>>),
}

impl Store {
    /// Connects to `postgres://...` or `sqlite:...` (a SQLite file is created if missing).
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(Error::db("parsing the url"))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .connect_with(opts)
                .await
                .map_err(Error::db("connecting to PostgreSQL"))?;
            Ok(Store::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(Error::db("parsing the url"))?
                .create_if_missing(true);
            Ok(Store::sqlite(Self::sqlite_pool(opts, max_connections)))
        } else {
            Err(Error::UnsupportedUrl(url.to_owned()))
        }
    }

    /// A SQLite pool with the settings the runtime relies on: WAL, `synchronous = NORMAL`
    /// (durable across process crashes; a power loss may lose the last commits, atomically),
    /// a long busy timeout for the single writer, foreign keys on.
    pub(crate) fn sqlite_pool(opts: SqliteConnectOptions, max_connections: u32) -> SqlitePool {
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(60))
            .foreign_keys(true);
        SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_lazy_with(opts)
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "PostgreSQL",
            Store::Sqlite(..) => "SQLite",
        }
    }

    /// Applies the migrations not applied yet, each in its own transaction.
    pub(crate) async fn migrate(&self) -> Result<()> {
        let (migrations, lock) = match self {
            Store::Postgres(_) => (postgres::MIGRATIONS, postgres::MIGRATE_LOCK),
            Store::Sqlite(..) => (sqlite::MIGRATIONS, sqlite::MIGRATE_LOCK),
        };
        for &(version, name, script) in migrations {
            let mut tx = self.begin_write().await?;
            let applied = on_db!(tx.db(), |c, _q, _m| {
                sqlx::query(lock)
                    .execute(&mut *c)
                    .await
                    .map_err(Error::db("locking migrations"))?;
                sqlx::raw_sql(
                    "CREATE TABLE IF NOT EXISTS acidic_migrations (
                        version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
                )
                .execute(&mut *c)
                .await
                .map_err(Error::db("creating acidic_migrations"))?;
                let done: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM acidic_migrations WHERE version = $1")
                        .bind(version)
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(Error::db("reading acidic_migrations"))?;
                if done.is_none() {
                    sqlx::raw_sql(script)
                        .execute(&mut *c)
                        .await
                        .map_err(Error::db("applying a migration"))?;
                    sqlx::query("INSERT INTO acidic_migrations (version, name) VALUES ($1, $2)")
                        .bind(version)
                        .bind(name)
                        .execute(&mut *c)
                        .await
                        .map_err(Error::db("recording a migration"))?;
                }
                done.is_some()
            });
            tx.commit().await?;
            if !applied {
                tracing::info!(version, name, "applied acidic migration");
            }
        }
        Ok(())
    }

    /// A SQLite store over `pool`, with its writer gate.
    pub(crate) fn sqlite(pool: SqlitePool) -> Store {
        Store::Sqlite(pool, Arc::new(Mutex::new(())))
    }

    /// On SQLite, waits for this process's turn to write (the gate is taken before a pooled
    /// connection, so a writer never waits for a connection held by a waiting writer).
    async fn write_turn(&self) -> Option<OwnedMutexGuard<()>> {
        match self {
            Store::Postgres(_) => None,
            Store::Sqlite(_, gate) => Some(gate.clone().lock_owned().await),
        }
    }

    /// A connection from the pool, for writes outside a transaction.
    pub(crate) async fn acquire(&self) -> Result<Conn> {
        match self {
            Store::Postgres(p) => p.acquire().await.map(Conn::Postgres),
            Store::Sqlite(p, gate) => {
                let turn = gate.clone().lock_owned().await;
                p.acquire()
                    .await
                    .map(|conn| Conn::Sqlite { conn, _turn: turn })
            }
        }
        .map_err(Error::db("acquiring a connection"))
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite: take the write lock first).
    pub(crate) async fn begin_write(&self) -> Result<Tx> {
        match self {
            Store::Postgres(p) => p
                .begin_with(postgres::SQL.begin_write)
                .await
                .map(Tx::Postgres),
            Store::Sqlite(p, gate) => {
                let turn = gate.clone().lock_owned().await;
                p.begin_with(sqlite::SQL.begin_write)
                    .await
                    .map(|t| Tx::Sqlite(t, turn))
            }
        }
        .map_err(Error::db("beginning a transaction"))
    }

    /// Claims up to `limit` available runs of `queue` for `worker`.
    pub(crate) async fn claim(
        &self,
        queue: &str,
        limit: usize,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Vec<Claimed>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let _turn = self.write_turn().await;
        let rows = on_pool!(self, |p, q| {
            sqlx::query(q.claim)
                .bind(queue)
                .bind(limit)
                .bind(worker)
                .bind(lease_ms)
                .fetch_all(p)
                .await
                .map_err(Error::db("claiming runs"))?
                .iter()
                .map(|r| {
                    Ok(Claimed {
                        id: RunId(r.try_get(0)?),
                        kind: r.try_get(1)?,
                        args: r.try_get(2)?,
                        step: r.try_get(3)?,
                        attempt: r.try_get(4)?,
                        max_attempts: r.try_get(5)?,
                        token: r.try_get(6)?,
                        iteration: r.try_get(7)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        });
        rows.map_err(Error::db("decoding claimed runs"))
    }

    /// Extends the leases of every run `worker` holds. Returns how many.
    pub(crate) async fn heartbeat(&self, worker: &str, lease_ms: i64) -> Result<u64> {
        let _turn = self.write_turn().await;
        on_pool!(self, |p, q| {
            sqlx::query(q.heartbeat)
                .bind(worker)
                .bind(lease_ms)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
                .map_err(Error::db("extending leases"))
        })
    }

    /// Makes runs whose lease expired available again (or failed, when that was their last
    /// attempt), with a journal entry each. Returns how many were rescued.
    pub(crate) async fn rescue(&self, limit: i64) -> Result<u64> {
        let now = self.now().await?;
        let mut tx = self.begin_write().await?;
        let (changed, per_run) = on_db!(tx.db(), |c, q, _m| {
            let n = sqlx::query(q.rescue)
                .bind(limit)
                .bind(now)
                .execute(&mut *c)
                .await
                .map_err(Error::db("rescuing expired leases"))?
                .rows_affected();
            (n, q.rescue_rows_per_run)
        });
        tx.commit().await?;
        Ok(changed / per_run)
    }

    /// Gives back every run `worker` still holds (after an abandoned shutdown), without
    /// counting the interrupted attempt.
    pub(crate) async fn release_owned(&self, worker: &str) -> Result<u64> {
        let _turn = self.write_turn().await;
        on_pool!(self, |p, q| {
            sqlx::query(q.release_owned)
                .bind(worker)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
                .map_err(Error::db("releasing leases"))
        })
    }

    /// The database's clock, in milliseconds since the epoch.
    pub(crate) async fn now(&self) -> Result<i64> {
        on_pool!(self, |p, q| {
            sqlx::query_scalar(q.now)
                .fetch_one(p)
                .await
                .map_err(Error::db("reading the clock"))
        })
    }

    pub(crate) async fn cancel(&self, id: RunId) -> Result<bool> {
        let _turn = self.write_turn().await;
        on_pool!(self, |p, q| {
            sqlx::query(q.cancel)
                .bind(id.0)
                .execute(p)
                .await
                .map(|r| r.rows_affected() > 0)
                .map_err(Error::db("cancelling a run"))
        })
    }

    pub(crate) async fn retry(&self, id: RunId, step: Option<&str>) -> Result<bool> {
        let _turn = self.write_turn().await;
        on_pool!(self, |p, q| {
            sqlx::query(q.retry)
                .bind(id.0)
                .bind(step)
                .execute(p)
                .await
                .map(|r| r.rows_affected() > 0)
                .map_err(Error::db("retrying a run"))
        })
    }

    /// Deletes up to `batch` runs finished more than `horizon_ms` ago, with their journal and
    /// context. Returns how many runs.
    pub(crate) async fn purge(&self, horizon_ms: i64, batch: i64) -> Result<u64> {
        let cutoff = self.now().await?.saturating_sub(horizon_ms);
        let mut tx = self.begin_write().await?;
        let purged = on_db!(tx.db(), |c, _q, m| m::purge(&mut *c, cutoff, batch).await);
        tx.settle(purged).await
    }

    /// Begins the transaction of a step: locks the run and checks that `lease` still holds it
    /// at `step` ([`Error::LeaseLost`] otherwise). On PostgreSQL the lock travels with the
    /// `BEGIN`, in one round trip.
    pub(crate) async fn begin_step(&self, lease: Lease, step: &str) -> Result<Tx> {
        if let Store::Postgres(p) = self
            && let Some(sql) = postgres::begin_step(lease, step)
        {
            return match p.begin_with(sqlx::AssertSqlSafe(sql)).await {
                Ok(t) => Ok(Tx::Postgres(t)),
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some(postgres::LEASE_LOST) =>
                {
                    Err(Error::LeaseLost {
                        run_id: lease.run_id,
                    })
                }
                Err(e) => Err(Error::db("beginning a step")(e)),
            };
        }
        let mut tx = self.begin_write().await?;
        if let Err(e) = guard(tx.db(), lease, step).await {
            let _ = tx.rollback().await;
            return Err(e);
        }
        Ok(tx)
    }

    /// Applies one guarded transition in a transaction of its own. On PostgreSQL the transition
    /// is one statement (a data-modifying CTE), atomic without `BEGIN`/`COMMIT` round trips.
    pub(crate) async fn transition_alone(
        &self,
        lease: Lease,
        step: &str,
        t: &Transition<'_>,
    ) -> Result<()> {
        if let Store::Postgres(_) = self {
            return transition(self.acquire().await?.db(), lease, step, t).await;
        }
        let mut tx = self.begin_write().await?;
        let applied = transition(tx.db(), lease, step, t).await;
        tx.settle(applied).await
    }

    /// Applies many guarded transitions in one transaction (on PostgreSQL one statement, so
    /// without `BEGIN`/`COMMIT` round trips). Returns, per item, whether it applied.
    pub(crate) async fn transition_group(
        &self,
        items: &[(Lease, &str, &Transition<'_>)],
    ) -> Result<Vec<bool>> {
        if let Store::Postgres(_) = self {
            return transition_many(self.acquire().await?.db(), items).await;
        }
        let mut tx = self.begin_write().await?;
        let applied = transition_many(tx.db(), items).await;
        tx.settle(applied).await
    }

    pub(crate) async fn run(&self, id: RunId) -> Result<Option<RunInfo>> {
        let row = on_pool!(self, |p, _q| {
            sqlx::query(RUN_COLUMNS)
                .bind(id.0)
                .fetch_optional(p)
                .await
                .map_err(Error::db("reading a run"))?
                .map(|r| {
                    let state: String = r.try_get(6)?;
                    Ok::<_, sqlx::Error>((
                        RunInfo {
                            id: RunId(r.try_get(0)?),
                            kind: r.try_get(1)?,
                            args: r.try_get(2)?,
                            unique_key: r.try_get(3)?,
                            queue: r.try_get(4)?,
                            priority: r.try_get(5)?,
                            state: RunState::Available,
                            step: r.try_get(7)?,
                            attempt: r.try_get(8)?,
                            max_attempts: r.try_get(9)?,
                            scheduled_at: r.try_get(10)?,
                            lease_owner: r.try_get(11)?,
                            last_error: r.try_get(12)?,
                            parent_id: r.try_get::<Option<i64>, _>(13)?.map(RunId),
                            created_at: r.try_get(14)?,
                            finished_at: r.try_get(15)?,
                        },
                        state,
                    ))
                })
                .transpose()
                .map_err(Error::db("decoding a run"))?
        });
        row.map(|(mut info, state)| {
            info.state = RunState::parse(&state)?;
            Ok(info)
        })
        .transpose()
    }

    pub(crate) async fn journal(&self, id: RunId) -> Result<Vec<JournalEntry>> {
        on_pool!(self, |p, _q| {
            sqlx::query(JOURNAL)
                .bind(id.0)
                .fetch_all(p)
                .await
                .map_err(Error::db("reading the journal"))?
                .iter()
                .map(|r| {
                    Ok(JournalEntry {
                        step: r.try_get(0)?,
                        attempt: r.try_get(1)?,
                        outcome: r.try_get(2)?,
                        error: r.try_get(3)?,
                        started_at: r.try_get(4)?,
                        finished_at: r.try_get(5)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(Error::db("decoding the journal"))
        })
    }

    pub(crate) async fn counts(&self) -> Result<Vec<StateCount>> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, |p, _q| {
            sqlx::query_as(COUNTS)
                .fetch_all(p)
                .await
                .map_err(Error::db("counting runs"))?
        });
        rows.into_iter()
            .map(|(queue, state, count)| {
                Ok(StateCount {
                    queue,
                    state: RunState::parse(&state)?,
                    count,
                })
            })
            .collect()
    }

    /// Reads a context value through the pool (committed values only).
    pub(crate) async fn context_get_committed(
        &self,
        run: RunId,
        key: &str,
    ) -> Result<Option<String>> {
        on_pool!(self, |p, _q| {
            sqlx::query_scalar(CONTEXT_GET)
                .bind(run.0)
                .bind(key)
                .fetch_optional(p)
                .await
                .map_err(Error::db("reading a context value"))
        })
    }
}

/// Inserts one run, or finds the run that already holds its unique key.
pub(crate) async fn enqueue(db: Db<'_>, run: &NewRun) -> Result<Enqueued> {
    on_db!(db, |c, q, _m| {
        // Bounded: the only way to loop is a unique run purged between the two statements.
        for _ in 0..3 {
            let inserted: Option<i64> = sqlx::query_scalar(q.enqueue)
                .bind(run.kind)
                .bind(&run.args)
                .bind(run.unique_key.as_deref())
                .bind(&run.queue)
                .bind(run.priority)
                .bind(run.step)
                .bind(run.max_attempts)
                .bind(run.at_ms)
                .bind(run.delay_ms)
                .bind(run.parent)
                .fetch_optional(&mut *c)
                .await
                .map_err(Error::db("enqueuing a run"))?;
            if let Some(id) = inserted {
                return Ok(Enqueued {
                    run_id: RunId(id),
                    duplicate: false,
                });
            }
            let existing: Option<i64> = sqlx::query_scalar(EXISTING_BY_KEY)
                .bind(run.unique_key.as_deref())
                .fetch_optional(&mut *c)
                .await
                .map_err(Error::db("finding the existing unique run"))?;
            if let Some(id) = existing {
                return Ok(Enqueued {
                    run_id: RunId(id),
                    duplicate: true,
                });
            }
        }
        Err(Error::Database {
            op: "enqueuing a unique run (its key kept conflicting with a vanishing run)",
            source: sqlx::Error::RowNotFound,
        })
    })
}

/// Inserts many runs in one statement; unique keys already taken (or repeated within `runs`)
/// map to the run that holds them.
pub(crate) async fn enqueue_many(db: Db<'_>, runs: &[NewRun]) -> Result<Vec<Enqueued>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let (inserted, existing) = on_db!(db, |c, _q, m| {
        let inserted = m::insert_many(&mut *c, runs).await?;
        let taken: Vec<&str> = {
            let new_keys: std::collections::HashSet<&str> =
                inserted.iter().filter_map(|(_, k)| k.as_deref()).collect();
            runs.iter()
                .filter_map(|r| r.unique_key.as_deref())
                .filter(|k| !new_keys.contains(k))
                .collect()
        };
        let existing = if taken.is_empty() {
            Vec::new()
        } else {
            m::ids_by_unique_keys(&mut *c, &taken).await?
        };
        (inserted, existing)
    });
    match_bulk_results(runs, inserted, existing)
}

/// Maps the rows a bulk insert returned back onto the input order. Rows without a unique key
/// were inserted in input order, so their ids ascend in that order.
fn match_bulk_results(
    runs: &[NewRun],
    inserted: Vec<(i64, Option<String>)>,
    existing: Vec<(i64, String)>,
) -> Result<Vec<Enqueued>> {
    use std::collections::HashMap;
    let mut plain: Vec<i64> = Vec::new();
    let mut by_key: HashMap<String, (i64, bool)> = HashMap::new();
    for (id, key) in inserted {
        match key {
            Some(k) => {
                by_key.insert(k, (id, false));
            }
            None => plain.push(id),
        }
    }
    for (id, key) in existing {
        by_key.entry(key).or_insert((id, true));
    }
    plain.sort_unstable();
    let mut plain = plain.into_iter();
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        let e = match &run.unique_key {
            None => plain.next().map(|id| Enqueued {
                run_id: RunId(id),
                duplicate: false,
            }),
            Some(k) => by_key.get_mut(k).map(|(id, dup)| {
                let e = Enqueued {
                    run_id: RunId(*id),
                    duplicate: *dup,
                };
                // A key repeated within the batch: the later ones are duplicates.
                *dup = true;
                e
            }),
        };
        out.push(e.ok_or(Error::Database {
            op: "matching bulk enqueue results",
            source: sqlx::Error::RowNotFound,
        })?);
    }
    Ok(out)
}

/// Checks that this worker still holds the run at `step` (fencing), locking its row on
/// PostgreSQL (SQLite's write transaction already excludes every other writer).
async fn guard(db: Db<'_>, lease: Lease, step: &str) -> Result<()> {
    let found = on_db!(db, |c, q, _m| {
        sqlx::query(q.guard)
            .bind(lease.run_id.0)
            .bind(lease.token)
            .bind(step)
            .fetch_optional(&mut *c)
            .await
            .map_err(Error::db("locking the run"))?
            .is_some()
    });
    if !found {
        return Err(Error::LeaseLost {
            run_id: lease.run_id,
        });
    }
    Ok(())
}

/// Applies a guarded transition from `step` and journals it. Fails with
/// [`Error::LeaseLost`] when the run is no longer held by `lease` at `step`.
pub(crate) async fn transition(
    db: Db<'_>,
    lease: Lease,
    step: &str,
    t: &Transition<'_>,
) -> Result<()> {
    let n = on_db!(db, |c, q, _m| {
        sqlx::query(q.transition)
            .bind(lease.run_id.0)
            .bind(lease.token)
            .bind(step)
            .bind(t.state.as_str())
            .bind(t.step)
            .bind(t.iteration)
            .bind(t.attempt)
            .bind(t.delay_ms)
            .bind(t.outcome)
            .bind(t.duration_ms)
            .bind(t.journal_attempt)
            .bind(t.error.as_deref())
            .execute(&mut *c)
            .await
            .map_err(Error::db("advancing the run"))?
            .rows_affected()
    });
    if n == 0 {
        return Err(Error::LeaseLost {
            run_id: lease.run_id,
        });
    }
    Ok(())
}

/// Applies many guarded transitions in one round trip where the dialect allows it. Returns, per
/// item, whether it applied (`false`: the run is no longer held by that lease at that step).
async fn transition_many(
    db: Db<'_>,
    items: &[(Lease, &str, &Transition<'_>)],
) -> Result<Vec<bool>> {
    on_db!(db, |c, _q, m| m::transition_many(&mut *c, items).await)
}

/// Reads a context value inside a transaction.
pub(crate) async fn context_get(db: Db<'_>, run: RunId, key: &str) -> Result<Option<String>> {
    on_db!(db, |c, _q, _m| {
        sqlx::query_scalar(CONTEXT_GET)
            .bind(run.0)
            .bind(key)
            .fetch_optional(&mut *c)
            .await
            .map_err(Error::db("reading a context value"))
    })
}

/// Writes a context value inside a transaction.
pub(crate) async fn context_set(db: Db<'_>, run: RunId, key: &str, value: &str) -> Result<()> {
    on_db!(db, |c, _q, _m| {
        sqlx::query(CONTEXT_SET)
            .bind(run.0)
            .bind(key)
            .bind(value)
            .execute(&mut *c)
            .await
            .map(|_| ())
            .map_err(Error::db("writing a context value"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(key: Option<&str>) -> NewRun {
        NewRun {
            kind: "K",
            args: "{}".into(),
            unique_key: key.map(Into::into),
            queue: "q".into(),
            priority: 0,
            step: "s",
            max_attempts: 1,
            at_ms: None,
            delay_ms: 0,
            parent: None,
        }
    }

    #[test]
    fn bulk_results_keep_input_order_and_flag_duplicates() {
        let runs = [
            run(None),
            run(Some("a")),
            run(None),
            run(Some("a")),
            run(Some("b")),
        ];
        let inserted = vec![(12, None), (10, None), (11, Some("a".into()))];
        let existing = vec![(3, "b".into())];
        let out = match_bulk_results(&runs, inserted, existing).unwrap();
        let got: Vec<(i64, bool)> = out.iter().map(|e| (e.run_id.0, e.duplicate)).collect();
        assert_eq!(
            got,
            vec![(10, false), (11, false), (12, false), (11, true), (3, true)]
        );
    }

    #[test]
    fn bulk_results_missing_row_is_an_error() {
        let runs = [run(Some("a"))];
        assert!(match_bulk_results(&runs, vec![], vec![]).is_err());
    }
}
