//! Probes: `/health/live` (the process answers) and `/health/ready` (the database, Redis when
//! rate limits are on, and the TRON node when the API has one, each within 2 s). Readiness fails
//! (503) on the database or the node; Redis down is reported but does not fail it, because the
//! API lets requests through without Redis (docs/api.md).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use tron_adapter::node::Finality;

use crate::http::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

fn word(ok: bool) -> Value {
    Value::from(if ok { "ok" } else { "unavailable" })
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut checks = Map::new();
    let database = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool)).await,
        Ok(Ok(_))
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
