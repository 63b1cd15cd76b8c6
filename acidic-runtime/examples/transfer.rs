//! The balance transfer from "idempotency keys with atomic phases", on an embedded SQLite file.
//!
//! Three steps, each in its own locked transaction with the advance of the recovery point:
//! debit Alice, credit Bob (the bank's API is down on the first attempt, so the step fails and
//! its writes roll back), record the transfer. The retry resumes at `credit`: the debit is not
//! redone. The same transfer enqueued twice is one run.
//!
//! Run: `cargo run -p acidic-runtime --example transfer`

use std::time::Duration;

use acidic_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[acidic_job(
    unique_by = "args",
    queue = "transfers",
    max_attempts = 5,
    backoff_base_ms = 200
)]
#[derive(Debug, Serialize, Deserialize)]
struct Transfer {
    from: String,
    to: String,
    cents: i64,
}

steps!(Transfer: debit; credit; record);

impl Transfer {
    async fn debit(&self, cx: &mut StepContext<'_>) -> StepResult {
        sqlx::query("UPDATE accounts SET cents = cents - ?1 WHERE name = ?2")
            .bind(self.cents)
            .bind(&self.from)
            .execute(cx.sqlite().await?)
            .await?;
        println!(
            "  [run {} step debit   attempt {}] debited {} by {} cents",
            cx.run_id(),
            cx.attempt(),
            self.from,
            self.cents
        );
        Ok(Flow::Next)
    }

    async fn credit(&self, cx: &mut StepContext<'_>) -> StepResult {
        // The foreign call happens before the step touches the database: no transaction is
        // held across it. The idempotency key is the same on every attempt.
        let key = cx.idempotency_key();
        sqlx::query("UPDATE accounts SET cents = cents + ?1 WHERE name = ?2")
            .bind(self.cents)
            .bind(&self.to)
            .execute(cx.sqlite().await?)
            .await?;
        if cx.attempt() == 1 {
            println!(
                "  [run {} step credit  attempt 1] credited {}, then the bank API timed out (key {key}): rolling back",
                cx.run_id(),
                self.to
            );
            return Err("bank API timed out".into());
        }
        println!(
            "  [run {} step credit  attempt {}] credited {} by {} cents (key {key})",
            cx.run_id(),
            cx.attempt(),
            self.to,
            self.cents
        );
        Ok(Flow::Next)
    }

    async fn record(&self, cx: &mut StepContext<'_>) -> StepResult {
        let run = cx.run_id().0;
        sqlx::query(
            "INSERT INTO transfers (run_id, from_name, to_name, cents) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(run)
        .bind(&self.from)
        .bind(&self.to)
        .bind(self.cents)
        .execute(cx.sqlite().await?)
        .await?;
        println!(
            "  [run {} step record  attempt {}] recorded the transfer",
            cx.run_id(),
            cx.attempt()
        );
        Ok(Flow::Next)
    }
}

async fn balances(pool: &sqlx::SqlitePool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, cents FROM accounts ORDER BY name")
        .fetch_all(pool)
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("acidic-example-transfer.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    println!("acidic example: a balance transfer on {url}");
    let rt = Runtime::connect(&url).await?;
    rt.migrate().await?;

    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::raw_sql(
        "CREATE TABLE accounts (name TEXT PRIMARY KEY, cents INTEGER NOT NULL);
         INSERT INTO accounts VALUES ('alice', 10000), ('bob', 500);
         CREATE TABLE transfers (run_id INTEGER, from_name TEXT, to_name TEXT, cents INTEGER);",
    )
    .execute(&pool)
    .await?;
    println!("balances before: {:?}", balances(&pool).await?);

    let transfer = Transfer {
        from: "alice".into(),
        to: "bob".into(),
        cents: 2500,
    };
    let first = rt.enqueue(&transfer).await?;
    let again = rt.enqueue(&transfer).await?;
    println!(
        "enqueued run {} (new); enqueued the same transfer again: run {} (duplicate: {})",
        first.run_id, again.run_id, again.duplicate
    );

    let worker = rt
        .worker()
        .register::<Transfer>()
        .queue("transfers", 4)
        .start();
    let info = rt.wait_for(first.run_id, Duration::from_secs(30)).await?;
    worker.shutdown(Duration::from_secs(5)).await?;

    println!("run {} is {} at step {:?}", info.id, info.state, info.step);
    println!("journal:");
    for entry in rt.journal(first.run_id).await? {
        println!(
            "  {:<7} attempt {} {:<9} {}",
            entry.step,
            entry.attempt,
            entry.outcome,
            entry.error.unwrap_or_default()
        );
    }
    let after = balances(&pool).await?;
    println!("balances after: {after:?}");
    let total: i64 = after.iter().map(|(_, c)| c).sum();
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transfers")
        .fetch_one(&pool)
        .await?;
    println!(
        "money conserved: {} (total {total}); transfers recorded: {recorded}",
        total == 10500
    );
    if total != 10500 || recorded != 1 || info.state != acidic_runtime::RunState::Succeeded {
        return Err("the transfer did not happen exactly once".into());
    }
    Ok(())
}
