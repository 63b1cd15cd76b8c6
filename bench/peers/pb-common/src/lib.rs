//! Shared helpers for the peer benchmarks: database reset, transaction
//! counters from `pg_stat_database`, timing and JSON-lines output.
//!
//! Uses `tokio-postgres` (not sqlx) so that it links into every peer binary
//! whatever sqlx version that peer pulls in.

use std::io::Write;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

/// Command-line options shared by every peer binary.
///
/// Usage: `<bin> <mode> [n] [concurrency]`
///   mode: enqueue-single | enqueue-bulk | drain | workflow
#[derive(Debug, Clone)]
pub struct Opts {
    pub mode: String,
    pub n: usize,
    pub concurrency: usize,
    /// Base URL without database name, e.g. postgres://postgres@127.0.0.1:55432
    pub base_url: String,
    /// Database name used by this peer (dropped and recreated per run).
    pub db: String,
    /// Free-form label stored with the result (e.g. the run number).
    pub label: String,
    /// Configuration variant name stored with the result (PB_VARIANT).
    pub variant: String,
}

impl Opts {
    pub fn from_env(peer: &str) -> Opts {
        let args: Vec<String> = std::env::args().collect();
        let mode = args.get(1).cloned().unwrap_or_else(|| "drain".into());
        let n = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
        let concurrency = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
        let base_url = std::env::var("PB_PG_BASE")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432".into());
        let db = std::env::var("PB_DB").unwrap_or_else(|_| format!("pb_{peer}"));
        let label = std::env::var("PB_LABEL").unwrap_or_default();
        let variant = std::env::var("PB_VARIANT").unwrap_or_else(|_| "default".into());
        Opts {
            mode,
            n,
            concurrency,
            base_url,
            db,
            label,
            variant,
        }
    }

    pub fn db_url(&self) -> String {
        format!("{}/{}", self.base_url, self.db)
    }
}

/// Connection to the `postgres` maintenance database, used for
/// DROP/CREATE DATABASE and to read counters without touching the bench DB.
pub struct Admin {
    client: Client,
    db: String,
}

/// Counters sampled before and after a phase. `commit`/`rollback` are the
/// bench database's row of pg_stat_database (read-only transactions count
/// too); the `wal_*` fields come from the cluster-wide pg_stat_wal (PG14+):
/// `wal_sync` is the number of WAL fsyncs, the physical cost of durable commits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Xacts {
    pub commit: i64,
    pub rollback: i64,
    pub wal_records: i64,
    pub wal_bytes: i64,
    pub wal_sync: i64,
    /// CPU time of this process (and of its reaped children), in milliseconds.
    pub self_cpu_ms: i64,
    /// CPU time of the whole PostgreSQL server (postmaster, live children and the children
    /// it has reaped, so backends that already exited count), in milliseconds; 0 when the
    /// server's processes cannot be read (another host).
    pub pg_cpu_ms: i64,
}

impl Admin {
    pub async fn connect(opts: &Opts) -> Admin {
        let url = format!("{}/postgres", opts.base_url);
        let (client, conn) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("admin connect");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Admin {
            client,
            db: opts.db.clone(),
        }
    }

    /// DROP DATABASE .. WITH (FORCE) and CREATE DATABASE.
    pub async fn recreate_db(&self) {
        let q = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.db);
        self.client.batch_execute(&q).await.expect("drop db");
        let q = format!("CREATE DATABASE \"{}\"", self.db);
        self.client.batch_execute(&q).await.expect("create db");
    }

    /// Number of client backends connected to the bench database.
    pub async fn client_backends(&self) -> i64 {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND backend_type = 'client backend'",
                &[&self.db],
            )
            .await
            .expect("count backends");
        row.get(0)
    }

    /// Wait until every client backend of the bench DB has exited (so that
    /// its pending statistics are flushed). After `grace`, terminate what is
    /// left (terminated backends also flush their stats on exit).
    pub async fn quiesce(&self, grace: Duration) -> i64 {
        let start = Instant::now();
        let mut terminated = 0;
        loop {
            let n = self.client_backends().await;
            if n == 0 {
                break;
            }
            if start.elapsed() > grace && terminated == 0 {
                let rows = self
                    .client
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND backend_type = 'client backend'",
                        &[&self.db],
                    )
                    .await
                    .expect("terminate");
                terminated = rows.len() as i64;
            }
            if start.elapsed() > grace * 4 {
                eprintln!("warning: {n} backends still connected to {}", self.db);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Exited backends flush stats in their exit hook; give the last one a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        terminated
    }

    pub async fn xacts(&self) -> Xacts {
        let row = self
            .client
            .query_one(
                "SELECT d.xact_commit, d.xact_rollback, w.wal_records, w.wal_bytes::bigint, w.wal_sync \
                 FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = $1",
                &[&self.db],
            )
            .await
            .expect("pg_stat_database");
        let backend: i32 = self
            .client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pg_backend_pid")
            .get(0);
        Xacts {
            commit: row.get(0),
            rollback: row.get(1),
            wal_records: row.get(2),
            wal_bytes: row.get(3),
            wal_sync: row.get(4),
            self_cpu_ms: self_cpu_ms(),
            pg_cpu_ms: server_cpu_ms(backend).unwrap_or(0),
        }
    }

    /// Start of a measured phase: optionally reset pg_stat_statements (when
    /// PB_RESET_PGSS=1 and the extension exists in the `postgres` database),
    /// then sample the counters.
    pub async fn begin_phase(&self) -> Xacts {
        if std::env::var("PB_RESET_PGSS").as_deref() == Ok("1") {
            self.client
                .batch_execute("SELECT pg_stat_statements_reset()")
                .await
                .expect("pg_stat_statements_reset (is the extension installed?)");
        }
        self.xacts().await
    }

    pub async fn setting(&self, name: &str) -> String {
        let row = self
            .client
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .expect("setting");
        row.get(0)
    }
}

/// One measured phase.
pub struct Measure {
    pub peer: String,
    pub version: String,
    pub phase: String,
    pub units: usize,
    pub unit: String,
    pub concurrency: usize,
    pub secs: f64,
    pub before: Xacts,
    pub after: Xacts,
    pub terminated: i64,
    pub note: String,
    /// Handler executions beyond one per job (duplicate deliveries).
    pub duplicates: usize,
}

impl Measure {
    /// A phase of `opts.n` jobs of mode `opts.mode`, at concurrency 1 until the phase sets it,
    /// with zeroed counters.
    pub fn new(peer: impl Into<String>, version: impl Into<String>, opts: &Opts) -> Measure {
        Measure {
            peer: peer.into(),
            version: version.into(),
            phase: opts.mode.clone(),
            units: opts.n,
            unit: "jobs".into(),
            concurrency: 1,
            secs: 0.0,
            before: Default::default(),
            after: Default::default(),
            terminated: 0,
            note: String::new(),
            duplicates: 0,
        }
    }

    pub fn emit(&self, opts: &Opts, sync_commit: &str) {
        let commits = self.after.commit - self.before.commit;
        let rollbacks = self.after.rollback - self.before.rollback;
        let rate = self.units as f64 / self.secs;
        let line = format!(
            "{{\"peer\":\"{}\",\"version\":\"{}\",\"phase\":\"{}\",\"variant\":\"{}\",\"label\":\"{}\",\
             \"units\":{},\"unit\":\"{}\",\"concurrency\":{},\"secs\":{:.3},\"rate\":{:.1},\
             \"commits\":{},\"rollbacks\":{},\"commits_per_unit\":{:.3},\
             \"rollbacks_per_unit\":{:.3},\"wal_syncs_per_unit\":{:.3},\
             \"wal_records_per_unit\":{:.2},\"wal_bytes_per_unit\":{:.0},\"terminated_backends\":{},\"duplicates\":{},\
             \"synchronous_commit\":\"{}\",\"peak_rss_kb\":{},\
             \"client_cpu_us_per_unit\":{:.1},\"pg_cpu_us_per_unit\":{:.1},\"note\":\"{}\"}}",
            self.peer,
            self.version,
            self.phase,
            opts.variant,
            opts.label,
            self.units,
            self.unit,
            self.concurrency,
            self.secs,
            rate,
            commits,
            rollbacks,
            commits as f64 / self.units as f64,
            rollbacks as f64 / self.units as f64,
            (self.after.wal_sync - self.before.wal_sync) as f64 / self.units as f64,
            (self.after.wal_records - self.before.wal_records) as f64 / self.units as f64,
            (self.after.wal_bytes - self.before.wal_bytes) as f64 / self.units as f64,
            self.terminated,
            self.duplicates,
            sync_commit,
            peak_rss_kb(),
            (self.after.self_cpu_ms - self.before.self_cpu_ms) as f64 * 1000.0 / self.units as f64,
            (self.after.pg_cpu_ms - self.before.pg_cpu_ms) as f64 * 1000.0 / self.units as f64,
            self.note.replace('"', "'"),
        );
        println!("{line}");
        if let Ok(path) = std::env::var("PB_OUT") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open PB_OUT");
            writeln!(f, "{line}").expect("write PB_OUT");
        }
    }
}

/// CPU time of this process and its reaped children, in milliseconds (0 without /proc).
pub fn self_cpu_ms() -> i64 {
    proc_cpu_ms("self", true).unwrap_or(0)
}

/// Fields of /proc/<pid>/stat after the command name: index 1 is ppid, 11..=14 are utime,
/// stime, cutime, cstime in clock ticks.
fn proc_stat(pid: &str) -> Option<Vec<i64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// Linux reports CPU times to user space in ticks of 1/100 s (USER_HZ).
const MS_PER_TICK: i64 = 10;

/// CPU time of a process, optionally with its reaped children, in milliseconds.
fn proc_cpu_ms(pid: &str, children: bool) -> Option<i64> {
    let f = proc_stat(pid)?;
    let own = f.get(11)? + f.get(12)?;
    let reaped = if children { f.get(13)? + f.get(14)? } else { 0 };
    Some((own + reaped) * MS_PER_TICK)
}

/// CPU time of the PostgreSQL server that runs `backend`: its postmaster with every child it
/// reaped, plus the children alive now.
fn server_cpu_ms(backend: i32) -> Option<i64> {
    let postmaster = proc_stat(&backend.to_string())?.get(1).copied()?;
    let mut total = proc_cpu_ms(&postmaster.to_string(), true)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if proc_stat(pid).and_then(|f| f.get(1).copied()) == Some(postmaster) {
            total += proc_cpu_ms(pid, false).unwrap_or(0);
        }
    }
    Some(total)
}

/// The process's peak resident memory (VmHWM), in KiB; 0 where /proc is not available.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Poll an atomic-ish counter until it reaches `target` or `timeout` passes.
/// Returns the elapsed time since `start`, or None on timeout.
pub async fn wait_until<F: Fn() -> usize>(
    start: Instant,
    target: usize,
    timeout: Duration,
    f: F,
) -> Option<Duration> {
    loop {
        let v = f();
        if v >= target {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            eprintln!("timeout: counter at {v} of {target}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Counts handler executions per job index, so that duplicate deliveries
/// (the same job run twice) are visible.
pub struct Tracker {
    seen: Vec<std::sync::atomic::AtomicBool>,
    unique: std::sync::atomic::AtomicUsize,
    total: std::sync::atomic::AtomicUsize,
}

impl Tracker {
    pub fn new(n: usize) -> Tracker {
        Tracker {
            seen: (0..n)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
            unique: Default::default(),
            total: Default::default(),
        }
    }
    pub fn hit(&self, i: usize) {
        use std::sync::atomic::Ordering::SeqCst;
        self.total.fetch_add(1, SeqCst);
        if let Some(b) = self.seen.get(i)
            && !b.swap(true, SeqCst)
        {
            self.unique.fetch_add(1, SeqCst);
        }
    }
    pub fn unique(&self) -> usize {
        self.unique.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn total(&self) -> usize {
        self.total.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}
