//! How far the log's readers are (projections, the audit sequencer, process managers), read
//! from their checkpoints: for readiness, `/metrics`, and reads that must see a caller's own
//! write.

use engine::log::LogPosition;
use sqlx::PgPool;

use crate::projection::Target;

/// The checkpoint names of the live projections and the audit sequencer.
pub fn projector_readers() -> Vec<String> {
    let mut readers: Vec<String> = crate::projection::names()
        .into_iter()
        .map(|n| Target::Live.reader(n))
        .collect();
    readers.push(crate::audit::SEQUENCER_READER.to_string());
    readers
}

/// Each reader with a checkpoint, and the log positions between the newest event and it.
pub async fn positions_behind(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reader, greatest(0, coalesce((SELECT max(global_position) FROM events), 0) - last_pos) \
         FROM reader_checkpoints ORDER BY reader",
    )
    .fetch_all(pool)
    .await
}

/// The age in seconds of the oldest event one of `readers` has not applied yet; 0 when every
/// one is caught up. A reader without a checkpoint has applied nothing.
pub async fn oldest_unapplied_age_secs(
    pool: &PgPool,
    readers: &[String],
) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(max(extract(epoch FROM now() - (\
                    SELECT e.recorded_at FROM events e \
                    WHERE (e.transaction_id, e.global_position) > \
                          (coalesce(c.last_tx, '0'::xid8), coalesce(c.last_pos, 0)) \
                    ORDER BY e.transaction_id, e.global_position LIMIT 1)))::float8, 0) \
         FROM unnest($1::text[]) AS r(name) \
         LEFT JOIN reader_checkpoints c ON c.reader = r.name",
    )
    .bind(readers)
    .fetch_one(pool)
    .await
}

/// Whether every one of `readers` has applied the log up to `position`.
pub async fn all_passed(
    pool: &PgPool,
    readers: &[String],
    position: LogPosition,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(bool_and(c.reader IS NOT NULL \
                                  AND (c.last_tx, c.last_pos) >= ($1::text::xid8, $2)), true) \
         FROM unnest($3::text[]) AS r(name) \
         LEFT JOIN reader_checkpoints c ON c.reader = r.name",
    )
    .bind(position.transaction_id.to_string())
    .bind(position.global_position)
    .bind(readers)
    .fetch_one(pool)
    .await
}
