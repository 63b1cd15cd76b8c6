//! acidic's side of the benchmark: the same shapes, counters and output as the peer binaries
//! (`bench/peers/pb-*`), so that one run measures acidic beside them.
//!
//! `acidic-bench <mode> [n] [concurrency]`, modes `enqueue-single`, `enqueue-tx` (n enqueues
//! in one caller transaction), `enqueue-bulk` (one `enqueue_many`), `drain` (a pre-filled
//! backlog of one-step jobs; `PB_VARIANT=noop` (default) writes nothing, `PB_VARIANT=insert`
//! inserts one row in the step's transaction), `workflow` (three steps, each inserting one row)
//! and `latency` (enqueue-to-start at a steady 200 jobs/s while a worker runs).
//! `PB_BACKEND=sqlite` runs on a SQLite file (`PB_SQLITE_FILE`) instead of PostgreSQL; SQLite has
//! no transaction counters, so its commit figures are not reported.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acidic_runtime::prelude::*;
use acidic_runtime::{RunState, Worker};
use pb_common::{Admin, Measure, Opts, Tracker};
use serde::{Deserialize, Serialize};

static TRACK: OnceLock<Tracker> = OnceLock::new();
static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn hit(i: usize) {
    if let Some(t) = TRACK.get() {
        t.hit(i);
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn insert_row(
    cx: &mut StepContext<'_>,
    i: usize,
    step: &'static str,
) -> Result<(), StepError> {
    let i = i as i64;
    match cx.db().await? {
        Db::Postgres(c) => sqlx::query("INSERT INTO bench_rows (i, step) VALUES ($1, $2)")
            .bind(i)
            .bind(step)
            .execute(c)
            .await
            .map(|_| ())?,
        Db::Sqlite(c) => sqlx::query("INSERT INTO bench_rows (i, step) VALUES ($1, $2)")
            .bind(i)
            .bind(step)
            .execute(c)
            .await
            .map(|_| ())?,
    }
    Ok(())
}

/// Shape (a): a step that writes nothing.
#[acidic_job(kind = "bench.noop", queue = "bench")]
#[derive(Serialize, Deserialize)]
struct Noop {
    i: usize,
}

impl Perform for Noop {
    async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
        hit(self.i);
        Ok(Flow::Next)
    }
}

/// Shape (b): a step that inserts one row in its transaction.
#[acidic_job(kind = "bench.insert", queue = "bench")]
#[derive(Serialize, Deserialize)]
struct Insert {
    i: usize,
}

impl Perform for Insert {
    async fn perform(&self, cx: &mut StepContext<'_>) -> StepResult {
        insert_row(cx, self.i, "perform").await?;
        hit(self.i);
        Ok(Flow::Next)
    }
}

/// Three steps, each inserting one row.
#[acidic_job(kind = "bench.wf3", queue = "bench")]
#[derive(Serialize, Deserialize)]
struct Wf3 {
    i: usize,
}

steps!(Wf3: one; two; three);

impl Wf3 {
    async fn one(&self, cx: &mut StepContext<'_>) -> StepResult {
        insert_row(cx, self.i, "one").await?;
        Ok(Flow::Next)
    }
    async fn two(&self, cx: &mut StepContext<'_>) -> StepResult {
        insert_row(cx, self.i, "two").await?;
        Ok(Flow::Next)
    }
    async fn three(&self, cx: &mut StepContext<'_>) -> StepResult {
        insert_row(cx, self.i, "three").await?;
        hit(self.i);
        Ok(Flow::Next)
    }
}

/// Records enqueue-to-start latency.
#[acidic_job(kind = "bench.latency", queue = "bench")]
#[derive(Serialize, Deserialize)]
struct Latency {
    i: usize,
    sent_us: u64,
}

impl Perform for Latency {
    async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
        let waited = now_us().saturating_sub(self.sent_us);
        if let Ok(mut l) = LATENCIES.lock() {
            l.push(waited);
        }
        hit(self.i);
        Ok(Flow::Next)
    }
}

enum Backend {
    Postgres(Admin),
    Sqlite(String),
}

async fn connect(backend: &Backend, opts: &Opts, pool: u32) -> Runtime {
    match backend {
        Backend::Postgres(_) => Runtime::from_pg_pool(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(pool)
                .connect(&opts.db_url())
                .await
                .unwrap_or_else(|e| pb_common::fail(&format!("connect: {e}"))),
        ),
        Backend::Sqlite(path) => Runtime::from_sqlite_pool(Runtime::sqlite_pool(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
            pool,
        )),
    }
}

/// `ACIDIC_PREFETCH=n` claims up to n runs ahead of free slots (the tuned configuration).
fn worker(rt: &Runtime, c: usize) -> Worker {
    let prefetch = std::env::var("ACIDIC_PREFETCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    rt.worker()
        .prefetch(prefetch)
        .register::<Noop>()
        .register::<Insert>()
        .register::<Wf3>()
        .register::<Latency>()
        .queue("bench", c)
        .start()
}

async fn close(rt: &Runtime) {
    // Dropping the last handle closes the pool; wait for it to be idle first.
    let _ = rt.counts().await;
}

fn check<T>(r: Result<T, acidic_runtime::Error>, what: &str) -> T {
    r.unwrap_or_else(|e| pb_common::fail(&format!("{what}: {e}")))
}

async fn drain_until_done(n: usize, t0: Instant) -> Duration {
    pb_common::wait_until(t0, n, Duration::from_secs(1200), || {
        TRACK.get().map(|t| t.unique()).unwrap_or(0)
    })
    .await
    .unwrap_or_else(|| pb_common::fail("drain timed out"))
}

#[tokio::main]
async fn main() {
    let sqlite = std::env::var("PB_BACKEND").as_deref() == Ok("sqlite");
    let peer = if sqlite { "acidic-sqlite" } else { "acidic" };
    let opts = Opts::from_env("acidic");
    let (backend, sync) = if sqlite {
        let path = std::env::var("PB_SQLITE_FILE")
            .unwrap_or_else(|_| format!("{}/acidic-bench.db", std::env::temp_dir().display()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        (Backend::Sqlite(path), "sqlite-wal-normal".to_string())
    } else {
        let admin = Admin::connect(&opts).await;
        let sync = admin.setting("synchronous_commit").await;
        admin.recreate_db().await;
        (Backend::Postgres(admin), sync)
    };
    let n = opts.n;
    let c = opts.concurrency;
    {
        let rt = connect(&backend, &opts, 2).await;
        check(rt.migrate().await, "migrate");
        let ddl = "CREATE TABLE bench_rows (i BIGINT NOT NULL, step TEXT NOT NULL)";
        match &backend {
            Backend::Postgres(_) => {
                let p = sqlx::PgPool::connect(&opts.db_url())
                    .await
                    .expect("connect");
                sqlx::query(ddl).execute(&p).await.expect("ddl");
                p.close().await;
            }
            Backend::Sqlite(path) => {
                let p = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
                    .await
                    .expect("connect");
                sqlx::query(ddl).execute(&p).await.expect("ddl");
                p.close().await;
            }
        }
        close(&rt).await;
    }
    if let Backend::Postgres(admin) = &backend {
        admin.quiesce(Duration::from_secs(2)).await;
    }
    let begin = async || match &backend {
        Backend::Postgres(admin) => admin.begin_phase().await,
        Backend::Sqlite(_) => pb_common::Xacts {
            self_cpu_ms: pb_common::self_cpu_ms(),
            ..Default::default()
        },
    };
    let mut m = Measure::new(peer, env!("CARGO_PKG_VERSION"), &opts);
    match opts.mode.as_str() {
        "enqueue-single" => {
            let rt = connect(&backend, &opts, 2).await;
            m.before = begin().await;
            let t0 = Instant::now();
            for i in 0..n {
                check(rt.enqueue(&Noop { i }).await, "enqueue");
            }
            m.secs = t0.elapsed().as_secs_f64();
            m.note = "Runtime::enqueue, one autocommit statement each".into();
        }
        "enqueue-tx" => {
            let rt = connect(&backend, &opts, 2).await;
            m.before = begin().await;
            let t0 = Instant::now();
            match &backend {
                Backend::Postgres(_) => {
                    let p = sqlx::PgPool::connect(&opts.db_url())
                        .await
                        .expect("connect");
                    let mut tx = p.begin().await.expect("begin");
                    for i in 0..n {
                        check(rt.enqueue_in(&mut *tx, &Noop { i }).await, "enqueue_in");
                    }
                    tx.commit().await.expect("commit");
                    p.close().await;
                }
                Backend::Sqlite(path) => {
                    let p = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
                        .await
                        .expect("connect");
                    let mut tx = p.begin().await.expect("begin");
                    for i in 0..n {
                        check(rt.enqueue_in(&mut *tx, &Noop { i }).await, "enqueue_in");
                    }
                    tx.commit().await.expect("commit");
                    p.close().await;
                }
            }
            m.secs = t0.elapsed().as_secs_f64();
            m.note = "n x Runtime::enqueue_in inside one caller transaction".into();
        }
        "enqueue-bulk" => {
            let rt = connect(&backend, &opts, 2).await;
            let jobs: Vec<Noop> = (0..n).map(|i| Noop { i }).collect();
            m.before = begin().await;
            let t0 = Instant::now();
            check(rt.enqueue_many(&jobs).await, "enqueue_many");
            m.secs = t0.elapsed().as_secs_f64();
            m.note = "one Runtime::enqueue_many (one statement)".into();
        }
        "drain" | "workflow" => {
            let wf = opts.mode == "workflow";
            let insert = opts.variant.starts_with("insert");
            {
                let rt = connect(&backend, &opts, 2).await;
                for start in (0..n).step_by(10_000) {
                    let end = (start + 10_000).min(n);
                    if wf {
                        let jobs: Vec<Wf3> = (start..end).map(|i| Wf3 { i }).collect();
                        check(rt.enqueue_many(&jobs).await, "prefill");
                    } else if insert {
                        let jobs: Vec<Insert> = (start..end).map(|i| Insert { i }).collect();
                        check(rt.enqueue_many(&jobs).await, "prefill");
                    } else {
                        let jobs: Vec<Noop> = (start..end).map(|i| Noop { i }).collect();
                        check(rt.enqueue_many(&jobs).await, "prefill");
                    }
                }
                close(&rt).await;
            }
            if let Backend::Postgres(admin) = &backend {
                m.terminated = admin.quiesce(Duration::from_secs(2)).await;
            }
            m.concurrency = c;
            let rt = connect(&backend, &opts, (c + 4) as u32).await;
            TRACK.set(Tracker::new(n)).ok();
            m.before = begin().await;
            let t0 = Instant::now();
            let w = worker(&rt, c);
            m.secs = drain_until_done(n, t0).await.as_secs_f64();
            check(w.shutdown(Duration::from_secs(10)).await, "shutdown");
            let t = TRACK.get().expect("tracker");
            m.duplicates = t.total() - t.unique();
            let succeeded: i64 = check(rt.counts().await, "counts")
                .iter()
                .filter(|s| s.state == RunState::Succeeded)
                .map(|s| s.count)
                .sum();
            m.note = format!(
                "queue concurrency {c}, pool {}, {succeeded} runs succeeded{}",
                c + 4,
                if wf {
                    "; 3 steps, each inserting one row in its own transaction"
                } else if insert {
                    "; the step inserts one row in its transaction"
                } else {
                    "; the step writes nothing"
                }
            );
            if wf {
                m.unit = "workflows".into();
            }
        }
        "latency" => {
            m.concurrency = c;
            let rt = connect(&backend, &opts, (c + 4) as u32).await;
            TRACK.set(Tracker::new(n)).ok();
            let w = worker(&rt, c);
            // Let the worker reach its idle wait before the first enqueue.
            tokio::time::sleep(Duration::from_millis(500)).await;
            m.before = begin().await;
            let t0 = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            for i in 0..n {
                tick.tick().await;
                check(
                    rt.enqueue(&Latency {
                        i,
                        sent_us: now_us(),
                    })
                    .await,
                    "enqueue",
                );
            }
            m.secs = drain_until_done(n, t0).await.as_secs_f64();
            check(w.shutdown(Duration::from_secs(10)).await, "shutdown");
            let mut l = LATENCIES.lock().map(|l| l.clone()).unwrap_or_default();
            l.sort_unstable();
            let pct = |p: f64| {
                l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or(0) as f64
                    / 1000.0
            };
            m.note = format!(
                "p50_ms={:.2} p99_ms={:.2} max_ms={:.2}; enqueue one run every 5 ms (200/s), worker concurrency {c}",
                pct(0.5),
                pct(0.99),
                pct(1.0)
            );
        }
        other => pb_common::fail(&format!("unknown mode {other}")),
    }
    if let Backend::Postgres(admin) = &backend {
        m.terminated += admin.quiesce(Duration::from_secs(3)).await;
        m.after = admin.xacts().await;
    } else {
        m.after.self_cpu_ms = pb_common::self_cpu_ms();
    }
    m.emit(&opts, &sync);
}
