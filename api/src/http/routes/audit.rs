//! Auditors: pages of the global log in its audit order (the hash-chained `audit_log`, so a
//! page never skips an event that commits later) with every field the chain covers, the chain's
//! signed heads, and one aggregate's history.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use projections::audit::heads;
use projections::audit::offline::ExportLine;
use projections::audit::pages::{self, WrittenEvent};
use projections::audit::query::{self, AsOf, StateReport};
use projections::audit::SignedHead;
use serde::Serialize;

use crate::http::consistency::{fresh, wait_for};
use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Auditor, Role::Admin];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogPage {
    /// Each exactly an export's line, so the pages verify like an export (docs/audit.md).
    pub entries: Vec<ExportLine>,
    /// Pass as `after` for the next page; `null` when this page is the last so far.
    pub next_after: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeadsPage {
    /// Stored heads, by their last audit number.
    pub heads: Vec<SignedHead>,
    /// Pass as `after` for the next page; `null` when this page is the last so far.
    pub next_after: Option<i64>,
}

pub(crate) fn limit(query: &HashMap<String, String>, max: i64) -> Result<i64, ApiError> {
    match query.get("limit") {
        None => Ok(max.min(100)),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request("invalid_limit", format!("limit is 1 to {max}"))
                    .field("limit")
            }),
    }
}

/// The `after` cursor: an audit number, 0 (the default) for the start.
fn after(query: &HashMap<String, String>) -> Result<i64, ApiError> {
    match query.get("after") {
        None => Ok(0),
        Some(t) => t.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "after is an audit sequence number")
                .field("after")
        }),
    }
}

/// `GET /v1/audit/log?after=SEQ&limit=N`: the chain's entries, each with every field its hash
/// covers, so that pages verify like an export (`trx-energy audit verify-api`).
#[utoipa::path(
    get,
    path = "/v1/audit/log",
    tag = "audit",
    params(("after" = Option<i64>, Query, description = "Audit number to start after"), ("limit" = Option<i64>, Query, description = "Page size (1 to 1000, default 100)")),
    responses((status = 200, description = "A page of the log", body = LogPage))
)]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(ROLES)?;
    let caught_up = wait_for(
        &state,
        &caller,
        &headers,
        &[projections::audit::SEQUENCER_READER.to_string()],
    )
    .await?;
    let limit = limit(&query, 1_000)?;
    let after = after(&query)?;
    let entries = pages::log_page(&state.pool, after, limit)
        .await
        .map_err(ApiError::internal)?;
    let next_after = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.audit_seq))
        .flatten();
    Ok(fresh(
        LogPage {
            entries,
            next_after,
        },
        caught_up,
    ))
}

/// `GET /v1/audit/head`: a head of the whole chain as it is now, signed by the audit key (the
/// newest stored head when the chain has not grown since). 503 `audit_key_unavailable` where
/// this process holds no audit key; 409 `chain_disagrees_with_head` when the chain no longer
/// has the hash an earlier head signed (nothing is signed over a rewrite).
#[utoipa::path(
    get,
    path = "/v1/audit/head",
    tag = "audit",
    responses(
        (status = 200, description = "The signed head of the chain", body = SignedHead),
        (status = 503, description = "This process holds no audit key", body = crate::http::openapi::ErrorBody)
    )
)]
pub async fn head(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(ROLES)?;
    let caught_up = wait_for(
        &state,
        &caller,
        &headers,
        &[projections::audit::SEQUENCER_READER.to_string()],
    )
    .await?;
    let Some(signer) = state.audit_signer.clone() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "audit_key_unavailable",
            "this API process holds no audit key to sign heads with",
        ));
    };
    let mut conn = state.pool.acquire().await?;
    let signed = heads::sign_current(&mut conn, &signer)
        .await
        .map_err(|e| match e {
            projections::Error::HeadDisagrees(why) => {
                ApiError::conflict("chain_disagrees_with_head", why)
            }
            e => ApiError::internal(e),
        })?;
    Ok(fresh(signed, caught_up))
}

/// `GET /v1/audit/heads?after=TO&limit=N`: the stored signed heads, by their last audit number
/// (the sequencer signs one every so many events or minutes): an auditor holds the chain to
/// each.
#[utoipa::path(
    get,
    path = "/v1/audit/heads",
    tag = "audit",
    params(("after" = Option<i64>, Query, description = "Last audit number to start after"), ("limit" = Option<i64>, Query, description = "Page size (1 to 1000, default 100)")),
    responses((status = 200, description = "A page of stored heads", body = HeadsPage))
)]
pub async fn heads_page(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<HeadsPage>, ApiError> {
    caller.require(ROLES)?;
    let limit = limit(&query, 1_000)?;
    let after = after(&query)?;
    let mut conn = state.pool.acquire().await?;
    let heads = heads::heads_page(&mut conn, after, limit)
        .await
        .map_err(ApiError::internal)?;
    let next_after = (heads.len() as i64 == limit)
        .then(|| heads.last().map(|h| h.head.to))
        .flatten();
    Ok(Json(HeadsPage { heads, next_after }))
}

/// The stored name of aggregate type `name`; 404 `unknown_aggregate_type` for another.
fn known_type(name: &str) -> Result<&'static str, ApiError> {
    query::aggregate_type(name).map_err(|_| {
        ApiError::not_found(
            "unknown_aggregate_type",
            "the aggregate types are account, order, deposit and wallet",
        )
        .field("type")
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub events: Vec<WrittenEvent>,
}

/// `GET /v1/audit/aggregates/{type}/{id}`: every event of one aggregate, in order, as written
/// (straight from the event store, so it includes events not yet sequenced into the chain).
#[utoipa::path(
    get,
    path = "/v1/audit/aggregates/{type}/{id}",
    tag = "audit",
    params(("type" = String, Path, description = "account, order, deposit or wallet"), ("id" = String, Path, description = "Aggregate id")),
    responses((status = 200, description = "Every event of the aggregate", body = History))
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
) -> Result<Json<History>, ApiError> {
    caller.require(ROLES)?;
    let aggregate_type = known_type(&aggregate_type)?;
    let events = pages::events_of(&state.pool, aggregate_type, &aggregate_id).await?;
    if events.is_empty() {
        return Err(ApiError::not_found(
            "aggregate_not_found",
            "no events for that aggregate",
        ));
    }
    Ok(Json(History {
        aggregate_type: aggregate_type.to_string(),
        aggregate_id,
        events,
    }))
}

/// `GET /v1/audit/aggregates/{type}/{id}/state?position=N` or `?at=RFC3339`: the aggregate's
/// state replayed from its events up to that global position or recording time (through the
/// same upcasters as the live aggregates). Without either: its state now.
#[utoipa::path(
    get,
    path = "/v1/audit/aggregates/{type}/{id}/state",
    tag = "audit",
    params(("type" = String, Path, description = "account, order, deposit or wallet"), ("id" = String, Path, description = "Aggregate id"), ("position" = Option<i64>, Query, description = "Global log position"), ("at" = Option<String>, Query, description = "RFC 3339 time")),
    responses((status = 200, description = "The state then", body = Object))
)]
pub async fn state_at(
    State(state): State<AppState>,
    caller: Caller,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<StateReport>, ApiError> {
    caller.require(ROLES)?;
    let as_of = match (query.get("position"), query.get("at")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "conflicting_parameters",
                "give position or at, not both",
            )
            .field("at"))
        }
        (Some(p), None) => {
            AsOf::Position(p.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| {
                ApiError::bad_request("invalid_position", "position is a global log position")
                    .field("position")
            })?)
        }
        (None, Some(t)) => AsOf::Time(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    ApiError::bad_request("invalid_time", "at is an RFC 3339 time").field("at")
                })?
                .with_timezone(&Utc),
        ),
        (None, None) => AsOf::Position(i64::MAX),
    };
    let aggregate_type = known_type(&aggregate_type)?;
    let mut conn = state.pool.acquire().await?;
    let report = query::state_at(&mut conn, aggregate_type, &aggregate_id, as_of)
        .await
        .map_err(ApiError::internal)?;
    if report.version == 0 {
        return Err(ApiError::not_found(
            "aggregate_not_found",
            "no events for that aggregate at that point",
        ));
    }
    Ok(Json(report))
}
