//! `audit_verifications`: the verifications auditors start through the API, run in the
//! background by an API process, one row each, so every API instance answers the same.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::VerifyReport;

/// One verification, running or done.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Verification {
    pub id: i64,
    pub requested_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `ok` (the chain verified), `failed` (tampering found: see `problems`) or
    /// `error` (it could not run to the end: see `error`).
    pub status: String,
    pub events: Option<i64>,
    pub problems: Value,
    pub error: Option<String>,
}

const SELECT: &str = "SELECT id, requested_by, started_at, finished_at, \
        CASE WHEN ok THEN 'ok' WHEN NOT ok THEN 'failed' \
             WHEN error IS NOT NULL THEN 'error' ELSE 'running' END AS status, \
        events, problems, error FROM audit_verifications";

/// The id of a verification started in the last hour and not finished, if any.
pub async fn running(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM audit_verifications \
         WHERE finished_at IS NULL AND started_at > now() - interval '1 hour' LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

/// Records a new verification requested by `subject`; its id.
pub async fn start(pool: &PgPool, subject: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO audit_verifications (requested_by) VALUES ($1) RETURNING id")
        .bind(subject)
        .fetch_one(pool)
        .await
}

/// Records how verification `id` ended: its report, or why it could not run to the end.
pub async fn finish(
    pool: &PgPool,
    id: i64,
    outcome: &Result<VerifyReport, String>,
) -> Result<(), sqlx::Error> {
    match outcome {
        Ok(report) => {
            let problems: Vec<Value> = report
                .problems
                .iter()
                .map(|p| {
                    serde_json::json!({"kind": p.kind.to_string(), "audit_seq": p.audit_seq,
                           "global_position": p.global_position, "event": p.event,
                           "detail": p.detail})
                })
                .collect();
            sqlx::query(
                "UPDATE audit_verifications SET finished_at = now(), ok = $2, events = $3, \
                        problems = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(report.is_ok())
            .bind(report.events as i64)
            .bind(Value::Array(problems))
            .execute(pool)
            .await?;
        }
        Err(error) => {
            sqlx::query(
                "UPDATE audit_verifications SET finished_at = now(), error = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// Verification `id`.
pub async fn get(pool: &PgPool, id: i64) -> Result<Verification, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_one(pool)
        .await
}

/// The most recent verification, if any.
pub async fn latest(pool: &PgPool) -> Result<Option<Verification>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} ORDER BY id DESC LIMIT 1"))
        .fetch_optional(pool)
        .await
}
