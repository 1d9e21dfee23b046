//! Probes: `/health/live` (the process answers) and `/health/ready` (the database, Redis when
//! rate limits are on, the TRON node when the API has one, each within 2 s, and the projectors'
//! lag). Readiness fails (503) on the database, the node, or a projection (or the audit
//! sequencer) whose oldest unapplied event is older than `AppState::ready_max_lag`, since the
//! finance and audit routes would serve stale figures; Redis down is reported but does not fail
//! it, because the API lets requests through without Redis (docs/api.md).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tron_adapter::node::Finality;

use crate::http::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses((status = 200, description = "The process answers", body = Object)),
    security(())
)]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

fn word(ok: bool) -> Value {
    Value::from(if ok { "ok" } else { "unavailable" })
}

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready", body = Object)),
    security(())
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut checks = Map::new();
    let database = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, crate::store::ping(&state.pool)).await,
        Ok(Ok(()))
    );
    checks.insert("database".into(), word(database));
    let mut ready = database;
    if let Some(limiter) = &state.limiter {
        let redis = tokio::time::timeout(PROBE_TIMEOUT, limiter.ping())
            .await
            .unwrap_or(false);
        checks.insert("redis".into(), word(redis));
    }
    if let Some(node) = &state.node {
        let node_ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, node.now_block(Finality::Head)).await,
            Ok(Ok(_))
        );
        checks.insert("node".into(), word(node_ok));
        ready &= node_ok;
    }
    let readers = projections::progress::projector_readers();
    let lag = projections::progress::oldest_unapplied_age_secs(&state.pool, &readers);
    match tokio::time::timeout(PROBE_TIMEOUT, lag).await {
        Ok(Ok(lag)) => {
            let behind = lag > state.ready_max_lag.as_secs_f64();
            checks.insert(
                "projections".into(),
                json!({"status": word(!behind), "lag_seconds": (lag * 1000.0).round() / 1000.0}),
            );
            ready &= !behind;
        }
        _ => {
            checks.insert("projections".into(), json!({"status": word(false)}));
            ready = false;
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ready { "ok" } else { "unavailable" }, "checks": checks})),
    )
}
