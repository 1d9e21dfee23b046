//! Auditors: start a verification of the audit chain (`audit verify`, run by the API process in
//! the background) and read the result of the last one. Results are rows of
//! `audit_verifications`, so every API instance answers the same.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Auditor, Role::Admin];

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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

/// `POST /v1/audit/verifications`: 202 with the new verification (status `running`); 409
/// `verification_running` while another one runs.
#[utoipa::path(
    post,
    path = "/v1/audit/verifications",
    tag = "audit",
    responses((status = 202, description = "Started", body = Verification))
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<Verification>), ApiError> {
    caller.require(ROLES)?;
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM audit_verifications \
         WHERE finished_at IS NULL AND started_at > now() - interval '1 hour' LIMIT 1",
    )
    .fetch_optional(&state.pool)
    .await?;
    if let Some(id) = running {
        return Err(ApiError::conflict(
            "verification_running",
            format!("verification {id} is still running"),
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_verifications (requested_by) VALUES ($1) RETURNING id",
    )
    .bind(&caller.subject)
    .fetch_one(&state.pool)
    .await?;
    tracing::info!(verification = id, actor = %caller.subject, "audit verification started");
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let outcome = projections::audit::verify(&pool).await;
        let write = match outcome {
            Ok(report) => {
                let problems: Vec<Value> = report
                    .problems
                    .iter()
                    .map(|p| {
                        json!({"kind": p.kind.to_string(), "audit_seq": p.audit_seq,
                               "global_position": p.global_position, "event": p.event,
                               "detail": p.detail})
                    })
                    .collect();
                tracing::info!(
                    verification = id,
                    events = report.events,
                    ok = report.is_ok(),
                    "audit verification finished"
                );
                sqlx::query(
                    "UPDATE audit_verifications SET finished_at = now(), ok = $2, events = $3, \
                            problems = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(report.is_ok())
                .bind(report.events as i64)
                .bind(Value::Array(problems))
                .execute(&pool)
                .await
            }
            Err(e) => {
                tracing::warn!(verification = id, error = %e, "audit verification could not finish");
                sqlx::query(
                    "UPDATE audit_verifications SET finished_at = now(), error = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(e.to_string())
                .execute(&pool)
                .await
            }
        };
        if let Err(e) = write {
            tracing::warn!(verification = id, error = %e, "cannot record the verification's result");
        }
    });
    let row: Verification = sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_one(&state.pool)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(row)))
}

/// `GET /v1/audit/verifications/latest`: the most recent verification (running or done); 404
/// `no_verification` before the first.
#[utoipa::path(
    get,
    path = "/v1/audit/verifications/latest",
    tag = "audit",
    responses((status = 200, description = "The last verification", body = Verification))
)]
pub async fn latest(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Verification>, ApiError> {
    caller.require(ROLES)?;
    let row: Option<Verification> = sqlx::query_as(&format!("{SELECT} ORDER BY id DESC LIMIT 1"))
        .fetch_optional(&state.pool)
        .await?;
    row.map(Json)
        .ok_or_else(|| ApiError::not_found("no_verification", "no verification has been run yet"))
}
