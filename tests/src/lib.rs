//! Test support for the integration suite: a fresh database per test (a SQLite file, or a
//! PostgreSQL schema), migrated, with the runtime's public API on top.
//!
//! Every test is written once as `async fn name(db: TestDb)` and stamped out for both databases
//! with [`both!`]. PostgreSQL tests need `ACIDIC_TEST_PG_URL` (`scripts/test.sh` starts a
//! throwaway server and sets it); without it they fail, they never skip.

use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use acidic_runtime::{Db, Runtime};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file of its own.
    Sqlite,
    /// A PostgreSQL schema of its own.
    Postgres,
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    /// The runtime on the test's database.
    pub rt: Runtime,
    /// The database.
    pub backend: Backend,
    pool: Pool,
    dir: Option<PathBuf>,
}

#[derive(Clone)]
enum Pool {
    Pg(PgPool, PgConnectOptions),
    Sqlite(SqlitePool, SqliteConnectOptions),
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

impl TestDb {
    /// A fresh database with a pool of 8 connections.
    pub async fn new(backend: Backend) -> TestDb {
        Self::with_pool_size(backend, 8).await
    }

    /// A fresh database whose runtime has a pool of `size` connections.
    pub async fn with_pool_size(backend: Backend, size: u32) -> TestDb {
        let name = unique_name();
        let (pool, dir) = match backend {
            Backend::Postgres => {
                let url = std::env::var("ACIDIC_TEST_PG_URL").unwrap_or_else(|_| {
                    panic!(
                        "ACIDIC_TEST_PG_URL is not set: run the suite with scripts/test.sh, which starts a throwaway PostgreSQL"
                    )
                });
                let base = PgConnectOptions::from_str(&url).expect("ACIDIC_TEST_PG_URL parses");
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(base.clone())
                    .await
                    .expect("connect to the test PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
                    .execute(&admin)
                    .await
                    .expect("create the test schema");
                admin.close().await;
                let opts = base.options([("search_path", name.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(size)
                    .connect_with(opts.clone())
                    .await
                    .expect("connect to the test schema");
                (Pool::Pg(pool, opts), None)
            }
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("acidic-test-{name}"));
                std::fs::create_dir_all(&dir).expect("create the test directory");
                let opts = SqliteConnectOptions::new()
                    .filename(dir.join("test.db"))
                    .create_if_missing(true);
                let pool = Runtime::sqlite_pool(opts.clone(), size);
                (Pool::Sqlite(pool, opts), Some(dir))
            }
        };
        let rt = runtime_on(&pool);
        rt.migrate().await.expect("migrate the test database");
        TestDb {
            rt,
            backend,
            pool,
            dir,
        }
    }

    /// Another runtime on the same database with a pool of its own, as another worker process
    /// would have.
    pub fn another_runtime(&self, size: u32) -> Runtime {
        match &self.pool {
            Pool::Pg(_, opts) => Runtime::from_pg_pool(
                PgPoolOptions::new()
                    .max_connections(size)
                    .connect_lazy_with(opts.clone()),
            ),
            Pool::Sqlite(_, opts) => {
                Runtime::from_sqlite_pool(Runtime::sqlite_pool(opts.clone(), size))
            }
        }
    }

    /// Runs one statement (test set-up and fault injection).
    pub async fn exec(&self, sql: &'static str) {
        match &self.pool {
            Pool::Pg(p, _) => sqlx::query(sql).execute(p).await.map(|_| ()),
            Pool::Sqlite(p, _) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs one statement with one integer parameter (`$1`).
    pub async fn exec_with(&self, sql: &'static str, arg: i64) -> u64 {
        match &self.pool {
            Pool::Pg(p, _) => sqlx::query(sql)
                .bind(arg)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Sqlite(p, _) => sqlx::query(sql)
                .bind(arg)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Reads one integer (`COUNT(*)` and the like), with one integer parameter (`$1`).
    pub async fn scalar(&self, sql: &'static str, arg: i64) -> i64 {
        match &self.pool {
            Pool::Pg(p, _) => sqlx::query_scalar(sql).bind(arg).fetch_one(p).await,
            Pool::Sqlite(p, _) => sqlx::query_scalar(sql).bind(arg).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Rows of `(i64, String)` (effects, ledgers), with one integer parameter (`$1`).
    pub async fn rows(&self, sql: &'static str, arg: i64) -> Vec<(i64, String)> {
        match &self.pool {
            Pool::Pg(p, _) => sqlx::query_as(sql).bind(arg).fetch_all(p).await,
            Pool::Sqlite(p, _) => sqlx::query_as(sql).bind(arg).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Begins a transaction of the caller's own (not the runtime's) on the test database.
    pub async fn user_tx(&self) -> UserTx {
        match &self.pool {
            Pool::Pg(p, _) => UserTx::Pg(p.begin().await.expect("begin")),
            Pool::Sqlite(p, _) => UserTx::Sqlite(p.begin().await.expect("begin")),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A caller's own transaction.
pub enum UserTx {
    /// On PostgreSQL.
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    /// On SQLite.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl UserTx {
    /// The transaction as a [`Db`] for `enqueue_in`.
    pub fn db(&mut self) -> Db<'_> {
        match self {
            UserTx::Pg(t) => Db::from(t),
            UserTx::Sqlite(t) => Db::from(t),
        }
    }

    /// Commits.
    pub async fn commit(self) {
        match self {
            UserTx::Pg(t) => t.commit().await,
            UserTx::Sqlite(t) => t.commit().await,
        }
        .expect("commit")
    }

    /// Rolls back.
    pub async fn rollback(self) {
        match self {
            UserTx::Pg(t) => t.rollback().await,
            UserTx::Sqlite(t) => t.rollback().await,
        }
        .expect("rollback")
    }
}

fn runtime_on(pool: &Pool) -> Runtime {
    match pool {
        Pool::Pg(p, _) => Runtime::from_pg_pool(p.clone()),
        Pool::Sqlite(p, _) => Runtime::from_sqlite_pool(p.clone()),
    }
}

/// Runs one statement with `(i64, &str)` parameters (`$1`, `$2`) on a step's transaction, on
/// either database: how the suite's jobs write their effects.
pub async fn write(db: Db<'_>, sql: &'static str, a: i64, b: &str) -> Result<(), sqlx::Error> {
    match db {
        Db::Postgres(c) => sqlx::query(sql)
            .bind(a)
            .bind(b)
            .execute(c)
            .await
            .map(|_| ()),
        Db::Sqlite(c) => sqlx::query(sql)
            .bind(a)
            .bind(b)
            .execute(c)
            .await
            .map(|_| ()),
    }
}

/// Polls `check` every 10 ms until it returns true, failing the test after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Stamps out each listed `async fn name(db: TestDb)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestDb::new($crate::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestDb::new($crate::Backend::Postgres).await).await
                }
            )*
        }
    };
}

pub mod torture;
