//! Workers: claim runs per queue, execute their steps, keep leases alive, rescue dead workers'
//! runs, and shut down gracefully.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::context::StepContext;
use crate::error::{Error, Result};
use crate::retry::{RetryDecision, decide, jitter_unit};
use crate::run::{RunState, duration_ms};
use crate::runtime::Runtime;
use crate::store::{self, Claimed, Lease, Store, Transition};
use crate::workflow::{BoxFuture, Flow, RecoveryPoint, StepError, Workflow};

/// Configures and starts a worker: which job types it runs, which queues, how many at once.
///
/// ```no_run
/// # use acidic_runtime::prelude::*;
/// # #[acidic_job] #[derive(serde::Serialize, serde::Deserialize)] struct Ship { order: i64 }
/// # impl Perform for Ship { async fn perform(&self, _: &mut StepContext<'_>) -> StepResult { Ok(Flow::Next) } }
/// # async fn demo(rt: acidic_runtime::Runtime) -> Result<(), acidic_runtime::Error> {
/// let worker = rt.worker().register::<Ship>().queue("default", 8).start();
/// // ... later:
/// worker.shutdown(std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
pub struct WorkerBuilder {
    rt: Runtime,
    registry: HashMap<&'static str, Arc<dyn Handler>>,
    queues: Vec<(String, usize)>,
    lease: Duration,
    heartbeat: Duration,
    poll: Duration,
    rescue: Duration,
    prefetch: Option<usize>,
    id: Option<String>,
}

impl WorkerBuilder {
    pub(crate) fn new(rt: Runtime) -> Self {
        WorkerBuilder {
            rt,
            registry: HashMap::new(),
            queues: Vec::new(),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            rescue: Duration::from_secs(5),
            prefetch: None,
            id: None,
        }
    }

    /// Runs jobs of type `W` (by its kind) when claimed from any of this worker's queues.
    pub fn register<W: Workflow>(mut self) -> Self {
        self.registry
            .insert(W::KIND, Arc::new(WorkflowHandler::<W>(PhantomData)));
        self
    }

    /// Claims from `queue`, running at most `concurrency` runs at once (at least 1).
    pub fn queue(mut self, queue: impl Into<String>, concurrency: usize) -> Self {
        self.queues.push((queue.into(), concurrency.max(1)));
        self
    }

    /// How long a claim lasts without a heartbeat before other workers may rescue the run
    /// (default 30 s).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often leases are extended (default 10 s; keep it well below the lease).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// Fallback poll when no wake-up arrives (default 1 s).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// How often expired leases are looked for (default 5 s).
    pub fn rescue_interval(mut self, every: Duration) -> Self {
        self.rescue = every;
        self
    }

    /// How many runs each queue may claim ahead of a free slot, so that claims of short jobs are
    /// batched (default 0: claim only for free slots). Runs claimed ahead wait leased to this
    /// worker while other workers may be idle, so use it for short jobs only, e.g. `prefetch(64)`.
    pub fn prefetch(mut self, runs: usize) -> Self {
        self.prefetch = Some(runs);
        self
    }

    /// Names this worker in leases (default: a random name with the process id).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Starts the worker's tasks on the current tokio runtime.
    pub fn start(self) -> Worker {
        let id = self.id.unwrap_or_else(|| {
            format!(
                "worker-{}-{:08x}",
                std::process::id(),
                (jitter_unit(0) * f64::from(u32::MAX)) as u32
            )
        });
        let (stop_tx, stop_rx) = watch::channel(None);
        let (advances, committer) = GroupCommit::new(self.rt.store().clone());
        let shared = Arc::new(Shared {
            advances,
            rt: self.rt,
            registry: self.registry,
            worker_id: id,
            lease_ms: duration_ms(self.lease),
            stop: stop_rx,
        });
        let mut queue_tasks = Vec::new();
        for (queue, concurrency) in self.queues {
            let prefetch = self.prefetch.unwrap_or(0);
            queue_tasks.push(tokio::spawn(queue_loop(
                shared.clone(),
                queue,
                concurrency,
                prefetch,
                self.poll,
            )));
        }
        let background = vec![
            tokio::spawn(committer),
            tokio::spawn(every(shared.clone(), self.heartbeat, heartbeat)),
            tokio::spawn(every(shared.clone(), self.rescue, rescue)),
            tokio::spawn(listen(shared.clone())),
        ];
        tracing::info!(worker = %shared.worker_id, "acidic worker started");
        Worker {
            shared,
            stop: stop_tx,
            queue_tasks,
            background,
        }
    }
}

/// A running worker. Stop it with [`shutdown`](Self::shutdown); dropping it stops its tasks
/// abruptly, like a crash (its runs are rescued when their leases expire).
pub struct Worker {
    shared: Arc<Shared>,
    stop: watch::Sender<Option<Instant>>,
    queue_tasks: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

/// What a graceful shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Runs whose step did not finish within the grace period: interrupted, rolled back and
    /// made available again without counting the attempt.
    pub released: u64,
}

impl Worker {
    /// The name this worker writes into leases.
    pub fn id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Stops claiming, lets running steps finish within `grace` (a run stops after its current
    /// step and is handed back at its next step), then interrupts what is left and releases its
    /// leases.
    pub async fn shutdown(mut self, grace: Duration) -> Result<ShutdownReport> {
        self.begin_shutdown(grace);
        for t in self.queue_tasks.drain(..) {
            let _ = t.await;
        }
        for t in self.background.drain(..) {
            t.abort();
        }
        let released = self
            .shared
            .rt
            .store()
            .release_owned(&self.shared.worker_id)
            .await?;
        tracing::info!(worker = %self.shared.worker_id, released, "acidic worker stopped");
        Ok(ShutdownReport { released })
    }

    /// Starts a graceful shutdown without waiting for it: from now on no run is claimed and
    /// every run stops after its current step. A second call keeps the first deadline.
    /// [`shutdown`](Self::shutdown) waits for it to complete.
    pub fn begin_shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.stop.send_if_modified(|d| {
            if d.is_none() {
                *d = Some(deadline);
                true
            } else {
                false
            }
        });
    }

    /// Stops every task at once without touching the database, as if the process died.
    /// For tests of crash recovery.
    pub fn kill(mut self) {
        self.abort_all();
    }

    fn abort_all(&mut self) {
        for t in self.queue_tasks.drain(..).chain(self.background.drain(..)) {
            t.abort();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.abort_all();
    }
}

struct Shared {
    rt: Runtime,
    advances: GroupCommit,
    registry: HashMap<&'static str, Arc<dyn Handler>>,
    worker_id: String,
    lease_ms: i64,
    /// `Some(deadline)` once shutdown began.
    stop: watch::Receiver<Option<Instant>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.borrow().is_some()
    }
}

async fn queue_loop(
    shared: Arc<Shared>,
    queue: String,
    concurrency: usize,
    prefetch: usize,
    poll: Duration,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut tasks: JoinSet<()> = JoinSet::new();
    // Runs claimed ahead of a free slot, so that claims stay batched; they are leased (and
    // heartbeated) like running ones, and handed back at shutdown.
    let mut buffer: VecDeque<Claimed> = VecDeque::new();
    let capacity = concurrency + prefetch;
    let mut stop = shared.stop.clone();
    let mut failures = 0u32;
    let start = |tasks: &mut JoinSet<()>, run: Claimed, slot: OwnedSemaphorePermit| {
        let shared = shared.clone();
        let queue = queue.clone();
        tasks.spawn(async move { execute(&shared, &queue, run, slot).await });
    };
    while !shared.stopping() {
        while let Some(done) = tasks.try_join_next() {
            log_task_end(done);
        }
        while !buffer.is_empty() {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break;
            };
            if let Some(run) = buffer.pop_front() {
                start(&mut tasks, run, slot);
            }
        }
        let held = concurrency - slots.available_permits() + buffer.len();
        let room = capacity.saturating_sub(held);
        let wake = shared.rt.inner.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let mut idle = false;
        if room > 0 && buffer.len() <= prefetch / 2 {
            match shared
                .rt
                .store()
                .claim(&queue, room, &shared.worker_id, shared.lease_ms)
                .await
            {
                Ok(runs) => {
                    failures = 0;
                    idle = runs.len() < room;
                    buffer.extend(runs);
                    if !idle {
                        continue;
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let pause = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tracing::warn!(%queue, error = %e, ?pause, "claiming failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {},
                        _ = stop.changed() => {},
                    }
                    continue;
                }
            }
        }
        if !buffer.is_empty() || held >= capacity {
            // Busy: wait for a slot to free up.
            let slot = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = stop.changed() => continue,
            };
            match buffer.pop_front() {
                Some(run) => start(&mut tasks, run, slot),
                None => drop(slot),
            }
        } else if idle {
            tokio::select! {
                _ = &mut wake => {},
                _ = tokio::time::sleep(poll) => {},
                _ = stop.changed() => {},
            }
        }
    }
    // Drain: let running steps finish until the deadline, then interrupt them.
    let deadline = (*shared.stop.borrow()).unwrap_or_else(Instant::now);
    let drained = tokio::time::timeout_at(deadline.into(), async {
        while let Some(done) = tasks.join_next().await {
            log_task_end(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(%queue, left = tasks.len(), "grace period over; interrupting steps");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

fn log_task_end(done: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a run task panicked outside its step: {e}");
    }
}

async fn execute(shared: &Shared, queue: &str, run: Claimed, _slot: OwnedSemaphorePermit) {
    let span = tracing::info_span!(
        "acidic.run",
        run_id = run.id.0,
        kind = %run.kind,
        queue,
        worker = %shared.worker_id,
    );
    async {
        match shared.registry.get(run.kind.as_str()) {
            Some(handler) => handler.execute(shared, &run).await,
            None => {
                let mut known: Vec<&str> = shared.registry.keys().copied().collect();
                known.sort_unstable();
                let reason = format!(
                    "unknown job kind `{}`: worker {} has no job of that kind registered (registered: {})",
                    run.kind,
                    shared.worker_id,
                    known.join(", ")
                );
                fail_unprocessable(shared, &run, reason).await;
            }
        }
    }
    .instrument(span)
    .await
}

/// A registered job type, with its type erased.
trait Handler: Send + Sync {
    fn execute<'a>(&'a self, shared: &'a Shared, run: &'a Claimed) -> BoxFuture<'a, ()>;
}

struct WorkflowHandler<W>(PhantomData<fn() -> W>);

impl<W: Workflow> Handler for WorkflowHandler<W> {
    fn execute<'a>(&'a self, shared: &'a Shared, run: &'a Claimed) -> BoxFuture<'a, ()> {
        Box::pin(run_workflow::<W>(shared, run))
    }
}

/// What a step's outcome does to the run.
struct Plan<P> {
    next: P,
    state: RunState,
    attempt: i32,
    iteration: i32,
    delay_ms: i64,
    outcome: &'static str,
    /// Whether this worker goes on to run `next` now.
    go_on: bool,
}

fn plan<P: RecoveryPoint>(
    flow: Flow,
    point: P,
    attempt: u32,
    iteration: u32,
    stopping: bool,
) -> Plan<P> {
    let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
    let iteration = i32::try_from(iteration).unwrap_or(i32::MAX);
    let finish = |outcome| Plan {
        next: P::TERMINAL,
        state: RunState::Succeeded,
        attempt,
        iteration: 0,
        delay_ms: 0,
        outcome,
        go_on: false,
    };
    // Continue with `next` in this claim, or hand it back when shutting down.
    let proceed = |next: P, iteration: i32, outcome| Plan {
        next,
        state: if stopping {
            RunState::Available
        } else {
            RunState::Running
        },
        attempt: if stopping { 0 } else { 1 },
        iteration,
        delay_ms: 0,
        outcome,
        go_on: !stopping,
    };
    match flow {
        Flow::Finish => finish("finished"),
        Flow::Next if point.next() == P::TERMINAL => finish("succeeded"),
        Flow::Next => proceed(point.next(), 0, "succeeded"),
        Flow::Repeat => proceed(point, iteration.saturating_add(1), "repeated"),
        Flow::Snooze(delay) => Plan {
            next: point,
            state: RunState::Available,
            attempt: attempt - 1,
            iteration,
            delay_ms: duration_ms(delay),
            outcome: "snoozed",
            go_on: false,
        },
    }
}

async fn run_workflow<W: Workflow>(shared: &Shared, run: &Claimed) {
    let job: W = match serde_json::from_str(&run.args) {
        Ok(job) => job,
        Err(e) => {
            let reason = format!("arguments of {} could not be decoded: {e}", W::KIND);
            return fail_unprocessable(shared, run, reason).await;
        }
    };
    let Some(mut point) = W::Step::from_name(&run.step) else {
        let known: Vec<&str> = W::Step::STEPS.iter().map(|s| s.name()).collect();
        let reason = format!(
            "unknown recovery point `{}` for {}: the known steps are {}; move the run to one of them with retry_at_step",
            run.step,
            W::KIND,
            known.join(", ")
        );
        return fail_unprocessable(shared, run, reason).await;
    };
    let store = shared.rt.store();
    let lease = Lease {
        run_id: run.id,
        token: run.token,
    };
    let mut attempt = u32::try_from(run.attempt.max(1)).unwrap_or(1);
    let mut iteration = u32::try_from(run.iteration.max(0)).unwrap_or(0);
    if shared.stopping() {
        // Claimed as shutdown began: hand it back unstarted, without counting the attempt.
        let t = Transition {
            state: RunState::Available,
            step: point.name(),
            iteration: run.iteration,
            attempt: run.attempt - 1,
            delay_ms: 0,
            outcome: "released",
            journal_attempt: run.attempt,
            duration_ms: 0,
            error: None,
        };
        if let Err(e) = commit_step(store, None, lease, point.name(), &t).await {
            tracing::warn!(error = %e, "could not hand back a run claimed during shutdown");
        }
        return;
    }
    loop {
        let step = point.name();
        let started = Instant::now();
        let span = tracing::info_span!("acidic.step", step, attempt, iteration);
        let mut cx = StepContext::new(store, lease, &run.kind, step, attempt, iteration);
        let outcome = if point == W::Step::TERMINAL {
            Ok(Flow::Finish)
        } else {
            match CatchUnwind(job.run_step(point, &mut cx))
                .instrument(span.clone())
                .await
            {
                Ok(result) => result,
                Err(panic) => Err(StepError::retryable(format!(
                    "step panicked: {}",
                    panic_message(&*panic)
                ))),
            }
        };
        let tx = cx.take_tx();
        let elapsed = duration_ms(started.elapsed());
        let failure = match outcome {
            Ok(flow) => {
                let p = plan(flow, point, attempt, iteration, shared.stopping());
                let t = Transition {
                    state: p.state,
                    step: p.next.name(),
                    iteration: p.iteration,
                    attempt: p.attempt,
                    delay_ms: p.delay_ms,
                    outcome: p.outcome,
                    journal_attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
                    duration_ms: elapsed,
                    error: None,
                };
                // A step that never touched the database has nothing of its own to commit:
                // its advance joins other runs' advances in one transaction (group commit).
                let committed = match tx {
                    Some(tx) => commit_step(store, Some(tx), lease, step, &t).await,
                    None => shared.advances.commit(lease, step, t).await,
                };
                match committed {
                    Ok(()) => {
                        span.in_scope(|| tracing::debug!(outcome = p.outcome, "step committed"));
                        if !p.go_on {
                            return;
                        }
                        point = p.next;
                        attempt = 1;
                        iteration = u32::try_from(p.iteration).unwrap_or(0);
                        continue;
                    }
                    Err(Error::LeaseLost { .. }) => {
                        span.in_scope(|| {
                            tracing::warn!("lease lost before commit; the step was rolled back")
                        });
                        return;
                    }
                    Err(e) => StepError::retryable(e),
                }
            }
            Err(e) => {
                if let Some(tx) = tx {
                    let _ = tx.rollback().await;
                }
                e
            }
        };
        if let Some(Error::LeaseLost { .. }) = failure.runtime_error() {
            span.in_scope(|| tracing::warn!("lease lost during the step; it was rolled back"));
            return;
        }
        let decision = decide(
            attempt,
            u32::try_from(run.max_attempts).unwrap_or(1),
            failure.is_permanent(),
            W::OPTIONS.backoff,
            jitter_unit(run.id.0 ^ i64::from(attempt)),
        );
        span.in_scope(|| tracing::warn!(error = %failure, ?decision, "step failed"));
        record_failure(
            shared,
            run,
            lease,
            step,
            attempt,
            decision,
            failure.to_string(),
            elapsed,
        )
        .await;
        return;
    }
}

/// Commits a step's outcome: in the step's own transaction if it opened one, else alone.
async fn commit_step(
    store: &Store,
    tx: Option<crate::store::Tx>,
    lease: Lease,
    step: &str,
    t: &Transition<'_>,
) -> Result<()> {
    let Some(mut tx) = tx else {
        return store.transition_alone(lease, step, t).await;
    };
    let applied = store::transition(tx.db(), lease, step, t).await;
    tx.settle(applied).await
}

/// An advance waiting for the group commit.
struct Advance {
    lease: Lease,
    step: &'static str,
    transition: Transition<'static>,
    done: oneshot::Sender<Result<()>>,
}

/// Commits the advances of steps that wrote nothing, many runs per transaction. Each advance is
/// still its own guarded statement (fencing per run); only the commit is shared.
struct GroupCommit {
    queue: mpsc::Sender<Advance>,
}

/// Advances per transaction at most.
const GROUP_MAX: usize = 512;

impl GroupCommit {
    fn new(store: Store) -> (GroupCommit, impl Future<Output = ()> + Send + 'static) {
        let (queue, rx) = mpsc::channel(GROUP_MAX * 4);
        (GroupCommit { queue }, group_committer(store, rx))
    }

    async fn commit(&self, lease: Lease, step: &'static str, t: Transition<'static>) -> Result<()> {
        let (done, result) = oneshot::channel();
        let advance = Advance {
            lease,
            step,
            transition: t,
            done,
        };
        if self.queue.send(advance).await.is_err() {
            return Err(group_commit_gone());
        }
        result.await.unwrap_or_else(|_| Err(group_commit_gone()))
    }
}

fn group_commit_gone() -> Error {
    Error::Database {
        op: "committing a step advance (the worker is stopping)",
        source: sqlx::Error::PoolClosed,
    }
}

async fn group_committer(store: Store, mut rx: mpsc::Receiver<Advance>) {
    let mut batch = Vec::with_capacity(GROUP_MAX);
    while rx.recv_many(&mut batch, GROUP_MAX).await > 0 {
        let outcomes = commit_group(&store, &batch).await;
        for (advance, outcome) in batch.drain(..).zip(outcomes) {
            let _ = advance.done.send(outcome);
        }
    }
}

/// Applies a group of advances in one transaction: one outcome per advance. A fenced advance
/// changes nothing and does not disturb the others; a database error fails the whole group
/// (nothing of it committed), and each run then records a failed attempt.
async fn commit_group(store: &Store, batch: &[Advance]) -> Vec<Result<()>> {
    let failed = |e: &Error| -> Vec<Result<()>> {
        batch
            .iter()
            .map(|_| {
                Err(Error::Database {
                    op: "committing a group of step advances",
                    source: sqlx::Error::Protocol(e.to_string()),
                })
            })
            .collect()
    };
    let items: Vec<(Lease, &str, &Transition<'_>)> = batch
        .iter()
        .map(|a| (a.lease, a.step, &a.transition))
        .collect();
    let applied = match store.transition_group(&items).await {
        Ok(applied) => applied,
        Err(e) => return failed(&e),
    };
    batch
        .iter()
        .zip(applied)
        .map(|(a, ok)| {
            if ok {
                Ok(())
            } else {
                Err(Error::LeaseLost {
                    run_id: a.lease.run_id,
                })
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn record_failure(
    shared: &Shared,
    run: &Claimed,
    lease: Lease,
    step: &str,
    attempt: u32,
    decision: RetryDecision,
    error: String,
    elapsed_ms: i64,
) {
    let (state, delay_ms, outcome) = match decision {
        RetryDecision::RetryAfter(d) => (RunState::Available, duration_ms(d), "errored"),
        RetryDecision::Fail => (RunState::Failed, 0, "failed"),
    };
    let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
    let t = Transition {
        state,
        step,
        iteration: run.iteration,
        attempt,
        delay_ms,
        outcome,
        journal_attempt: attempt,
        duration_ms: elapsed_ms,
        error: Some(error),
    };
    let store = shared.rt.store();
    match commit_step(store, None, lease, step, &t).await {
        Ok(()) => {}
        Err(Error::LeaseLost { .. }) => {
            tracing::warn!("lease lost before the failure could be recorded")
        }
        // The lease expires and the run is rescued: no attempt is lost, none is run twice.
        Err(e) => tracing::error!(error = %e, "could not record the step's failure"),
    }
}

/// Fails a run that cannot be executed at all (unknown kind, undecodable arguments, unknown
/// recovery point), keeping the reason.
async fn fail_unprocessable(shared: &Shared, run: &Claimed, reason: String) {
    tracing::error!(%reason, "run cannot be executed; failing it");
    let lease = Lease {
        run_id: run.id,
        token: run.token,
    };
    let attempt = u32::try_from(run.attempt.max(1)).unwrap_or(1);
    record_failure(
        shared,
        run,
        lease,
        &run.step,
        attempt,
        RetryDecision::Fail,
        reason,
        0,
    )
    .await;
}

async fn every<F, Fut>(shared: Arc<Shared>, period: Duration, f: F)
where
    F: Fn(Arc<Shared>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        f(shared.clone()).await;
    }
}

async fn heartbeat(shared: Arc<Shared>) {
    if let Err(e) = shared
        .rt
        .store()
        .heartbeat(&shared.worker_id, shared.lease_ms)
        .await
    {
        tracing::warn!(error = %e, "heartbeat failed");
    }
}

async fn rescue(shared: Arc<Shared>) {
    match shared.rt.store().rescue(1000).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::warn!(rescued = n, "rescued runs whose lease expired");
            shared.rt.inner.wake.notify_waiters();
        }
        Err(e) => tracing::warn!(error = %e, "rescue failed"),
    }
}

/// Wakes the claimers on PostgreSQL notifications; reconnects after errors. SQLite needs no
/// listener: enqueues in this process wake the claimers directly.
async fn listen(shared: Arc<Shared>) {
    let Store::Postgres(pool) = shared.rt.store() else {
        return;
    };
    let mut stop = shared.stop.clone();
    let mut pause = Duration::from_millis(100);
    loop {
        let attempt = async {
            let schema: String = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(pool)
                .await?;
            let own = PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with((*pool.connect_options()).clone());
            let mut listener = PgListener::connect_with(&own).await?;
            listener.listen(&format!("acidic_runs.{schema}")).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match attempt.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN failed; polling until it reconnects");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {},
                    _ = stop.changed() => return,
                }
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        // Runs may have been inserted while we were not listening.
        shared.rt.inner.wake.notify_waiters();
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(_)) => shared.rt.inner.wake.notify_waiters(),
                    Ok(None) => shared.rt.inner.wake.notify_waiters(),
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}

/// Catches a panic inside a step so that it is recorded as a failed attempt.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::OneStep;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Three {
        A,
        B,
        Done,
    }

    impl RecoveryPoint for Three {
        const STEPS: &'static [Self] = &[Three::A, Three::B];
        const TERMINAL: Self = Three::Done;
        fn name(self) -> &'static str {
            match self {
                Three::A => "a",
                Three::B => "b",
                Three::Done => "finished",
            }
        }
        fn next(self) -> Self {
            match self {
                Three::A => Three::B,
                _ => Three::Done,
            }
        }
        fn awaits(self) -> &'static [&'static str] {
            &[]
        }
    }

    #[test]
    fn next_continues_in_the_same_claim_with_a_fresh_attempt() {
        let p = plan(Flow::Next, Three::A, 3, 2, false);
        assert_eq!(
            (p.next, p.state, p.attempt, p.iteration, p.go_on),
            (Three::B, RunState::Running, 1, 0, true)
        );
    }

    #[test]
    fn next_hands_the_run_back_when_stopping() {
        let p = plan(Flow::Next, Three::A, 3, 0, true);
        assert_eq!(
            (p.next, p.state, p.attempt, p.go_on),
            (Three::B, RunState::Available, 0, false)
        );
    }

    #[test]
    fn last_step_and_finish_succeed() {
        let p = plan(Flow::Next, Three::B, 1, 0, false);
        assert_eq!(
            (p.next, p.state, p.outcome),
            (Three::Done, RunState::Succeeded, "succeeded")
        );
        let p = plan(Flow::Finish, Three::A, 1, 0, false);
        assert_eq!(
            (p.next, p.state, p.outcome),
            (Three::Done, RunState::Succeeded, "finished")
        );
    }

    #[test]
    fn repeat_counts_iterations_and_snooze_gives_back_the_attempt() {
        let p = plan(Flow::Repeat, Three::A, 2, 4, false);
        assert_eq!(
            (p.next, p.iteration, p.attempt, p.go_on),
            (Three::A, 5, 1, true)
        );
        let p = plan(Flow::Snooze(Duration::from_secs(2)), Three::B, 2, 1, false);
        assert_eq!(
            (p.next, p.state, p.attempt, p.iteration, p.delay_ms, p.go_on),
            (Three::B, RunState::Available, 1, 1, 2000, false)
        );
    }

    #[test]
    fn one_step_jobs_finish_after_perform() {
        let p = plan(Flow::Next, OneStep::Perform, 1, 0, false);
        assert_eq!((p.next, p.state), (OneStep::Finished, RunState::Succeeded));
    }
}
