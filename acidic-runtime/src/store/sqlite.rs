//! The SQLite dialect: one writer at a time (`BEGIN IMMEDIATE`), WAL, a busy timeout.
//!
//! SQLite has no data-modifying CTEs, so statements that PostgreSQL does in one CTE are two
//! statements sent together; the second runs only when the first changed a row (`changes()`).

use sqlx::SqliteConnection;

use super::{Lease, NewRun, Q, Transition};
use crate::error::{Error, Result};

/// Milliseconds since the epoch.
macro_rules! now {
    () => {
        "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}

/// The error kept on a run whose lease expired.
macro_rules! rescue_error {
    () => {
        "'lease of worker ' || COALESCE(lease_owner, '?') || ' expired during step ' || step || ' (attempt ' || attempt || '): the worker died or stalled'"
    };
}

pub(super) const SQL: Q = Q {
    begin_write: "BEGIN IMMEDIATE",
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
        "UPDATE acidic_runs SET state = 'running', attempt = attempt + 1, lease_owner = $3,
            lease_token = lease_token + 1, lease_expires_at = ",
        now!(),
        " + $4, updated_at = ",
        now!(),
        "
         WHERE id IN (SELECT id FROM acidic_runs
                      WHERE state = 'available' AND queue = $1 AND scheduled_at <= ",
        now!(),
        "
                      ORDER BY priority DESC, scheduled_at, id LIMIT $2)
         RETURNING id, kind, args, step, attempt, max_attempts, lease_token, iteration"
    ),
    guard: "SELECT 1 FROM acidic_runs
        WHERE id = $1 AND lease_token = $2 AND state = 'running' AND step = $3",
    transition: concat!(
        "UPDATE acidic_runs SET state = $4, step = $5, iteration = $6, attempt = $7,
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
         WHERE id = $1 AND lease_token = $2 AND state = 'running' AND step = $3;
         INSERT INTO acidic_journal (run_id, step, attempt, outcome, error, started_at, finished_at)
         SELECT $1, $3, $11, $9, $12, ",
        now!(),
        " - $10, ",
        now!(),
        " WHERE changes() = 1"
    ),
    heartbeat: concat!(
        "UPDATE acidic_runs SET lease_expires_at = ",
        now!(),
        " + $2 WHERE state = 'running' AND lease_owner = $1"
    ),
    rescue: concat!(
        "INSERT INTO acidic_journal (run_id, step, attempt, outcome, error, started_at, finished_at)
         SELECT id, step, attempt, 'rescued', ",
        rescue_error!(),
        ", ",
        now!(),
        ", ",
        now!(),
        "
         FROM acidic_runs WHERE state = 'running' AND lease_expires_at < $2
         ORDER BY lease_expires_at LIMIT $1;
         UPDATE acidic_runs SET
            state = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'available' END,
            finished_at = CASE WHEN attempt >= max_attempts THEN ",
        now!(),
        " END,
            last_error = ",
        rescue_error!(),
        ",
            lease_owner = NULL, lease_expires_at = NULL, scheduled_at = ",
        now!(),
        ", updated_at = ",
        now!(),
        "
         WHERE id IN (SELECT id FROM acidic_runs WHERE state = 'running' AND lease_expires_at < $2
                      ORDER BY lease_expires_at LIMIT $1)"
    ),
    rescue_rows_per_run: 2,
    release_owned: concat!(
        "UPDATE acidic_runs SET state = 'available', attempt = MAX(attempt - 1, 0),
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

/// Deletes up to `batch` runs finished before `cutoff`, with their journal and context, inside
/// the caller's write transaction (so the three statements see the same runs). Returns how many
/// runs.
pub(super) async fn purge(conn: &mut SqliteConnection, cutoff: i64, batch: i64) -> Result<u64> {
    const PURGED: &str = "SELECT id FROM acidic_runs
        WHERE finished_at IS NOT NULL AND finished_at < $1
          AND state IN ('succeeded', 'failed', 'cancelled')
        ORDER BY finished_at, id LIMIT $2";
    let mut runs = 0;
    for (table, column) in [
        ("acidic_journal", "run_id"),
        ("acidic_context", "run_id"),
        ("acidic_runs", "id"),
    ] {
        let sql = format!("DELETE FROM {table} WHERE {column} IN ({PURGED})");
        runs = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cutoff)
            .bind(batch)
            .execute(&mut *conn)
            .await
            .map_err(Error::db("purging finished runs"))?
            .rows_affected();
    }
    Ok(runs)
}

/// Inserts many runs in one statement (the rows travel as one JSON array). Returns
/// `(id, unique_key)` of the rows inserted.
pub(super) async fn insert_many(
    conn: &mut SqliteConnection,
    runs: &[NewRun],
) -> Result<Vec<(i64, Option<String>)>> {
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "k": r.kind, "a": r.args, "u": r.unique_key, "q": r.queue, "p": r.priority,
                "s": r.step, "m": r.max_attempts, "t": r.at_ms, "d": r.delay_ms,
            })
        })
        .collect();
    let payload = serde_json::Value::Array(rows).to_string();
    sqlx::query_as(concat!(
        "INSERT INTO acidic_runs (kind, args, unique_key, queue, priority, state, step, max_attempts,
            scheduled_at, created_at, updated_at)
         SELECT json_extract(value, '$.k'), json_extract(value, '$.a'), json_extract(value, '$.u'),
                json_extract(value, '$.q'), json_extract(value, '$.p'), 'available',
                json_extract(value, '$.s'), json_extract(value, '$.m'),
                COALESCE(json_extract(value, '$.t'), ",
        now!(),
        " + json_extract(value, '$.d')), ",
        now!(),
        ", ",
        now!(),
        "
         FROM json_each($1) WHERE true ORDER BY key
         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
         RETURNING id, unique_key"
    ))
    .bind(payload)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::db("enqueuing runs in bulk"))
}

/// Applies many guarded transitions, one statement each (SQLite statements run in-process, so
/// only the shared commit matters). Returns, per item, whether it applied.
pub(super) async fn transition_many(
    conn: &mut SqliteConnection,
    items: &[(Lease, &str, &Transition<'_>)],
) -> Result<Vec<bool>> {
    let mut applied = Vec::with_capacity(items.len());
    for (lease, step, t) in items {
        match super::transition(super::Db::Sqlite(&mut *conn), *lease, step, t).await {
            Ok(()) => applied.push(true),
            Err(Error::LeaseLost { .. }) => applied.push(false),
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}

/// The ids of the runs holding these unique keys.
pub(super) async fn ids_by_unique_keys(
    conn: &mut SqliteConnection,
    keys: &[&str],
) -> Result<Vec<(i64, String)>> {
    let payload = serde_json::to_string(keys).map_err(|source| Error::Json {
        op: "serialise",
        what: "unique keys".into(),
        source,
    })?;
    sqlx::query_as(
        "SELECT id, unique_key FROM acidic_runs
         WHERE unique_key IN (SELECT value FROM json_each($1))",
    )
    .bind(payload)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::db("looking up existing unique runs"))
}

/// SQLite has one writer: `BEGIN IMMEDIATE` already serialises migrations.
pub(super) const MIGRATE_LOCK: &str = "SELECT 1";

pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs",
        include_str!("../../../migrations/sqlite/0001_runs.sql"),
    ),
    (
        2,
        "lean_steps",
        include_str!("../../../migrations/sqlite/0002_lean_steps.sql"),
    ),
];
