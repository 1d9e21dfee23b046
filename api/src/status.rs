//! A plain-text report of the event store's state, for `trx-energy status` and `run`.

use std::fmt::Write;

use sqlx::PgPool;

pub async fn report(pool: &PgPool) -> Result<String, engine::Error> {
    let (events, aggregates, last_at): (i64, i64, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as(
            "SELECT count(*), count(DISTINCT (aggregate_type, aggregate_id)), max(recorded_at) FROM events",
        )
        .fetch_one(pool)
        .await?;
    let commands: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log")
        .fetch_one(pool)
        .await?;
    let readers: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT reader, last_tx::text, last_pos FROM reader_checkpoints ORDER BY reader",
    )
    .fetch_all(pool)
    .await?;
    let mut out = String::new();
    let _ = writeln!(out, "events: {events} in {aggregates} aggregates");
    let _ = writeln!(out, "commands recorded: {commands}");
    if let Some(at) = last_at {
        let _ = writeln!(out, "last event at: {}", at.to_rfc3339());
    }
    for (reader, tx, pos) in readers {
        let _ = writeln!(out, "reader {reader}: at {tx}:{pos}");
    }
    Ok(out)
}
