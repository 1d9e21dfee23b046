//! Auditors: start a verification of the audit chain (`audit verify`, run by the API process in
//! the background) and read the result of the last one. Results are rows of
//! `audit_verifications`, so every API instance answers the same.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use projections::audit::verifications::{self, Verification};

use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Auditor, Role::Admin];

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
    let running = verifications::running(&state.pool).await?;
    if let Some(id) = running {
        return Err(ApiError::conflict(
            "verification_running",
            format!("verification {id} is still running"),
        ));
    }
    let id = verifications::start(&state.pool, &caller.subject).await?;
    tracing::info!(verification = id, actor = %caller.subject, "audit verification started");
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let outcome = projections::audit::verify(&pool)
            .await
            .map_err(|e| e.to_string());
        match &outcome {
            Ok(report) => tracing::info!(
                verification = id,
                events = report.events,
                ok = report.is_ok(),
                "audit verification finished"
            ),
            Err(e) => {
                tracing::warn!(verification = id, error = %e, "audit verification could not finish")
            }
        }
        if let Err(e) = verifications::finish(&pool, id, &outcome).await {
            tracing::warn!(verification = id, error = %e, "cannot record the verification's result");
        }
    });
    let row = verifications::get(&state.pool, id).await?;
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
    verifications::latest(&state.pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no_verification", "no verification has been run yet"))
}
