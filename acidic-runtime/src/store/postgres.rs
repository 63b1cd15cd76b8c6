//! The PostgreSQL dialect: row locks, `FOR UPDATE SKIP LOCKED` claiming, LISTEN/NOTIFY.

use sqlx::PgConnection;

use super::{Lease, NewRun, Q, Transition};
use crate::error::{Error, Result};

/// Milliseconds since the epoch on the server's clock.
macro_rules! now {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

pub(super) const SQL: Q = Q {
    begin_write: "BEGIN",
    enqueue: concat!(
        "INSERT INTO acidic_runs (kind, args, unique_key, queue, priority, state, step, max_attempts,
            scheduled_at, parent_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'available', $6, $7, COALESCE($8, ",
        now!(),
        " + $9), $10, ",
        now!(),
        ", ",
        now!(),
        ")
         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
         RETURNING id"
    ),
    claim: concat!(
        "UPDATE acidic_runs r SET state = 'running', attempt = r.attempt + 1, lease_owner = $3,
            lease_token = r.lease_token + 1, lease_expires_at = ",
        now!(),
        " + $4, updated_at = ",
        now!(),
        "
         FROM (SELECT id FROM acidic_runs
               WHERE state = 'available' AND queue = $1 AND scheduled_at <= ",
        now!(),
        "
               ORDER BY priority DESC, scheduled_at, id
               LIMIT $2 FOR UPDATE SKIP LOCKED) c
         WHERE r.id = c.id
         RETURNING r.id, r.kind, r.args, r.step, r.attempt, r.max_attempts, r.lease_token, r.iteration"
    ),
    guard: "SELECT 1 FROM acidic_runs
        WHERE id = $1 AND lease_token = $2 AND state = 'running' AND step = $3
        FOR NO KEY UPDATE",
    // $1 id, $2 token, $3 expected step, $4 new state, $5 new step, $6 iteration, $7 attempt,
    // $8 delay ms, $9 outcome, $10 duration ms, $11 journal attempt, $12 error.
    // A run that stays running (its next step follows in this claim) keeps its schedule and
    // lease columns, so that no indexed column changes and the update can be HOT.
    transition: concat!(
        "WITH u AS (
            UPDATE acidic_runs SET state = $4, step = $5, iteration = $6, attempt = $7,
                scheduled_at = CASE WHEN $4 = 'running' THEN scheduled_at ELSE ",
        now!(),
        " + $8 END,
                lease_owner = CASE WHEN $4 = 'running' THEN lease_owner END,
                lease_expires_at = CASE WHEN $4 = 'running' THEN lease_expires_at END,
                last_error = COALESCE($12, last_error),
                finished_at = CASE WHEN $4 IN ('succeeded', 'failed') THEN ",
        now!(),
        " END,
                updated_at = ",
        now!(),
        "
            WHERE id = $1 AND lease_token = $2 AND state = 'running' AND step = $3
            RETURNING id)
         INSERT INTO acidic_journal (run_id, step, attempt, outcome, error, started_at, finished_at)
         SELECT id, $3, $11, $9, $12, ",
        now!(),
        " - $10, ",
        now!(),
        " FROM u"
    ),
    heartbeat: concat!(
        "UPDATE acidic_runs SET lease_expires_at = ",
        now!(),
        " + $2
         WHERE id IN (SELECT id FROM acidic_runs WHERE state = 'running' AND lease_owner = $1
                      FOR UPDATE SKIP LOCKED)"
    ),
    rescue: concat!(
        "WITH expired AS (
            SELECT id FROM acidic_runs WHERE state = 'running' AND lease_expires_at < $2
            ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED),
         r AS (
            UPDATE acidic_runs x SET
                state = CASE WHEN x.attempt >= x.max_attempts THEN 'failed' ELSE 'available' END,
                finished_at = CASE WHEN x.attempt >= x.max_attempts THEN ",
        now!(),
        " END,
                last_error = 'lease of worker ' || COALESCE(x.lease_owner, '?') || ' expired during step '
                    || x.step || ' (attempt ' || x.attempt || '): the worker died or stalled',
                lease_owner = NULL, lease_expires_at = NULL, scheduled_at = ",
        now!(),
        ", updated_at = ",
        now!(),
        "
            FROM expired e WHERE x.id = e.id
            RETURNING x.id, x.step, x.attempt, x.last_error)
         INSERT INTO acidic_journal (run_id, step, attempt, outcome, error, started_at, finished_at)
         SELECT id, step, attempt, 'rescued', last_error, ",
        now!(),
        ", ",
        now!(),
        " FROM r"
    ),
    rescue_rows_per_run: 1,
    release_owned: concat!(
        "UPDATE acidic_runs SET state = 'available', attempt = GREATEST(attempt - 1, 0),
            lease_owner = NULL, lease_expires_at = NULL, scheduled_at = ",
        now!(),
        ", updated_at = ",
        now!(),
        "
         WHERE state = 'running' AND lease_owner = $1"
    ),
    cancel: concat!(
        "UPDATE acidic_runs SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
            finished_at = ",
        now!(),
        ", updated_at = ",
        now!(),
        "
         WHERE id = $1 AND state IN ('available', 'running', 'awaiting')"
    ),
    retry: concat!(
        "UPDATE acidic_runs SET state = 'available', step = COALESCE($2, step), attempt = 0,
            iteration = CASE WHEN $2 IS NULL THEN iteration ELSE 0 END,
            scheduled_at = ",
        now!(),
        ", finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ",
        now!(),
        "
         WHERE id = $1 AND state IN ('failed', 'cancelled', 'available')"
    ),
    now: concat!("SELECT ", now!()),
};

/// The statement that begins a step's transaction and locks its run in one round trip (simple
/// query protocol, so the values are literals), or `None` when the step name would need more
/// than doubled quotes to be a literal (the caller then locks with [`Q::guard`]).
pub(super) fn begin_step(lease: Lease, step: &str) -> Option<String> {
    if step.contains('\\') || step.contains('\0') {
        return None;
    }
    Some(format!(
        "BEGIN; SELECT acidic_lock_step({}, {}, '{}')",
        lease.run_id.0,
        lease.token,
        step.replace('\'', "''")
    ))
}

/// SQLSTATE raised by `acidic_lock_step` when the lease no longer holds the run at the step.
pub(super) const LEASE_LOST: &str = "AC001";

/// Deletes up to `batch` runs finished before `cutoff`, with their journal and context.
/// Returns how many runs.
pub(super) async fn purge(conn: &mut PgConnection, cutoff: i64, batch: i64) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "WITH d AS (
            DELETE FROM acidic_runs WHERE id IN (
                SELECT id FROM acidic_runs
                WHERE finished_at IS NOT NULL AND finished_at < $1
                  AND state IN ('succeeded', 'failed', 'cancelled')
                ORDER BY finished_at LIMIT $2)
            RETURNING id),
         j AS (DELETE FROM acidic_journal WHERE run_id IN (SELECT id FROM d)),
         c AS (DELETE FROM acidic_context WHERE run_id IN (SELECT id FROM d))
         SELECT count(*) FROM d",
    )
    .bind(cutoff)
    .bind(batch)
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::db("purging finished runs"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Inserts many runs in one statement. Returns `(id, unique_key)` of the rows inserted.
pub(super) async fn insert_many(
    conn: &mut PgConnection,
    runs: &[NewRun],
) -> Result<Vec<(i64, Option<String>)>> {
    let mut kinds = Vec::with_capacity(runs.len());
    let mut args = Vec::with_capacity(runs.len());
    let mut keys = Vec::with_capacity(runs.len());
    let mut queues = Vec::with_capacity(runs.len());
    let mut prios = Vec::with_capacity(runs.len());
    let mut steps = Vec::with_capacity(runs.len());
    let mut maxes = Vec::with_capacity(runs.len());
    let mut ats = Vec::with_capacity(runs.len());
    let mut delays = Vec::with_capacity(runs.len());
    for r in runs {
        kinds.push(r.kind);
        args.push(r.args.as_str());
        keys.push(r.unique_key.as_deref());
        queues.push(r.queue.as_str());
        prios.push(r.priority);
        steps.push(r.step);
        maxes.push(r.max_attempts);
        ats.push(r.at_ms);
        delays.push(r.delay_ms);
    }
    sqlx::query_as(concat!(
        "INSERT INTO acidic_runs (kind, args, unique_key, queue, priority, state, step, max_attempts,
            scheduled_at, created_at, updated_at)
         SELECT k, a, u, q, p, 'available', s, m, COALESCE(t, ",
        now!(),
        " + d), ",
        now!(),
        ", ",
        now!(),
        "
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int2[], $6::text[],
                     $7::int4[], $8::int8[], $9::int8[]) WITH ORDINALITY AS x(k, a, u, q, p, s, m, t, d, n)
         ORDER BY n
         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
         RETURNING id, unique_key"
    ))
    .bind(&kinds)
    .bind(&args)
    .bind(&keys)
    .bind(&queues)
    .bind(&prios)
    .bind(&steps)
    .bind(&maxes)
    .bind(&ats)
    .bind(&delays)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::db("enqueuing runs in bulk"))
}

/// Applies many guarded transitions in one statement (each row still checks its own lease
/// token, state and step). Returns, per item, whether it applied.
pub(super) async fn transition_many(
    conn: &mut PgConnection,
    items: &[(Lease, &str, &Transition<'_>)],
) -> Result<Vec<bool>> {
    let n = items.len();
    let (mut ids, mut tokens, mut expected, mut states, mut steps) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut iterations, mut attempts, mut delays, mut outcomes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut durations, mut journal_attempts, mut errors) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (lease, step, t) in items {
        ids.push(lease.run_id.0);
        tokens.push(lease.token);
        expected.push(*step);
        states.push(t.state.as_str());
        steps.push(t.step);
        iterations.push(t.iteration);
        attempts.push(t.attempt);
        delays.push(t.delay_ms);
        outcomes.push(t.outcome);
        durations.push(t.duration_ms);
        journal_attempts.push(t.journal_attempt);
        errors.push(t.error.as_deref());
    }
    let applied: Vec<i64> = sqlx::query_scalar(concat!(
        "WITH i AS (
            SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[],
                                 $6::int4[], $7::int4[], $8::int8[], $9::text[],
                                 $10::int8[], $11::int4[], $12::text[])
              AS t(id, token, expected, state, step, iteration, attempt, delay, outcome,
                   dur, jattempt, error)),
         u AS (
            UPDATE acidic_runs r SET state = i.state, step = i.step, iteration = i.iteration,
                attempt = i.attempt,
                scheduled_at = CASE WHEN i.state = 'running' THEN r.scheduled_at ELSE ",
        now!(),
        " + i.delay END,
                lease_owner = CASE WHEN i.state = 'running' THEN r.lease_owner END,
                lease_expires_at = CASE WHEN i.state = 'running' THEN r.lease_expires_at END,
                last_error = COALESCE(i.error, r.last_error),
                finished_at = CASE WHEN i.state IN ('succeeded', 'failed') THEN ",
        now!(),
        " END,
                updated_at = ",
        now!(),
        "
            FROM i
            WHERE r.id = i.id AND r.lease_token = i.token AND r.state = 'running'
              AND r.step = i.expected
            RETURNING r.id, i.expected, i.jattempt, i.outcome, i.error, i.dur)
         INSERT INTO acidic_journal (run_id, step, attempt, outcome, error, started_at, finished_at)
         SELECT id, expected, jattempt, outcome, error, ",
        now!(),
        " - dur, ",
        now!(),
        " FROM u
         RETURNING run_id"
    ))
    .bind(&ids)
    .bind(&tokens)
    .bind(&expected)
    .bind(&states)
    .bind(&steps)
    .bind(&iterations)
    .bind(&attempts)
    .bind(&delays)
    .bind(&outcomes)
    .bind(&durations)
    .bind(&journal_attempts)
    .bind(&errors)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::db("advancing runs in a group"))?;
    let applied: std::collections::HashSet<i64> = applied.into_iter().collect();
    Ok(ids.iter().map(|id| applied.contains(id)).collect())
}

/// The ids of the runs holding these unique keys.
pub(super) async fn ids_by_unique_keys(
    conn: &mut PgConnection,
    keys: &[&str],
) -> Result<Vec<(i64, String)>> {
    sqlx::query_as("SELECT id, unique_key FROM acidic_runs WHERE unique_key = ANY($1)")
        .bind(keys)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("looking up existing unique runs"))
}

/// Serialises concurrent `migrate()` calls across processes.
pub(super) const MIGRATE_LOCK: &str = "SELECT pg_advisory_xact_lock(7346129512)";

pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs",
        include_str!("../../../migrations/postgres/0001_runs.sql"),
    ),
    (
        2,
        "lean_steps",
        include_str!("../../../migrations/postgres/0002_lean_steps.sql"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunId;

    #[test]
    fn step_begin_inlines_the_lease_and_quotes_the_step() {
        let lease = Lease {
            run_id: RunId(42),
            token: 7,
        };
        assert_eq!(
            begin_step(lease, "fulfill_order").as_deref(),
            Some("BEGIN; SELECT acidic_lock_step(42, 7, 'fulfill_order')")
        );
        assert_eq!(
            begin_step(lease, "it's").as_deref(),
            Some("BEGIN; SELECT acidic_lock_step(42, 7, 'it''s')")
        );
        // Names a plain literal cannot carry safely take the bound-parameter path.
        assert_eq!(begin_step(lease, "a\\b"), None);
        assert_eq!(begin_step(lease, "a\0b"), None);
    }
}
