//! Admins: rebuild projections and rotate the vault's master key through the API. Each is a
//! `maintenance` job (an aggregate of its own) whose events carry the admin as actor and the
//! reason. A rebuild runs in the background in this process (`trx-energy rebuild`'s code:
//! shadow tables, catch up, atomic swap) and is followed with `GET /v1/admin/jobs/{id}`; a key
//! rotation runs at once, in one database transaction, and its job is recorded when it is done.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use engine::domain::{Job, JobStatus, MaintenanceCommand};
use engine::store::metadata::derived_command_id;
use engine::store::{Actor, CommandMetadata};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{metadata, reason};
use crate::http::consistency::Written;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::{AppState, Caller, RequestId, Role};

pub const ROLES: &[Role] = &[Role::Admin];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRebuild {
    /// The projections to rebuild (`account_balances`, `orders`, `deposits`,
    /// `wallet_utilisation`, `daily_finance`), or `["all"]`.
    pub projections: Vec<String>,
    /// Why (kept on the event).
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeys {
    /// Why (kept on the event).
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    /// `rebuild` or `key_rotation`.
    pub kind: String,
    /// `running`, `finished` or `failed`.
    pub status: String,
    pub actor: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A rebuild's projections.
    pub projections: Option<Vec<String>>,
    /// Events a finished rebuild read.
    pub events: Option<u64>,
    /// Why a rebuild failed.
    pub error: Option<String>,
    /// A rotation: the fingerprint of the master key every stored key is now sealed under
    /// (a hash that names the key, never the key).
    pub master_key_fingerprint: Option<String>,
    /// A rotation: keys re-sealed, and keys that already were under the current master key.
    pub resealed: Option<u64>,
    pub unchanged: Option<u64>,
}

async fn job(state: &AppState, id: &str) -> Result<JobView, ApiError> {
    let not_found = || ApiError::not_found("job_not_found", "no maintenance job has that id");
    let id = Uuid::parse_str(id).map_err(|_| not_found())?.to_string();
    let (maintenance, _) = state.buses.maintenance.load(&id).await?;
    let record = maintenance.record().ok_or_else(not_found)?;
    let (status, finished_at, error) = match &record.status {
        JobStatus::Running => ("running", None, None),
        JobStatus::Finished { at } => ("finished", Some(*at), None),
        JobStatus::Failed { at, error } => ("failed", Some(*at), Some(error.clone())),
    };
    let mut view = JobView {
        id,
        kind: String::new(),
        status: status.into(),
        actor: record.actor.clone(),
        reason: record.reason.clone(),
        started_at: record.started_at,
        finished_at,
        projections: None,
        events: None,
        error,
        master_key_fingerprint: None,
        resealed: None,
        unchanged: None,
    };
    match &record.job {
        Job::Rebuild {
            projections,
            events,
        } => {
            view.kind = "rebuild".into();
            view.projections = Some(projections.clone());
            view.events = *events;
        }
        Job::KeyRotation {
            master_key_fingerprint,
            resealed,
            unchanged,
        } => {
            view.kind = "key_rotation".into();
            view.master_key_fingerprint = Some(master_key_fingerprint.clone());
            view.resealed = Some(*resealed);
            view.unchanged = Some(*unchanged);
        }
    }
    Ok(view)
}

/// The projections a request names (`["all"]`: every one), each known, none twice.
fn chosen(names: &[String]) -> Result<Vec<std::sync::Arc<dyn projections::Projection>>, ApiError> {
    let bad = |message: String| {
        ApiError::unprocessable("unknown_projection", message).field("projections")
    };
    if names.len() == 1 && names[0] == "all" {
        return Ok(projections::projection::all());
    }
    if names.is_empty() {
        return Err(bad("name at least one projection, or [\"all\"]".into()));
    }
    let mut chosen: Vec<std::sync::Arc<dyn projections::Projection>> = Vec::new();
    for name in names {
        let p = projections::projection::by_name(name).map_err(|e| bad(e.to_string()))?;
        if !chosen.iter().any(|c| c.name() == p.name()) {
            chosen.push(p);
        }
    }
    Ok(chosen)
}

/// `POST /v1/admin/rebuilds`: 202 with the job (status `running`); 409 `rebuild_running` while
/// another rebuild of one of them runs.
#[utoipa::path(
    post,
    path = "/v1/admin/rebuilds",
    tag = "admin",
    request_body = StartRebuild,
    responses((status = 202, description = "Started", body = JobView))
)]
pub async fn rebuild(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    JsonBody(body): JsonBody<StartRebuild>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    caller.require(ROLES)?;
    let chosen = chosen(&body.projections)?;
    let reason = reason(&body.reason)?;
    let names: Vec<&'static str> = chosen.iter().map(|p| p.name()).collect();
    let running = projections::rebuild::rebuild_running(&state.pool, &names)
        .await
        .map_err(ApiError::internal)?;
    if let Some(busy) = running {
        return Err(ApiError::conflict(
            "rebuild_running",
            format!("a rebuild of {busy} is running"),
        ));
    }
    let id = Uuid::new_v4().to_string();
    let meta = metadata(&caller, &rid).with_reason(reason.clone());
    let outcome = state
        .buses
        .maintenance
        .execute(
            &id,
            MaintenanceCommand::StartRebuild {
                projections: names.iter().map(|n| n.to_string()).collect(),
                actor: caller.subject.clone(),
                reason,
                at: Utc::now(),
            },
            meta.clone(),
        )
        .await?;
    written.accept(&state, &caller, outcome)?;
    tracing::info!(job = %id, projections = ?names, actor = %caller.subject, "rebuild started");
    tokio::spawn(run_rebuild(state.clone(), id.clone(), chosen, meta));
    Ok((StatusCode::ACCEPTED, Json(job(&state, &id).await?)))
}

/// The rebuild itself, then its end recorded on the job.
async fn run_rebuild(
    state: AppState,
    id: String,
    chosen: Vec<std::sync::Arc<dyn projections::Projection>>,
    meta: CommandMetadata,
) {
    let options = projections::rebuild::RebuildOptions::default();
    let result = projections::rebuild::rebuild(&state.pool, &chosen, &options, |_| {}).await;
    let command = match result {
        Ok(report) => {
            tracing::info!(job = %id, events = report.events, "rebuild finished and swapped in");
            MaintenanceCommand::FinishRebuild {
                events: report.events,
                at: Utc::now(),
            }
        }
        Err(e) => {
            tracing::warn!(job = %id, error = %e, "rebuild failed");
            MaintenanceCommand::FailRebuild {
                error: e.to_string(),
                at: Utc::now(),
            }
        }
    };
    // The system's doing, caused by the admin's start and in its flow; one id per job's end.
    let end = CommandMetadata::caused_by(
        derived_command_id("rebuild-end", &[&id]),
        meta.correlation_id,
        meta.command_id,
        Actor::system("rebuild"),
    );
    let end = match meta.request_id {
        Some(rid) => end.with_request_id(rid),
        None => end,
    };
    match state.buses.maintenance.execute(&id, command, end).await {
        Ok(outcome) if outcome.is_accepted() => {}
        Ok(outcome) => {
            tracing::warn!(job = %id, outcome = ?outcome.result.err(), "the rebuild's end was refused")
        }
        Err(e) => tracing::warn!(job = %id, error = %e, "cannot record how the rebuild ended"),
    }
}

/// `GET /v1/admin/jobs/{id}`: a maintenance job (a rebuild or a key rotation).
#[utoipa::path(
    get,
    path = "/v1/admin/jobs/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = JobView))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    caller.require(ROLES)?;
    Ok(Json(job(&state, &id).await?))
}

/// `POST /v1/admin/keys/rotate`: re-seals every stored key (pool wallets, the deposit seed)
/// under the master key this process was started with (`TRX_MASTER_KEY`), reading older ones
/// with `TRX_PREVIOUS_MASTER_KEY`, in one transaction; 200 with the job. 409
/// `previous_master_key_missing` when a stored key is under a master key this process lacks.
#[utoipa::path(
    post,
    path = "/v1/admin/keys/rotate",
    tag = "admin",
    request_body = RotateKeys,
    responses((status = 200, description = "Rotated", body = JobView))
)]
pub async fn rotate_keys(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    JsonBody(body): JsonBody<RotateKeys>,
) -> Result<Json<JobView>, ApiError> {
    caller.require(ROLES)?;
    let reason = reason(&body.reason)?;
    let report = state.vault.rotate().await.map_err(|e| match e {
        tron_adapter::Error::Vault(tron_adapter::vault::VaultError::UnknownMasterKey { .. }) => {
            ApiError::conflict(
                "previous_master_key_missing",
                "a stored key is sealed under a master key this process does not hold: start it with that key as TRX_PREVIOUS_MASTER_KEY",
            )
        }
        other => ApiError::internal(other),
    })?;
    let id = Uuid::new_v4().to_string();
    let fingerprint = state.vault.keyring().current_fingerprint().to_string();
    let outcome = state
        .buses
        .maintenance
        .execute(
            &id,
            MaintenanceCommand::RecordKeyRotation {
                master_key_fingerprint: fingerprint.clone(),
                resealed: report.resealed as u64,
                unchanged: report.unchanged as u64,
                actor: caller.subject.clone(),
                reason: reason.clone(),
                at: Utc::now(),
            },
            metadata(&caller, &rid).with_reason(reason),
        )
        .await?;
    written.accept(&state, &caller, outcome)?;
    tracing::info!(
        job = %id,
        master_key = %fingerprint,
        resealed = report.resealed,
        unchanged = report.unchanged,
        actor = %caller.subject,
        "vault keys rotated"
    );
    Ok(Json(job(&state, &id).await?))
}
