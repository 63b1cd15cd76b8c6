//! The torture driver (SPEC §10): starts worker processes, enqueues workflows (with duplicates
//! and bad input), kills random workers with SIGKILL and restarts them, optionally restarts
//! PostgreSQL mid-run, lets the system drain, and checks that nothing was lost or done twice.
//!
//! `torture --db sqlite|postgres [--workers 4] [--workflows 2000] [--kill-secs 60]
//!          [--drain-secs 180] [--seed N] [--pg-restart "command"]`
//!
//! PostgreSQL comes from `ACIDIC_TEST_PG_URL`; each run gets a schema of its own. Exits non-zero
//! and prints the offending run ids on any violation.

use std::collections::HashMap;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use acidic_runtime::prelude::*;
use acidic_runtime::{Error, RunState};
use acidic_tests::torture::{ACCOUNTS, Batch, Dedup, OPENING, SCHEMA, Target, TortureTransfer};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Items of each iterating workflow.
const BATCH_ITEMS: i64 = 30;

/// A job whose arguments are too large: enqueuing it must fail cleanly.
#[acidic_job(kind = "torture.big", queue = "torture")]
#[derive(Serialize, Deserialize)]
struct Big {
    blob: String,
}

impl Perform for Big {
    async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

struct Args {
    db: String,
    workers: usize,
    workflows: usize,
    kill_secs: u64,
    drain_secs: u64,
    seed: u64,
    pg_restart: Option<String>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut a = Args {
        db: String::new(),
        workers: 4,
        workflows: 2000,
        kill_secs: 60,
        drain_secs: 180,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
        pg_restart: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--db" => a.db = v,
            "--workers" => a.workers = v.parse()?,
            "--workflows" => a.workflows = v.parse()?,
            "--kill-secs" => a.kill_secs = v.parse()?,
            "--drain-secs" => a.drain_secs = v.parse()?,
            "--seed" => a.seed = v.parse()?,
            "--pg-restart" => a.pg_restart = Some(v),
            _ => return Err(format!("unknown option {k}").into()),
        }
    }
    if a.db != "sqlite" && a.db != "postgres" {
        return Err("--db sqlite|postgres is required".into());
    }
    Ok(a)
}

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Workers {
    exe: std::path::PathBuf,
    target: String,
    children: Vec<Child>,
    started: usize,
}

impl Workers {
    fn spawn(&mut self) -> Result<Child, BoxError> {
        self.started += 1;
        Ok(Command::new(&self.exe)
            .arg(&self.target)
            .arg(format!("torture-{}", self.started))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?)
    }

    fn kill_all(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => {
            println!("torture: PASS");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("torture: FAIL");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("torture: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends a signal to a worker process.
fn signal(sig: &str, pid: &str) -> Result<(), BoxError> {
    // A frozen worker may have been killed meanwhile: its SIGCONT then finds no process.
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid)
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("kill -{sig} {pid} failed").into());
    }
    Ok(())
}

/// Retries an enqueue through a database restart (up to 10 s).
async fn retry<T, F, Fut>(mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Err(Error::Database { .. }) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

async fn target_for(args: &Args) -> Result<Target, BoxError> {
    if args.db == "postgres" {
        let url = std::env::var("ACIDIC_TEST_PG_URL")
            .map_err(|_| "ACIDIC_TEST_PG_URL is not set (scripts/torture.sh starts a server)")?;
        let schema = format!("torture_{}_{}", std::process::id(), args.seed % 1_000_000);
        let admin = sqlx::PgPool::connect(&url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        Ok(Target::Postgres { url, schema })
    } else {
        let path = std::env::temp_dir().join(format!("acidic-torture-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        Ok(Target::Sqlite {
            path: path.display().to_string(),
        })
    }
}

async fn run() -> Result<bool, BoxError> {
    let args = parse_args()?;
    let began = Instant::now();
    let mut rng = Rng(args.seed | 1);
    let target = target_for(&args).await?;
    println!(
        "torture on {} ({}): {} workers, {} workflows, kills for {} s, seed {}",
        args.db,
        target.encode(),
        args.workers,
        args.workflows,
        args.kill_secs,
        args.seed
    );
    let pool = target.pool(8)?;
    let rt = pool.runtime();
    rt.migrate().await?;
    pool.script(SCHEMA).await?;
    for id in 1..=ACCOUNTS {
        pool.exec(
            "INSERT INTO accounts (id, balance) VALUES ($1, 1000000)",
            id,
        )
        .await?;
    }

    // Bad input: rows the workers cannot execute, and an oversized enqueue.
    let sample = TortureTransfer {
        from: 1,
        to: 2,
        amount: 1,
    };
    let bad_args = rt.enqueue(&sample).await?.run_id;
    pool.exec(
        "UPDATE acidic_runs SET args = '{\"from\": \"one\"}' WHERE id = $1",
        bad_args.0,
    )
    .await?;
    let bad_kind = rt.enqueue(&sample).await?.run_id;
    pool.exec(
        "UPDATE acidic_runs SET kind = 'torture.unknown_kind' WHERE id = $1",
        bad_kind.0,
    )
    .await?;
    let bad_step = rt.enqueue(&sample).await?.run_id;
    pool.exec(
        "UPDATE acidic_runs SET step = 'step_renamed_away' WHERE id = $1",
        bad_step.0,
    )
    .await?;
    let bad: HashMap<RunId, &str> = [
        (bad_args, "could not be decoded"),
        (bad_kind, "unknown job kind `torture.unknown_kind`"),
        (bad_step, "unknown recovery point `step_renamed_away`"),
    ]
    .into_iter()
    .collect();
    let big = Big {
        blob: "x".repeat(100 * 1024 * 1024),
    };
    let oversized = match rt.enqueue(&big).await {
        Err(Error::PayloadTooLarge { bytes, limit, .. }) => {
            println!("bad input: 100 MB enqueue refused ({bytes} bytes > {limit})");
            true
        }
        Err(e) => {
            println!("VIOLATION: 100 MB enqueue failed with an unexpected error: {e}");
            false
        }
        Ok(e) => {
            println!("VIOLATION: 100 MB enqueue was accepted as run {}", e.run_id);
            false
        }
    };
    drop(big);

    // Workers.
    let mut workers = Workers {
        exe: std::env::current_exe()?.with_file_name("torture-worker"),
        target: target.encode(),
        children: Vec::new(),
        started: 0,
    };
    for _ in 0..args.workers {
        let c = workers.spawn()?;
        workers.children.push(c);
    }

    // Enqueue while the kills go on: transfers in bulk batches, dedup keys three times each.
    let transfers: Vec<TortureTransfer> = (0..args.workflows)
        .map(|_| {
            let from = 1 + rng.below(ACCOUNTS as u64) as i64;
            let to = 1 + (from + rng.below(ACCOUNTS as u64 - 1) as i64) % ACCOUNTS;
            TortureTransfer {
                from,
                to,
                amount: 1 + rng.below(100) as i64,
            }
        })
        .collect();
    let dedup_keys = (args.workflows / 10).max(1) as i64;
    // Spread over the kill phase, so that kills land while steps are in flight.
    const CHUNK: usize = 20;
    let chunks = transfers.len().div_ceil(CHUNK).max(1);
    let pace = Duration::from_secs(args.kill_secs).div_f64(chunks as f64);
    let enqueuer = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let mut created = 0usize;
            let mut dedup_new = 0usize;
            let mut batches_created = 0usize;
            let mut tick = tokio::time::interval(pace);
            for (i, chunk) in transfers.chunks(CHUNK).enumerate() {
                tick.tick().await;
                created += retry(|| rt.enqueue_many(chunk)).await?.len();
                if i % 2 == 0 {
                    let batches = [Batch { items: BATCH_ITEMS }, Batch { items: BATCH_ITEMS }];
                    batches_created += retry(|| rt.enqueue_many(&batches)).await?.len();
                }
                let keys: Vec<Dedup> = (0..dedup_keys)
                    .filter(|k| (*k as usize) % chunks == i)
                    .map(|key| Dedup { key })
                    .collect();
                dedup_new += retry(|| rt.enqueue_many(&keys))
                    .await?
                    .iter()
                    .filter(|e| !e.duplicate)
                    .count();
                for k in &keys {
                    dedup_new += usize::from(!retry(|| rt.enqueue(k)).await?.duplicate);
                }
                dedup_new += retry(|| rt.enqueue_many(&keys))
                    .await?
                    .iter()
                    .filter(|e| !e.duplicate)
                    .count();
            }
            Ok::<_, acidic_runtime::Error>((created, dedup_new, batches_created))
        })
    };

    // Kill random workers at random moments and start new ones.
    let kill_until = Instant::now() + Duration::from_secs(args.kill_secs);
    let restart_at = Instant::now() + Duration::from_secs(args.kill_secs / 2);
    let mut restarted = args.pg_restart.is_none();
    let mut kills = 0usize;
    let mut stalls = 0usize;
    while Instant::now() < kill_until {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(301))).await;
        let i = rng.below(workers.children.len() as u64) as usize;
        if rng.below(5) == 0 {
            // A stall instead of a kill: the worker freezes past its lease (2 s) while others
            // rescue its runs, then wakes up and tries to commit what it was doing.
            stalls += 1;
            let pid = workers.children[i].id().to_string();
            let freeze = Duration::from_millis(2500 + rng.below(1000));
            signal("STOP", &pid)?;
            tokio::spawn(async move {
                tokio::time::sleep(freeze).await;
                let _ = signal("CONT", &pid);
            });
        } else {
            workers.children[i].kill()?;
            workers.children[i].wait()?;
            kills += 1;
            workers.children[i] = workers.spawn()?;
        }
        if !restarted && Instant::now() >= restart_at {
            restarted = true;
            let cmd = args.pg_restart.as_deref().unwrap_or_default();
            let t = Instant::now();
            let status = Command::new("sh").arg("-c").arg(cmd).status()?;
            println!(
                "restarted PostgreSQL ({cmd}): {status} in {} ms",
                t.elapsed().as_millis()
            );
            if !status.success() {
                return Err("the PostgreSQL restart command failed".into());
            }
        }
    }
    let (created, dedup_created, batches) = enqueuer.await??;
    println!(
        "kill phase over after {} s: {kills} workers killed with SIGKILL; {created} workflows enqueued",
        began.elapsed().as_secs()
    );

    // Drain with no more kills.
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    let mut last_report = Instant::now();
    loop {
        let pending = rt
            .counts()
            .await?
            .iter()
            .filter(|c| !c.state.is_finished())
            .map(|c| c.count)
            .sum::<i64>();
        if pending == 0 {
            break;
        }
        if Instant::now() >= drain_deadline {
            println!("drain deadline reached with {pending} runs unfinished");
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!("draining: {pending} runs unfinished");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    workers.kill_all();
    println!("drained after {} s", began.elapsed().as_secs());

    // Checks.
    let mut ok = oversized;
    let mut check = |name: &str, offenders: Vec<i64>| {
        if offenders.is_empty() {
            println!("ok   {name}: 0");
        } else {
            ok = false;
            let shown: Vec<String> = offenders.iter().take(20).map(i64::to_string).collect();
            println!(
                "FAIL {name}: {} (runs {}{})",
                offenders.len(),
                shown.join(", "),
                if offenders.len() > 20 { ", ..." } else { "" }
            );
        }
    };
    let unfinished: Vec<i64> = pool
        .ints("SELECT id FROM acidic_runs WHERE state <> 'succeeded' ORDER BY id")
        .await?
        .into_iter()
        .filter(|id| !bad.contains_key(&RunId(*id)))
        .collect();
    check("workflows not succeeded", unfinished);
    check(
        "runs left running, available or awaiting",
        pool.ints("SELECT id FROM acidic_runs WHERE state IN ('running', 'available', 'awaiting')")
            .await?,
    );
    check(
        "duplicate ledger rows (a step applied twice)",
        pool.ints(
            "SELECT run_id FROM ledger GROUP BY run_id HAVING COUNT(*) > COUNT(DISTINCT step)",
        )
        .await?,
    );
    check(
        "duplicate transfer records",
        pool.ints("SELECT run_id FROM transfers GROUP BY run_id HAVING COUNT(*) > 1")
            .await?,
    );
    check(
        "succeeded transfers missing an effect",
        pool.ints(
            "SELECT r.id FROM acidic_runs r WHERE r.kind = 'torture.transfer' AND r.state = 'succeeded'
               AND ((SELECT COUNT(*) FROM ledger l WHERE l.run_id = r.id) <> 2
                 OR (SELECT COUNT(*) FROM transfers t WHERE t.run_id = r.id) <> 1)",
        )
        .await?,
    );
    check(
        "effects of runs that did not succeed",
        pool.ints(
            "SELECT l.run_id FROM ledger l JOIN acidic_runs r ON r.id = l.run_id
             WHERE r.state <> 'succeeded'",
        )
        .await?,
    );
    check(
        "accounts whose balance disagrees with their ledger",
        pool.ints(
            "SELECT a.id FROM accounts a WHERE a.balance <> 1000000
               + COALESCE((SELECT SUM(l.delta) FROM ledger l WHERE l.account = a.id), 0)",
        )
        .await?,
    );
    let total = pool
        .int("SELECT CAST(SUM(balance) AS BIGINT) FROM accounts")
        .await?;
    check(
        "money created or destroyed (total balance off by)",
        if total == ACCOUNTS * OPENING {
            vec![]
        } else {
            vec![total - ACCOUNTS * OPENING]
        },
    );
    let dedup_runs = pool
        .int("SELECT COUNT(*) FROM acidic_runs WHERE kind = 'torture.dedup'")
        .await?;
    check(
        "dedup keys with other than one run (runs minus keys)",
        if dedup_runs == dedup_keys && dedup_created as i64 == dedup_keys {
            vec![]
        } else {
            vec![dedup_runs - dedup_keys, dedup_created as i64 - dedup_keys]
        },
    );
    check(
        "dedup keys whose effect is not exactly once",
        pool.ints(
            "SELECT r.id FROM acidic_runs r WHERE r.kind = 'torture.dedup'
               AND (SELECT COUNT(*) FROM dedup_effects d WHERE d.run_id = r.id) <> 1",
        )
        .await?,
    );
    check(
        "batch items written twice (an iteration committed twice)",
        pool.ints(
            "SELECT run_id FROM batch_items GROUP BY run_id HAVING COUNT(*) > COUNT(DISTINCT item)",
        )
        .await?,
    );
    check(
        "succeeded batches without exactly one row per item",
        pool.ints(
            "SELECT r.id FROM acidic_runs r WHERE r.kind = 'torture.batch' AND r.state = 'succeeded'
               AND (SELECT COUNT(DISTINCT b.item) FROM batch_items b WHERE b.run_id = r.id) <> 30",
        )
        .await?,
    );
    let mut bad_wrong = Vec::new();
    for (id, expected) in &bad {
        let info = rt.run(*id).await?.ok_or("a bad-input run vanished")?;
        let error = info.last_error.unwrap_or_default();
        if info.state != RunState::Failed || !error.contains(expected) {
            println!(
                "  run {id}: {} `{error}`, expected failed with `{expected}`",
                info.state
            );
            bad_wrong.push(id.0);
        }
    }
    check("bad-input runs not failed with their reason", bad_wrong);

    let succeeded = pool
        .int("SELECT COUNT(*) FROM acidic_runs WHERE state = 'succeeded'")
        .await?;
    let rescued = pool
        .int("SELECT COUNT(*) FROM acidic_journal WHERE outcome = 'rescued'")
        .await?;
    let errored = pool
        .int("SELECT COUNT(*) FROM acidic_journal WHERE outcome = 'errored'")
        .await?;
    let ledger = pool.int("SELECT COUNT(*) FROM ledger").await?;
    println!(
        "counts: {created} transfers + {batches} batches of {BATCH_ITEMS} iterations + {dedup_keys} dedup keys (enqueued 3x each); {stalls} stalls; {succeeded} runs succeeded; \
         {ledger} ledger rows; {kills} kills; {rescued} leases rescued; {errored} failed attempts retried; \
         3 bad-input runs failed; total balance {total}; {} s",
        began.elapsed().as_secs()
    );
    Ok(ok)
}
