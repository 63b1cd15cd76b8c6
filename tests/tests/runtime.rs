//! The runtime's guarantees (SPEC §2, §3, §6, §7), each test run on SQLite and on PostgreSQL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use acidic_runtime::prelude::*;
use acidic_runtime::{EnqueueOptions, Error, RunState, Worker};
use acidic_tests::{TestDb, both, eventually, write};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(30);

both!(
    three_step_workflow_runs_each_step_once,
    failing_step_rolls_back_its_writes_and_retries_from_that_step,
    crash_after_a_commit_resumes_at_the_next_step,
    worker_whose_lease_was_taken_over_cannot_commit,
    two_workers_never_run_the_same_step_at_once,
    unique_args_return_the_existing_run_also_under_concurrent_enqueues,
    co_transactional_enqueue_exists_only_if_the_transaction_commits,
    retries_exhaust_into_failed_with_the_error_kept,
    permanent_error_fails_without_retries,
    unknown_recovery_point_fails_readably_and_can_be_moved_to_a_step,
    unknown_kind_and_undecodable_arguments_fail_readably,
    context_values_survive_a_retry,
    concurrency_32_with_a_pool_of_4_finishes,
    repeat_iterates_with_a_cursor_in_the_context,
    snooze_retries_later_without_counting_an_attempt,
    finish_early_skips_the_remaining_steps,
    scheduled_runs_wait_and_cancelled_runs_never_run,
    bulk_enqueue_keeps_order_and_deduplicates,
    graceful_shutdown_hands_the_run_back_at_its_next_step,
    step_panic_is_a_failed_attempt,
    purge_deletes_finished_runs_in_batches,
    oversized_arguments_are_refused_and_store_nothing,
);

// ---------------------------------------------------------------------------------------------
// Jobs used by the suite. Each step records `(run_id, step)` in `effects` inside its transaction.

async fn effect(cx: &mut StepContext<'_>, step: &str) -> Result<(), StepError> {
    let run = cx.run_id().0;
    write(
        cx.db().await?,
        "INSERT INTO effects (run_id, step) VALUES ($1, $2)",
        run,
        step,
    )
    .await?;
    Ok(())
}

async fn setup(db: &TestDb) {
    db.exec("CREATE TABLE effects (run_id BIGINT NOT NULL, step TEXT NOT NULL)")
        .await;
}

async fn effects(db: &TestDb, run: RunId) -> Vec<String> {
    db.rows(
        "SELECT run_id, step FROM effects WHERE run_id = $1 ORDER BY step",
        run.0,
    )
    .await
    .into_iter()
    .map(|(_, s)| s)
    .collect()
}

/// Named gates: a step blocks in its first attempt until the test releases it.
#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
    released: AtomicBool,
}

static GATES: LazyLock<Mutex<HashMap<String, Arc<Gate>>>> = LazyLock::new(Default::default);

fn gate(name: &str) -> Arc<Gate> {
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    gates.entry(name.to_owned()).or_default().clone()
}

async fn pass_gate(name: &Option<String>, attempt: u32) {
    let Some(name) = name else { return };
    if attempt != 1 {
        return;
    }
    let g = gate(name);
    g.entered.notify_one();
    while !g.released.load(Ordering::SeqCst) {
        let released = g.release.notified();
        if g.released.load(Ordering::SeqCst) {
            break;
        }
        released.await;
    }
}

fn open_gate(name: &str) {
    let g = gate(name);
    g.released.store(true, Ordering::SeqCst);
    g.release.notify_waiters();
}

#[acidic_job(
    kind = "test.transfer",
    max_attempts = 5,
    backoff_base_ms = 10,
    backoff_max_ms = 40
)]
#[derive(Debug, Serialize, Deserialize)]
struct Transfer {
    tag: String,
    /// `credit` fails (after writing) while its attempt is at most this.
    fail_credit: u32,
    /// `credit` blocks in its first attempt, before touching the database, at this gate.
    gate: Option<String>,
}

steps!(Transfer: debit; credit; record);

impl Transfer {
    fn new(tag: &str) -> Self {
        Transfer {
            tag: tag.into(),
            fail_credit: 0,
            gate: None,
        }
    }

    async fn debit(&self, cx: &mut StepContext<'_>) -> StepResult {
        effect(cx, "debit").await?;
        Ok(Flow::Next)
    }

    async fn credit(&self, cx: &mut StepContext<'_>) -> StepResult {
        pass_gate(&self.gate, cx.attempt()).await;
        effect(cx, "credit").await?;
        if cx.attempt() <= self.fail_credit {
            return Err(format!("credit bureau unavailable (attempt {})", cx.attempt()).into());
        }
        Ok(Flow::Next)
    }

    async fn record(&self, cx: &mut StepContext<'_>) -> StepResult {
        effect(cx, "record").await?;
        cx.set("recorded_by_step", cx.step()).await?;
        Ok(Flow::Next)
    }
}

fn worker(db: &TestDb) -> acidic_runtime::WorkerBuilder {
    db.rt
        .worker()
        .register::<Transfer>()
        .register::<Flaky>()
        .register::<Counter>()
        .register::<Snoozer>()
        .register::<Early>()
        .register::<Panicky>()
        .queue("default", 4)
        .lease(Duration::from_secs(5))
        .heartbeat_interval(Duration::from_millis(500))
        .rescue_interval(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(200))
}

async fn stop(w: Worker) {
    w.shutdown(Duration::from_secs(10)).await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------

async fn three_step_workflow_runs_each_step_once(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let run = db.rt.enqueue(&Transfer::new("a")).await.unwrap();
    assert!(!run.duplicate);
    let info = db.rt.wait_for(run.run_id, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    assert_eq!(info.step, "finished");
    assert_eq!(
        effects(&db, run.run_id).await,
        ["credit", "debit", "record"]
    );
    let journal = db.rt.journal(run.run_id).await.unwrap();
    let steps: Vec<(&str, &str)> = journal
        .iter()
        .map(|j| (j.step.as_str(), j.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("debit", "succeeded"),
            ("credit", "succeeded"),
            ("record", "succeeded")
        ]
    );
    stop(w).await;
}

async fn failing_step_rolls_back_its_writes_and_retries_from_that_step(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let job = Transfer {
        fail_credit: 2,
        ..Transfer::new("b")
    };
    let run = db.rt.enqueue(&job).await.unwrap().run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    // credit wrote its effect in all three attempts; only the third committed.
    assert_eq!(effects(&db, run).await, ["credit", "debit", "record"]);
    let journal = db.rt.journal(run).await.unwrap();
    let credit: Vec<(i32, &str)> = journal
        .iter()
        .filter(|j| j.step == "credit")
        .map(|j| (j.attempt, j.outcome.as_str()))
        .collect();
    assert_eq!(credit, [(1, "errored"), (2, "errored"), (3, "succeeded")]);
    assert!(journal[1].error.as_deref().unwrap().contains("attempt 1"));
    // debit ran once: the retries started at credit.
    assert_eq!(journal.iter().filter(|j| j.step == "debit").count(), 1);
    assert_eq!(
        info.last_error.as_deref(),
        Some("credit bureau unavailable (attempt 2)")
    );
    stop(w).await;
}

async fn crash_after_a_commit_resumes_at_the_next_step(db: TestDb) {
    setup(&db).await;
    let gate_name = format!("crash-{:?}-{}", db.backend, std::process::id());
    let w1 = worker(&db).lease(Duration::from_millis(700)).start();
    let job = Transfer {
        gate: Some(gate_name.clone()),
        ..Transfer::new("c")
    };
    let run = db.rt.enqueue(&job).await.unwrap().run_id;
    // debit committed, credit is in flight: the process dies.
    gate(&gate_name).entered.notified().await;
    w1.kill();
    assert_eq!(effects(&db, run).await, ["debit"]);
    let w2 = worker(&db).start();
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    assert_eq!(effects(&db, run).await, ["credit", "debit", "record"]);
    let journal = db.rt.journal(run).await.unwrap();
    let outcomes: Vec<(&str, i32, &str)> = journal
        .iter()
        .map(|j| (j.step.as_str(), j.attempt, j.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("debit", 1, "succeeded"),
            ("credit", 1, "rescued"),
            ("credit", 2, "succeeded"),
            ("record", 1, "succeeded")
        ]
    );
    stop(w2).await;
}

/// One step that waits at a gate per attempt, then records which attempt wrote.
#[acidic_job(kind = "test.takeover", max_attempts = 5)]
#[derive(Debug, Serialize, Deserialize)]
struct Takeover {
    gates: String,
}

/// Per write attempt: the test's gate prefix (one per backend), the attempt, whether the write
/// went through, and whether opening the step's transaction reported a lost lease.
type WriteAttempt = (String, u32, bool, bool);
static WRITES: LazyLock<Mutex<Vec<WriteAttempt>>> = LazyLock::new(Default::default);

impl Perform for Takeover {
    async fn perform(&self, cx: &mut StepContext<'_>) -> StepResult {
        let attempt = cx.attempt();
        let g = gate(&format!("{}-{attempt}", self.gates));
        g.entered.notify_one();
        while !g.released.load(Ordering::SeqCst) {
            let released = g.release.notified();
            if g.released.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
        let opened = cx.db().await.map(|_| ());
        let lease_lost = matches!(opened, Err(acidic_runtime::Error::LeaseLost { .. }));
        let written = match opened {
            Ok(()) => effect(cx, &format!("attempt {attempt}")).await,
            Err(e) => Err(e.into()),
        };
        WRITES.lock().unwrap_or_else(|e| e.into_inner()).push((
            self.gates.clone(),
            attempt,
            written.is_ok(),
            lease_lost,
        ));
        written?;
        Ok(Flow::Next)
    }
}

async fn worker_whose_lease_was_taken_over_cannot_commit(db: TestDb) {
    setup(&db).await;
    let gates = format!("takeover-{:?}-{}", db.backend, std::process::id());
    // Worker A never heartbeats, so its short lease expires while its step is in flight.
    let a = db
        .rt
        .worker()
        .register::<Takeover>()
        .queue("default", 1)
        .id("worker-a")
        .lease(Duration::from_millis(300))
        .heartbeat_interval(Duration::from_secs(3600))
        .rescue_interval(Duration::from_secs(3600))
        .start();
    let run = db
        .rt
        .enqueue(&Takeover {
            gates: gates.clone(),
        })
        .await
        .unwrap()
        .run_id;
    gate(&format!("{gates}-1")).entered.notified().await;
    // Worker B rescues the run and is in the same step when A goes on.
    let b = db
        .rt
        .worker()
        .register::<Takeover>()
        .queue("default", 1)
        .id("worker-b")
        .rescue_interval(Duration::from_millis(50))
        .start();
    gate(&format!("{gates}-2")).entered.notified().await;
    let info = db.rt.run(run).await.unwrap().unwrap();
    assert_eq!(info.lease_owner.as_deref(), Some("worker-b"));
    // A's step now touches the database: fenced, it writes nothing.
    open_gate(&format!("{gates}-1"));
    let written = |attempt: u32| {
        WRITES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|w| w.0 == gates && w.1 == attempt)
            .map(|w| (w.2, w.3))
    };
    eventually("worker A's write attempt", WAIT, || async {
        written(1).is_some()
    })
    .await;
    assert_eq!(
        written(1),
        Some((false, true)),
        "the fenced worker's write went through, or failed for another reason than its lost lease"
    );
    open_gate(&format!("{gates}-2"));
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    assert_eq!(effects(&db, run).await, ["attempt 2"]);
    let journal = db.rt.journal(run).await.unwrap();
    assert_eq!(journal.iter().filter(|j| j.outcome == "rescued").count(), 1);
    stop(a).await;
    stop(b).await;
}

/// Steps that record how many executions of the same run overlap.
#[acidic_job(
    kind = "test.flaky",
    max_attempts = 20,
    backoff_base_ms = 5,
    backoff_max_ms = 20
)]
#[derive(Debug, Serialize, Deserialize)]
struct Flaky {
    fail_first: bool,
}

static ACTIVE: LazyLock<Mutex<HashMap<i64, usize>>> = LazyLock::new(Default::default);
static OVERLAPS: AtomicUsize = AtomicUsize::new(0);

steps!(Flaky: one; two; three);

impl Flaky {
    async fn tracked(&self, cx: &mut StepContext<'_>, step: &str) -> StepResult {
        let run = cx.run_id().0;
        {
            let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
            let n = active.entry(run).or_default();
            *n += 1;
            if *n > 1 {
                OVERLAPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let result = effect(cx, step).await;
        {
            let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = active.get_mut(&run) {
                *n -= 1;
            }
        }
        result?;
        if self.fail_first && cx.attempt() == 1 && step == "two" {
            return Err("first attempt of two fails".into());
        }
        Ok(Flow::Next)
    }
    async fn one(&self, cx: &mut StepContext<'_>) -> StepResult {
        self.tracked(cx, "one").await
    }
    async fn two(&self, cx: &mut StepContext<'_>) -> StepResult {
        self.tracked(cx, "two").await
    }
    async fn three(&self, cx: &mut StepContext<'_>) -> StepResult {
        self.tracked(cx, "three").await
    }
}

async fn two_workers_never_run_the_same_step_at_once(db: TestDb) {
    setup(&db).await;
    let other = db.another_runtime(4);
    let w1 = worker(&db).queue("flaky", 8).start();
    let w2 = other
        .worker()
        .register::<Flaky>()
        .queue("flaky", 8)
        .prefetch(8)
        .rescue_interval(Duration::from_millis(100))
        .start();
    let jobs: Vec<Flaky> = (0..60)
        .map(|i| Flaky {
            fail_first: i % 3 == 0,
        })
        .collect();
    let runs = db.rt.enqueue_many_in_queue(&jobs, "flaky").await;
    for r in &runs {
        let info = db.rt.wait_for(*r, WAIT).await.unwrap();
        assert_eq!(info.state, RunState::Succeeded, "{info:?}");
        assert_eq!(effects(&db, *r).await, ["one", "three", "two"], "run {r}");
    }
    assert_eq!(OVERLAPS.load(Ordering::SeqCst), 0);
    stop(w1).await;
    stop(w2).await;
}

/// Helper trait: bulk enqueue onto another queue through `enqueue_with`, one by one.
trait EnqueueInQueue {
    async fn enqueue_many_in_queue(&self, jobs: &[Flaky], queue: &str) -> Vec<RunId>;
}

impl EnqueueInQueue for Runtime {
    async fn enqueue_many_in_queue(&self, jobs: &[Flaky], queue: &str) -> Vec<RunId> {
        let mut out = Vec::new();
        for j in jobs {
            let e = self
                .enqueue_with(j, EnqueueOptions::new().queue(queue))
                .await
                .unwrap();
            out.push(e.run_id);
        }
        out
    }
}

#[acidic_job(kind = "test.unique", unique_by = "args")]
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Unique {
    order: i64,
    items: Vec<String>,
}

impl Perform for Unique {
    async fn perform(&self, _cx: &mut StepContext<'_>) -> StepResult {
        Ok(Flow::Next)
    }
}

async fn unique_args_return_the_existing_run_also_under_concurrent_enqueues(db: TestDb) {
    let a = Unique {
        order: 1,
        items: vec!["ab".into()],
    };
    let first = db.rt.enqueue(&a).await.unwrap();
    let again = db.rt.enqueue(&a).await.unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.run_id, again.run_id);
    // Different arguments (["a","b"] is not ["ab"]) are a different run.
    let b = Unique {
        order: 1,
        items: vec!["a".into(), "b".into()],
    };
    let other = db.rt.enqueue(&b).await.unwrap();
    assert!(!other.duplicate);
    assert_ne!(other.run_id, first.run_id);

    // 20 concurrent enqueues of new equal arguments, each through its own runtime and pool.
    let c = Unique {
        order: 2,
        items: vec![],
    };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let rt = db.another_runtime(1);
        let c = c.clone();
        tasks.push(tokio::spawn(async move { rt.enqueue(&c).await }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().unwrap());
    }
    let created = results.iter().filter(|e| !e.duplicate).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(results.iter().all(|e| e.run_id == results[0].run_id));
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM acidic_runs WHERE kind = 'test.unique' AND $1 = 1",
            1
        )
        .await,
        3
    );
}

async fn co_transactional_enqueue_exists_only_if_the_transaction_commits(db: TestDb) {
    let mut tx = db.user_tx().await;
    let rolled = db
        .rt
        .enqueue_in(tx.db(), &Transfer::new("gone"))
        .await
        .unwrap();
    tx.rollback().await;
    assert!(db.rt.run(rolled.run_id).await.unwrap().is_none());

    let mut tx = db.user_tx().await;
    let kept = db
        .rt
        .enqueue_in(tx.db(), &Transfer::new("kept"))
        .await
        .unwrap();
    tx.commit().await;
    let info = db
        .rt
        .run(kept.run_id)
        .await
        .unwrap()
        .expect("committed run");
    assert_eq!(info.state, RunState::Available);
    assert_eq!(info.step, "debit");
}

async fn retries_exhaust_into_failed_with_the_error_kept(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let job = Transfer {
        fail_credit: 99,
        ..Transfer::new("e")
    };
    let run = db.rt.enqueue(&job).await.unwrap().run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Failed);
    assert_eq!(info.step, "credit");
    assert_eq!(info.attempt, 5);
    assert_eq!(
        info.last_error.as_deref(),
        Some("credit bureau unavailable (attempt 5)")
    );
    let journal = db.rt.journal(run).await.unwrap();
    let credit: Vec<&str> = journal
        .iter()
        .filter(|j| j.step == "credit")
        .map(|j| j.outcome.as_str())
        .collect();
    assert_eq!(
        credit,
        ["errored", "errored", "errored", "errored", "failed"]
    );
    assert_eq!(effects(&db, run).await, ["debit"]);
    stop(w).await;
}

#[acidic_job(kind = "test.early", max_attempts = 10)]
#[derive(Debug, Serialize, Deserialize)]
struct Early {
    mode: String,
}

steps!(Early: first; second);

impl Early {
    async fn first(&self, cx: &mut StepContext<'_>) -> StepResult {
        effect(cx, "first").await?;
        match self.mode.as_str() {
            "finish" => Ok(Flow::Finish),
            "permanent" => Err(StepError::permanent("the order was deleted")),
            _ => Ok(Flow::Next),
        }
    }
    async fn second(&self, cx: &mut StepContext<'_>) -> StepResult {
        effect(cx, "second").await?;
        Ok(Flow::Next)
    }
}

async fn permanent_error_fails_without_retries(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let run = db
        .rt
        .enqueue(&Early {
            mode: "permanent".into(),
        })
        .await
        .unwrap()
        .run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Failed);
    assert_eq!(info.attempt, 1);
    assert_eq!(info.last_error.as_deref(), Some("the order was deleted"));
    assert!(effects(&db, run).await.is_empty());
    stop(w).await;
}

async fn finish_early_skips_the_remaining_steps(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let run = db
        .rt
        .enqueue(&Early {
            mode: "finish".into(),
        })
        .await
        .unwrap()
        .run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded);
    assert_eq!(effects(&db, run).await, ["first"]);
    let journal = db.rt.journal(run).await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].outcome, "finished");
    stop(w).await;
}

async fn unknown_recovery_point_fails_readably_and_can_be_moved_to_a_step(db: TestDb) {
    setup(&db).await;
    let run = db.rt.enqueue(&Transfer::new("f")).await.unwrap().run_id;
    // A deploy renamed the step this run was parked at.
    db.exec_with(
        "UPDATE acidic_runs SET step = 'charge_card' WHERE id = $1",
        run.0,
    )
    .await;
    let w = worker(&db).start();
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Failed);
    let error = info.last_error.unwrap();
    assert!(
        error.contains("unknown recovery point `charge_card`"),
        "{error}"
    );
    assert!(error.contains("debit, credit, record"), "{error}");
    // The operator moves it to a named step and retries it.
    type Step = <Transfer as Workflow>::Step;
    let credit = Step::STEPS[1];
    db.rt.retry_at_step::<Transfer>(run, credit).await.unwrap();
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    assert_eq!(effects(&db, run).await, ["credit", "record"]);
    // Retrying a run that succeeded is refused with its state.
    let err = db.rt.retry(run).await.unwrap_err();
    assert!(matches!(err, Error::InvalidState { .. }), "{err}");
    stop(w).await;
}

async fn unknown_kind_and_undecodable_arguments_fail_readably(db: TestDb) {
    setup(&db).await;
    let bad_args = db.rt.enqueue(&Transfer::new("g")).await.unwrap().run_id;
    db.exec_with(
        "UPDATE acidic_runs SET args = '{\"tag\": 7}' WHERE id = $1",
        bad_args.0,
    )
    .await;
    let unknown = db.rt.enqueue(&Transfer::new("h")).await.unwrap().run_id;
    db.exec_with(
        "UPDATE acidic_runs SET kind = 'test.renamed_away' WHERE id = $1",
        unknown.0,
    )
    .await;
    let good = db.rt.enqueue(&Transfer::new("i")).await.unwrap().run_id;
    let w = worker(&db).start();
    let info = db.rt.wait_for(bad_args, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Failed);
    let e = info.last_error.unwrap();
    assert!(
        e.contains("arguments of test.transfer could not be decoded"),
        "{e}"
    );
    let info = db.rt.wait_for(unknown, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Failed);
    let e = info.last_error.unwrap();
    assert!(e.contains("unknown job kind `test.renamed_away`"), "{e}");
    assert!(e.contains("test.transfer"), "{e}");
    // The worker goes on with the rest.
    let info = db.rt.wait_for(good, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded);
    assert!(effects(&db, bad_args).await.is_empty());
    stop(w).await;
}

#[acidic_job(
    kind = "test.counter",
    max_attempts = 5,
    backoff_base_ms = 10,
    backoff_max_ms = 20
)]
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    until: u32,
    fail_once_at: Option<u32>,
}

steps!(Counter: remember; iterate; check);

impl Counter {
    async fn remember(&self, cx: &mut StepContext<'_>) -> StepResult {
        cx.set("token", "secret-from-step-1").await?;
        Ok(Flow::Next)
    }
    async fn iterate(&self, cx: &mut StepContext<'_>) -> StepResult {
        let cursor: u32 = cx.get("cursor").await?.unwrap_or(0);
        if cursor >= self.until {
            return Ok(Flow::Next);
        }
        let key = cx.idempotency_key();
        effect(cx, &format!("iteration {cursor} {key}")).await?;
        cx.set("cursor", &(cursor + 1)).await?;
        Ok(Flow::Repeat)
    }
    async fn check(&self, cx: &mut StepContext<'_>) -> StepResult {
        let token: Option<String> = cx.get("token").await?;
        cx.set("seen_token", &token).await?;
        if Some(cx.attempt()) == self.fail_once_at {
            return Err("transient".into());
        }
        Ok(Flow::Next)
    }
}

async fn context_values_survive_a_retry(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let run = db
        .rt
        .enqueue(&Counter {
            until: 0,
            fail_once_at: Some(1),
        })
        .await
        .unwrap()
        .run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    let seen: Option<String> = db.rt.context_value(run, "seen_token").await.unwrap();
    assert_eq!(seen.as_deref(), Some("secret-from-step-1"));
    let journal = db.rt.journal(run).await.unwrap();
    assert!(
        journal
            .iter()
            .any(|j| j.step == "check" && j.outcome == "errored")
    );
    stop(w).await;
}

async fn repeat_iterates_with_a_cursor_in_the_context(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let run = db
        .rt
        .enqueue(&Counter {
            until: 4,
            fail_once_at: None,
        })
        .await
        .unwrap()
        .run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded);
    let cursor: Option<u32> = db.rt.context_value(run, "cursor").await.unwrap();
    assert_eq!(cursor, Some(4));
    let effects = effects(&db, run).await;
    let expected: Vec<String> = (0..4)
        .map(|i| format!("iteration {i} acidic-{run}-iterate-{i}"))
        .collect();
    assert_eq!(effects, expected);
    let repeats = db
        .rt
        .journal(run)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.outcome == "repeated")
        .count();
    assert_eq!(repeats, 4);
    stop(w).await;
}

#[acidic_job(kind = "test.snoozer", max_attempts = 1)]
#[derive(Debug, Serialize, Deserialize)]
struct Snoozer {
    snoozes: u32,
}

impl Perform for Snoozer {
    async fn perform(&self, cx: &mut StepContext<'_>) -> StepResult {
        let seen: u32 = cx.get("snoozed").await?.unwrap_or(0);
        if seen < self.snoozes {
            cx.set("snoozed", &(seen + 1)).await?;
            // Every attempt is attempt 1: snoozing does not count.
            cx.set("attempt", &cx.attempt()).await?;
            return Ok(Flow::Snooze(Duration::from_millis(20)));
        }
        cx.set("final_attempt", &cx.attempt()).await?;
        Ok(Flow::Next)
    }
}

async fn snooze_retries_later_without_counting_an_attempt(db: TestDb) {
    let w = worker(&db).start();
    // max_attempts = 1: a counted attempt would fail the run.
    let run = db.rt.enqueue(&Snoozer { snoozes: 3 }).await.unwrap().run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    let snoozed: Option<u32> = db.rt.context_value(run, "snoozed").await.unwrap();
    assert_eq!(snoozed, Some(3));
    let final_attempt: Option<u32> = db.rt.context_value(run, "final_attempt").await.unwrap();
    assert_eq!(final_attempt, Some(1));
    let journal = db.rt.journal(run).await.unwrap();
    assert_eq!(journal.iter().filter(|j| j.outcome == "snoozed").count(), 3);
    stop(w).await;
}

async fn concurrency_32_with_a_pool_of_4_finishes(db: TestDb) {
    let db = TestDb::with_pool_size(db.backend, 4).await;
    setup(&db).await;
    let w = db
        .rt
        .worker()
        .register::<Transfer>()
        .queue("default", 32)
        .poll_interval(Duration::from_millis(100))
        .start();
    let jobs: Vec<Transfer> = (0..200).map(|i| Transfer::new(&format!("p{i}"))).collect();
    let runs = db.rt.enqueue_many(&jobs).await.unwrap();
    for r in &runs {
        let info = db
            .rt
            .wait_for(r.run_id, Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM effects WHERE $1 = 1", 1)
            .await,
        600
    );
    stop(w).await;
}

async fn scheduled_runs_wait_and_cancelled_runs_never_run(db: TestDb) {
    setup(&db).await;
    let later = db
        .rt
        .enqueue_with(
            &Transfer::new("later"),
            EnqueueOptions::new().run_after(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .run_id;
    let cancelled = db
        .rt
        .enqueue_with(
            &Transfer::new("cancelled"),
            EnqueueOptions::new().run_after(Duration::from_millis(300)),
        )
        .await
        .unwrap()
        .run_id;
    assert!(db.rt.cancel(cancelled).await.unwrap());
    let soon = db
        .rt
        .enqueue_with(
            &Transfer::new("soon"),
            EnqueueOptions::new().run_after(Duration::from_millis(300)),
        )
        .await
        .unwrap()
        .run_id;
    let w = worker(&db).start();
    let info = db.rt.wait_for(soon, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded);
    assert!(info.created_at + 300 <= info.finished_at.unwrap());
    let info = db.rt.run(later).await.unwrap().unwrap();
    assert_eq!(info.state, RunState::Available);
    assert!(effects(&db, later).await.is_empty());
    let info = db.rt.run(cancelled).await.unwrap().unwrap();
    assert_eq!(info.state, RunState::Cancelled);
    assert!(effects(&db, cancelled).await.is_empty());
    assert!(!db.rt.cancel(cancelled).await.unwrap());
    stop(w).await;
}

async fn bulk_enqueue_keeps_order_and_deduplicates(db: TestDb) {
    let existing = db
        .rt
        .enqueue(&Unique {
            order: 9,
            items: vec![],
        })
        .await
        .unwrap();
    let jobs: Vec<Unique> = [1, 2, 9, 2, 3]
        .into_iter()
        .map(|order| Unique {
            order,
            items: vec![],
        })
        .collect();
    let out = db.rt.enqueue_many(&jobs).await.unwrap();
    let dups: Vec<bool> = out.iter().map(|e| e.duplicate).collect();
    assert_eq!(dups, [false, false, true, true, false]);
    assert_eq!(out[2].run_id, existing.run_id);
    assert_eq!(out[1].run_id, out[3].run_id);
    for (e, job) in out.iter().zip(&jobs) {
        let info = db.rt.run(e.run_id).await.unwrap().unwrap();
        let args: Unique = serde_json::from_str(&info.args).unwrap();
        assert_eq!(args.order, job.order);
    }
    // Plain jobs come back in input order too.
    let plain: Vec<Transfer> = (0..50).map(|i| Transfer::new(&format!("{i}"))).collect();
    let out = db.rt.enqueue_many(&plain).await.unwrap();
    for (i, e) in out.iter().enumerate() {
        let info = db.rt.run(e.run_id).await.unwrap().unwrap();
        let args: Transfer = serde_json::from_str(&info.args).unwrap();
        assert_eq!(args.tag, i.to_string());
        assert!(!e.duplicate);
    }
}

async fn graceful_shutdown_hands_the_run_back_at_its_next_step(db: TestDb) {
    setup(&db).await;
    let gate_name = format!("shutdown-{:?}-{}", db.backend, std::process::id());
    let w = worker(&db).start();
    let job = Transfer {
        gate: Some(gate_name.clone()),
        ..Transfer::new("s")
    };
    let run = db.rt.enqueue(&job).await.unwrap().run_id;
    gate(&gate_name).entered.notified().await;
    // Shut down while credit is in flight; it finishes within the grace period.
    w.begin_shutdown(Duration::from_secs(20));
    open_gate(&gate_name);
    let report = w.shutdown(Duration::from_secs(20)).await.unwrap();
    assert_eq!(report.released, 0);
    let info = db.rt.run(run).await.unwrap().unwrap();
    let journal = db.rt.journal(run).await.unwrap();
    assert_eq!(info.state, RunState::Available, "{info:?} {journal:?}");
    assert_eq!(info.step, "record");
    assert_eq!(info.lease_owner, None);
    assert_eq!(effects(&db, run).await, ["credit", "debit"]);
    // Another worker finishes it without redoing anything.
    let w2 = worker(&db).start();
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded);
    assert_eq!(effects(&db, run).await, ["credit", "debit", "record"]);
    stop(w2).await;
}

#[acidic_job(kind = "test.panicky", max_attempts = 2, backoff_base_ms = 10)]
#[derive(Debug, Serialize, Deserialize)]
struct Panicky {}

impl Perform for Panicky {
    async fn perform(&self, cx: &mut StepContext<'_>) -> StepResult {
        effect(cx, "before panic").await?;
        if cx.attempt() == 1 {
            panic!("boom in attempt 1");
        }
        Ok(Flow::Next)
    }
}

async fn step_panic_is_a_failed_attempt(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let run = db.rt.enqueue(&Panicky {}).await.unwrap().run_id;
    let info = db.rt.wait_for(run, WAIT).await.unwrap();
    assert_eq!(info.state, RunState::Succeeded, "{info:?}");
    assert_eq!(effects(&db, run).await, ["before panic"]);
    let journal = db.rt.journal(run).await.unwrap();
    assert_eq!(journal[0].outcome, "errored");
    assert_eq!(
        journal[0].error.as_deref(),
        Some("step panicked: boom in attempt 1")
    );
    stop(w).await;
}

async fn purge_deletes_finished_runs_in_batches(db: TestDb) {
    setup(&db).await;
    let w = worker(&db).start();
    let jobs: Vec<Transfer> = (0..7).map(|i| Transfer::new(&format!("x{i}"))).collect();
    let runs = db.rt.enqueue_many(&jobs).await.unwrap();
    for r in &runs {
        db.rt.wait_for(r.run_id, WAIT).await.unwrap();
    }
    stop(w).await;
    let pending = db
        .rt
        .enqueue(&Transfer::new("pending"))
        .await
        .unwrap()
        .run_id;
    let first = runs[0].run_id.0;
    let journal = "SELECT count(*) FROM acidic_journal WHERE run_id >= $1";
    let context = "SELECT count(*) FROM acidic_context WHERE run_id >= $1";
    assert_eq!(db.scalar(journal, first).await, 7 * 3);
    assert_eq!(db.scalar(context, first).await, 7);
    assert_eq!(db.rt.purge(Duration::from_secs(3600), 3).await.unwrap(), 0);
    assert_eq!(db.rt.purge(Duration::ZERO, 3).await.unwrap(), 7);
    assert!(db.rt.run(runs[0].run_id).await.unwrap().is_none());
    // A purged run leaves neither journal entries nor context values behind.
    assert_eq!(db.scalar(journal, first).await, 0);
    assert_eq!(db.scalar(context, first).await, 0);
    assert!(db.rt.run(pending).await.unwrap().is_some());
}

async fn oversized_arguments_are_refused_and_store_nothing(db: TestDb) {
    let big = Transfer::new(&"x".repeat(acidic_runtime::MAX_ARGS_BYTES));
    let err = db.rt.enqueue(&big).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::PayloadTooLarge {
                kind: "test.transfer",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("over the limit"), "{err}");
    let err = db
        .rt
        .enqueue_many(&[Transfer::new("ok"), big])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err}");
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM acidic_runs WHERE $1 = 1", 1)
            .await,
        0
    );
}
