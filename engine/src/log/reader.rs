//! The global-log reader: events after a checkpoint, in `(transaction_id, global_position)`
//! order, and only from transactions older than every transaction still running
//! (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`). A transaction that inserted
//! early and commits late holds the horizon back, so its events are delivered late but never
//! skipped. The caller writes its checkpoint in the same transaction as its effects.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::EventUpcaster;
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::PgConnection;

use crate::error::Error;
use crate::log::position::parse_xid8;
use crate::log::LogPosition;
use crate::store::metadata::CommandMetadata;
use crate::store::upcast::{upcast, upcasters, RawEvent};

/// One event of the global log, upcast to the current version.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: LogPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: HashMap<String, String>,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The event as aggregate `A`'s event type, if it belongs to `A`.
    pub fn decode<A: Aggregate>(&self) -> Option<Result<A::Event, Error>> {
        if self.aggregate_type != A::TYPE {
            return None;
        }
        Some(serde_json::from_value(self.payload.clone()).map_err(|e| {
            Error::corrupt(
                format!("{} event {} at {}", A::TYPE, self.event_type, self.position),
                e,
            )
        }))
    }

    /// The metadata contract (command, correlation, causation, actor, request ids).
    pub fn command_metadata(&self) -> Option<CommandMetadata> {
        CommandMetadata::from_map(&self.metadata)
    }
}

/// Reads the global log; holds the upcaster chain.
pub struct GlobalLogReader {
    upcasters: Vec<Box<dyn EventUpcaster>>,
}

impl Default for GlobalLogReader {
    fn default() -> Self {
        Self::new()
    }
}

type Row = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    Value,
    Value,
    DateTime<Utc>,
);

impl GlobalLogReader {
    pub fn new() -> Self {
        Self {
            upcasters: upcasters(),
        }
    }

    /// Up to `limit` events after `after`, below the transaction horizon, in log order.
    /// Run it inside the transaction that will apply the batch and save the checkpoint.
    /// (`ORDER BY` names the table's columns: unqualified, `transaction_id` would be the
    /// selected `transaction_id::text`, and the batch would follow the ids' text order.)
    pub async fn read_batch(
        &self,
        conn: &mut PgConnection,
        after: LogPosition,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT global_position, transaction_id::text, aggregate_type, aggregate_id, sequence, \
                    event_type, event_version, payload::jsonb, metadata::jsonb, recorded_at \
             FROM events \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.transaction_id, events.global_position \
             LIMIT $3",
        )
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(conn)
        .await?;
        rows.into_iter().map(|r| self.to_event(r)).collect()
    }

    /// Like [`read_batch`](Self::read_batch), with every payload decoded into its domain type.
    pub async fn read_typed_batch(
        &self,
        conn: &mut PgConnection,
        after: LogPosition,
        limit: i64,
    ) -> Result<Vec<crate::log::TypedEvent>, Error> {
        self.read_batch(conn, after, limit)
            .await?
            .into_iter()
            .map(crate::log::TypedEvent::try_from)
            .collect()
    }

    fn to_event(&self, row: Row) -> Result<RecordedEvent, Error> {
        let (pos, tx, aggregate_type, aggregate_id, sequence, et, ev, payload, metadata, at) = row;
        let raw = upcast(
            RawEvent {
                event_type: et,
                event_version: ev,
                payload,
            },
            &self.upcasters,
        );
        let metadata: HashMap<String, String> = serde_json::from_value(metadata)
            .map_err(|e| Error::corrupt(format!("metadata at position {pos}"), e))?;
        Ok(RecordedEvent {
            position: LogPosition::new(parse_xid8(&tx)?, pos),
            aggregate_type,
            aggregate_id,
            sequence: sequence as u64,
            event_type: raw.event_type,
            event_version: raw.event_version,
            payload: raw.payload,
            metadata,
            recorded_at: at,
        })
    }
}

/// Where a reader stands; the start of the log if it has never saved a checkpoint.
pub async fn load_checkpoint(conn: &mut PgConnection, reader: &str) -> Result<LogPosition, Error> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT last_tx::text, last_pos FROM reader_checkpoints WHERE reader = $1")
            .bind(reader)
            .fetch_optional(conn)
            .await?;
    match row {
        Some((tx, pos)) => Ok(LogPosition::new(parse_xid8(&tx)?, pos)),
        None => Ok(LogPosition::START),
    }
}

/// Moves a reader's checkpoint forward (never back). Call it in the transaction that applied
/// the events up to `position`, so the effects and the checkpoint commit together.
pub async fn save_checkpoint(
    conn: &mut PgConnection,
    reader: &str,
    position: LogPosition,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO reader_checkpoints (reader, last_tx, last_pos, updated_at) \
         VALUES ($1, $2::text::xid8, $3, now()) \
         ON CONFLICT (reader) DO UPDATE \
           SET last_tx = EXCLUDED.last_tx, last_pos = EXCLUDED.last_pos, updated_at = now() \
           WHERE (reader_checkpoints.last_tx, reader_checkpoints.last_pos) \
               < (EXCLUDED.last_tx, EXCLUDED.last_pos)",
    )
    .bind(reader)
    .bind(position.transaction_id.to_string())
    .bind(position.global_position)
    .execute(conn)
    .await?;
    Ok(())
}
