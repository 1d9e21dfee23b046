//! What the API reads of the audit log page by page: the numbered log with every field each
//! entry's hash covers, an aggregate's events as written, and the live feed's numbered events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::offline::ExportLine;
use super::query::{export_line, ExportRow, EXPORT_SELECT};
use crate::error::Error;

/// Up to `limit` numbered events after audit number `after`, in audit order, each exactly an
/// export's line (every field its hash covers, `prev_hash` and `hash`), so that pages verify
/// like an export ([`super::offline`]).
pub async fn log_page(pool: &PgPool, after: i64, limit: i64) -> Result<Vec<ExportLine>, Error> {
    let rows: Vec<ExportRow> = sqlx::query_as(&format!(
        "{EXPORT_SELECT} WHERE a.audit_seq > $1 ORDER BY a.audit_seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(export_line).collect()
}

/// One event of an aggregate, as written.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = HistoryEntry)]
pub struct WrittenEvent {
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
    pub payload: Value,
    pub metadata: Value,
}

/// Every event of one aggregate, in order, straight from the event store (so it includes
/// events not numbered yet). `aggregate_type` is the stored name
/// ([`super::query::aggregate_type`]).
pub async fn events_of(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<WrittenEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sequence, global_position, event_type, payload::jsonb AS payload, \
                metadata::jsonb AS metadata \
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await
}

/// One numbered event as the live feed shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FeedEvent {
    pub audit_seq: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub payload: Value,
    pub recorded_at: DateTime<Utc>,
    /// The account the event concerns (orders and deposits).
    pub account_id: Option<String>,
}

/// Up to `limit` numbered events after audit number `after`, with the account each concerns.
pub async fn feed_page(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<FeedEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.audit_seq, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, \
                e.payload::jsonb AS payload, e.recorded_at, \
                CASE e.aggregate_type \
                  WHEN 'deposit' THEN e.payload -> e.event_type ->> 'account_id' \
                  WHEN 'order' THEN (SELECT f.payload -> 'OrderPlaced' ->> 'account_id' \
                                     FROM events f WHERE f.aggregate_type = 'order' \
                                       AND f.aggregate_id = e.aggregate_id AND f.sequence = 1) \
                END AS account_id \
         FROM audit_log a JOIN events e ON e.global_position = a.global_position \
         WHERE a.audit_seq > $1 ORDER BY a.audit_seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The newest audit number (0 before the first).
pub async fn newest_number(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(audit_seq), 0) FROM audit_log")
        .fetch_one(pool)
        .await
}
