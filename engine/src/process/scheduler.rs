//! The scheduler of time-based steps: an unpaid order's timeout, an active order's reclaim.
//! Process managers add and remove rows of `scheduled_steps` in their checkpoint's transaction;
//! the scheduler (one owner across processes) sends each step's command when it falls due and
//! deletes the row once the command is decided, so a crash in between sends the same command
//! (same derived id) again, which changes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use crate::domain::order::{CancelledBy, OrderCommand};
use crate::error::Error;
use crate::process::runner::{run_owned, ChainTaskChange, Effects};
use crate::process::Buses;
use crate::store::{derived_command_id, Actor, CommandMetadata};

pub const UNPAID_TIMEOUT: &str = "unpaid-timeout";
pub const RECLAIM: &str = "reclaim";

/// One step to run at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledStep {
    pub step: String,
    pub aggregate_id: String,
    pub due_at: DateTime<Utc>,
    pub correlation_id: uuid::Uuid,
}

/// Writes a batch's scheduling and chain-task changes (inside the batch's checkpoint transaction).
pub async fn apply(conn: &mut PgConnection, effects: &Effects) -> Result<(), Error> {
    for s in &effects.schedule {
        sqlx::query(
            "INSERT INTO scheduled_steps (step, aggregate_id, due_at, correlation_id) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (step, aggregate_id) DO UPDATE SET due_at = EXCLUDED.due_at",
        )
        .bind(&s.step)
        .bind(&s.aggregate_id)
        .bind(s.due_at)
        .bind(s.correlation_id)
        .execute(&mut *conn)
        .await?;
    }
    for change in &effects.chain_tasks {
        match change {
            ChainTaskChange::Open {
                order_id,
                wallet,
                phase,
            } => open_chain_task(&mut *conn, order_id, wallet, phase).await?,
            ChainTaskChange::Close { order_id } => {
                sqlx::query("DELETE FROM chain_tasks WHERE order_id = $1")
                    .bind(order_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    for (step, id) in &effects.unschedule {
        sqlx::query("DELETE FROM scheduled_steps WHERE step = $1 AND aggregate_id = $2")
            .bind(step)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Sends every step that is due now; returns how many were decided.
pub async fn run_due(buses: &Buses, now: DateTime<Utc>, limit: i64) -> Result<usize, Error> {
    let due: Vec<(String, String, DateTime<Utc>, uuid::Uuid)> = sqlx::query_as(
        "SELECT step, aggregate_id, due_at, correlation_id FROM scheduled_steps \
         WHERE due_at <= $1 ORDER BY due_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(buses.pool())
    .await?;
    let mut done = 0;
    for (step, id, due_at, correlation) in due {
        let command = match step.as_str() {
            UNPAID_TIMEOUT => OrderCommand::CancelOrder {
                by: CancelledBy::UnpaidTimeout,
                at: now,
            },
            RECLAIM => OrderCommand::RequestReclaim { at: now },
            other => {
                tracing::error!(step = other, aggregate_id = %id, "unknown scheduled step; left in place");
                continue;
            }
        };
        let command_id = derived_command_id(
            "scheduler",
            &[&step, &id, &due_at.timestamp_micros().to_string()],
        );
        let meta = CommandMetadata::caused_by(
            command_id,
            correlation,
            command_id,
            Actor::system("scheduler"),
        );
        let outcome = buses.order.execute(&id, command, meta).await?;
        if let Err(e) = &outcome.result {
            // Not an error: the order moved on (paid before its timeout, already reclaiming).
            tracing::debug!(step = %step, order_id = %id, refusal = %e, "scheduled step no longer applies");
        }
        sqlx::query(
            "DELETE FROM scheduled_steps WHERE step = $1 AND aggregate_id = $2 AND due_at = $3",
        )
        .bind(&step)
        .bind(&id)
        .bind(due_at)
        .execute(buses.pool())
        .await?;
        done += 1;
    }
    Ok(done)
}

/// Runs the scheduler until shutdown (one owner across processes; a standby takes over when the
/// owner's connection goes away).
pub async fn run_scheduler(
    buses: Arc<Buses>,
    tick: Duration,
    shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let pool: PgPool = buses.pool().clone();
    run_owned(
        &pool,
        "process:scheduler",
        Duration::from_secs(1),
        shutdown,
        || async {
            if let Err(e) = run_due(&buses, Utc::now(), 200).await {
                tracing::warn!(error = %e, "scheduler pass failed; retrying");
            }
            tick
        },
    )
    .await
}

/// Opens (or moves) the chain task of `order_id`: its `phase` is now due on `wallet`. Besides
/// the batch effects above, the wallet allocator calls it right after a delegation request is
/// accepted, so the wallet's worker starts without waiting for the order flow to read the event
/// (the order flow opens the same row again later; the upsert makes that harmless).
pub async fn open_chain_task<'c, E>(
    conn: E,
    order_id: &str,
    wallet: &str,
    phase: &str,
) -> Result<(), Error>
where
    E: sqlx::PgExecutor<'c>,
{
    sqlx::query(
        "INSERT INTO chain_tasks (order_id, wallet, phase) VALUES ($1, $2, $3) \
         ON CONFLICT (order_id) DO UPDATE \
           SET wallet = EXCLUDED.wallet, phase = EXCLUDED.phase, opened_at = now()",
    )
    .bind(order_id)
    .bind(wallet)
    .bind(phase)
    .execute(conn)
    .await?;
    Ok(())
}
