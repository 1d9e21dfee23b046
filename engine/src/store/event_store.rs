//! Reading and appending aggregate streams in the postgres-es `events` table, with our own
//! snapshots and command log written in the same statement as the events.

use std::collections::HashMap;

use cqrs_es::persist::EventUpcaster;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

use crate::domain::DomainAggregate;
use crate::error::Error;
use crate::log::position::parse_xid8;
use crate::log::LogPosition;
use crate::store::upcast::{upcast, RawEvent};

/// An aggregate as loaded: its state and how many events it has (its version).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    pub aggregate: A,
    pub version: u64,
    /// How many events the load read (after the snapshot, if one was used).
    pub events_read: u64,
    pub from_snapshot: bool,
    /// The version of the newest snapshot known (0: none) and its size in bytes of JSON.
    pub snapshot_version: u64,
    pub snapshot_bytes: u64,
}

impl<A: Default> Loaded<A> {
    /// An aggregate with no events (not read from the store).
    pub fn empty() -> Self {
        Self {
            aggregate: A::default(),
            version: 0,
            events_read: 0,
            from_snapshot: false,
            snapshot_version: 0,
            snapshot_bytes: 0,
        }
    }
}

/// Loads an aggregate: our snapshot (if it is of the current state schema) plus the events
/// after it, upcast and applied in order. One query reads both (a load is a round trip, and new
/// aggregates are loaded on every first command).
pub async fn load<A: DomainAggregate>(
    pool: &PgPool,
    id: &str,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<Loaded<A>, Error> {
    // The snapshot's row first (sequence NULL), then the events after it.
    let rows: Vec<LoadRow> = sqlx::query_as(LOAD_SQL)
        .bind(A::TYPE)
        .bind(id)
        .bind(A::STATE_SCHEMA)
        .fetch_all(pool)
        .await?;
    let mut rows = rows.into_iter().peekable();
    let mut snapshot_bytes = 0;
    let (mut aggregate, mut version, from_snapshot) = match rows.next_if(|r| r.0.is_none()) {
        Some((_, _, _, payload, v, bytes)) => {
            snapshot_bytes = bytes.unwrap_or(0) as u64;
            match serde_json::from_value::<A>(payload) {
                Ok(a) => (a, v.unwrap_or(0) as u64, true),
                Err(e) => {
                    tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id, error = %e,
                        "snapshot unreadable; replaying all events");
                    return load_events(pool, id, upcasters, snapshot_bytes).await;
                }
            }
        }
        None => (A::default(), 0, false),
    };
    let mut events_read = 0;
    for (sequence, event_type, event_version, payload, _, _) in rows {
        let (Some(sequence), Some(event_type), Some(event_version)) =
            (sequence, event_type, event_version)
        else {
            return Err(Error::corrupt(
                format!("{} {id}", A::TYPE),
                "a second snapshot row",
            ));
        };
        if sequence as u64 != version + 1 {
            return Err(Error::corrupt(
                format!("{} {id}", A::TYPE),
                format!("sequence {sequence} follows {version}"),
            ));
        }
        let event = decode_event::<A>(event_type, event_version, payload, upcasters)?;
        aggregate.apply(event);
        version += 1;
        events_read += 1;
    }
    let snapshot_version = if from_snapshot {
        version - events_read
    } else {
        0
    };
    Ok(Loaded {
        aggregate,
        version,
        events_read,
        from_snapshot,
        snapshot_version,
        snapshot_bytes,
    })
}

/// A row of [`LOAD_SQL`]: sequence, event type and version (all NULL on the snapshot's row),
/// the payload, and the snapshot's version and size.
type LoadRow = (
    Option<i64>,
    Option<String>,
    Option<String>,
    Value,
    Option<i64>,
    Option<i64>,
);

const LOAD_SQL: &str = r#"
WITH snap AS (
    SELECT version, payload, octet_length(payload::text)::bigint AS bytes
    FROM aggregate_snapshots
    WHERE aggregate_type = $1 AND aggregate_id = $2 AND state_schema = $3
)
SELECT NULL::bigint AS sequence, NULL::text AS event_type, NULL::text AS event_version,
       payload, version, bytes
FROM snap
UNION ALL
SELECT sequence, event_type, event_version, payload::jsonb, NULL::bigint, NULL::bigint
FROM events
WHERE aggregate_type = $1 AND aggregate_id = $2
  AND sequence > COALESCE((SELECT version FROM snap), 0)
ORDER BY sequence NULLS FIRST
"#;

/// Loads an aggregate from all its events (its snapshot could not be read).
async fn load_events<A: DomainAggregate>(
    pool: &PgPool,
    id: &str,
    upcasters: &[Box<dyn EventUpcaster>],
    snapshot_bytes: u64,
) -> Result<Loaded<A>, Error> {
    let mut loaded = Loaded {
        snapshot_bytes,
        ..Loaded::empty()
    };
    loaded.events_read = catch_up(pool, id, &mut loaded, upcasters).await?;
    Ok(loaded)
}

/// Brings a loaded aggregate up to date with events other processes appended since; returns
/// how many were applied.
pub async fn catch_up<A: DomainAggregate>(
    pool: &PgPool,
    id: &str,
    loaded: &mut Loaded<A>,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<u64, Error> {
    let rows: Vec<(i64, String, String, Value)> = sqlx::query_as(
        "SELECT sequence, event_type, event_version, payload::jsonb FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
    )
    .bind(A::TYPE)
    .bind(id)
    .bind(loaded.version as i64)
    .fetch_all(pool)
    .await?;
    let n = rows.len() as u64;
    for (sequence, event_type, event_version, payload) in rows {
        if sequence as u64 != loaded.version + 1 {
            return Err(Error::corrupt(
                format!("{} {id}", A::TYPE),
                format!("sequence {sequence} follows {}", loaded.version),
            ));
        }
        let event = decode_event::<A>(event_type, event_version, payload, upcasters)?;
        loaded.aggregate.apply(event);
        loaded.version += 1;
    }
    Ok(n)
}

/// Decodes one stored event of aggregate `A` through the upcaster chain.
pub fn decode_event<A: Aggregate>(
    event_type: String,
    event_version: String,
    payload: Value,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<A::Event, Error> {
    let raw = upcast(
        RawEvent {
            event_type,
            event_version,
            payload,
        },
        upcasters,
    );
    serde_json::from_value(raw.payload)
        .map_err(|e| Error::corrupt(format!("{} event {}", A::TYPE, raw.event_type), e))
}

/// One event to append.
pub(crate) struct NewEvent {
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
}

impl NewEvent {
    pub fn new<E: DomainEvent>(
        sequence: u64,
        event: &E,
        metadata: &HashMap<String, String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            sequence,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_string(event)
                .map_err(|e| Error::corrupt("event to store", e))?,
            metadata: serde_json::to_string(metadata)
                .map_err(|e| Error::corrupt("metadata to store", e))?,
        })
    }
}

/// One command-log row to write.
pub(crate) struct LogRow {
    pub command_id: Uuid,
    pub command_type: &'static str,
    pub outcome: String,
    pub fingerprint: Option<String>,
}

/// What the append statement reports.
pub(crate) enum AppendResult {
    /// Written; the position of each event, in order.
    Written(Vec<LogPosition>),
    /// The stream moved past `expected_version` (another writer appended): nothing was written.
    Stale,
}

/// Why an append failed on a unique key.
pub(crate) enum AppendError {
    /// Another writer is appending the same sequence right now.
    Conflict,
    /// A command id of the batch is in the command log already.
    DuplicateCommand,
    Other(Error),
}

const APPEND_SQL: &str = r#"
WITH stale AS (
    SELECT EXISTS (SELECT 1 FROM events
                   WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3) AS s
), ev AS (
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
    SELECT $1, $2, u.seq, u.et, u.ev, u.p::json, u.m::json
    FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u(seq, et, ev, p, m)
    WHERE NOT (SELECT s FROM stale)
    RETURNING sequence, global_position, transaction_id
), cl AS (
    INSERT INTO command_log (command_id, aggregate_type, aggregate_id, command_type, outcome, fingerprint)
    SELECT u.id, $1, $2, u.ct, u.o::jsonb, u.f
    FROM unnest($9::uuid[], $10::text[], $11::text[], $12::text[]) AS u(id, ct, o, f)
    WHERE NOT (SELECT s FROM stale)
    RETURNING 1
)
SELECT (SELECT s FROM stale) AS stale,
       (SELECT count(*) FROM cl) AS logged,
       COALESCE((SELECT array_agg(global_position ORDER BY sequence) FROM ev), '{}') AS positions,
       COALESCE((SELECT array_agg(transaction_id::text ORDER BY sequence) FROM ev), '{}') AS txids
"#;

/// Binds the columns of the events to insert, one array per column (`sequence, event_type,
/// event_version, payload, metadata`), as both append statements read them with `unnest`.
pub(crate) fn bind_events<'q, O, I>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    events: I,
) -> QueryAs<'q, Postgres, O, PgArguments>
where
    I: IntoIterator<Item = &'q NewEvent>,
    I::IntoIter: Clone,
{
    let events = events.into_iter();
    query
        .bind(
            events
                .clone()
                .map(|e| e.sequence as i64)
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .clone()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .clone()
                .map(|e| e.event_version.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .clone()
                .map(|e| e.payload.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(events.map(|e| e.metadata.as_str()).collect::<Vec<_>>())
}

/// Binds the columns of the command-log rows to insert (`command_id, command_type, outcome,
/// fingerprint`), as both append statements read them with `unnest`.
pub(crate) fn bind_log<'q, O, I>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    log: I,
) -> QueryAs<'q, Postgres, O, PgArguments>
where
    I: IntoIterator<Item = &'q LogRow>,
    I::IntoIter: Clone,
{
    let log = log.into_iter();
    query
        .bind(log.clone().map(|l| l.command_id).collect::<Vec<_>>())
        .bind(log.clone().map(|l| l.command_type).collect::<Vec<_>>())
        .bind(log.clone().map(|l| l.outcome.as_str()).collect::<Vec<_>>())
        .bind(log.map(|l| l.fingerprint.as_deref()).collect::<Vec<_>>())
}

/// Appends events and their command-log rows in one statement (so one transaction), provided
/// the stream is still at `expected_version`.
pub(crate) async fn append(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    expected_version: u64,
    events: &[NewEvent],
    log: &[LogRow],
) -> Result<AppendResult, AppendError> {
    let query = sqlx::query_as(APPEND_SQL)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(expected_version as i64);
    let row: Result<(bool, i64, Vec<i64>, Vec<String>), sqlx::Error> =
        bind_log(bind_events(query, events), log)
            .fetch_one(pool)
            .await;
    let (stale, _logged, positions, txids) = match row {
        Ok(r) => r,
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            return Err(match db.constraint() {
                Some("command_log_pkey") => AppendError::DuplicateCommand,
                _ => AppendError::Conflict,
            });
        }
        Err(e) => return Err(AppendError::Other(e.into())),
    };
    if stale {
        return Ok(AppendResult::Stale);
    }
    let positions = positions
        .into_iter()
        .zip(txids)
        .map(|(pos, tx)| Ok(LogPosition::new(parse_xid8(&tx)?, pos)))
        .collect::<Result<Vec<_>, Error>>()
        .map_err(AppendError::Other)?;
    Ok(AppendResult::Written(positions))
}

/// Stores a snapshot of the state at `version`, unless a newer one is stored already. A
/// snapshot is only a cache of the committed events up to `version`, so it may be written
/// after them, by another task.
pub(crate) async fn write_snapshot(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    version: u64,
    schema: &str,
    payload: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, version, state_schema, payload) \
         VALUES ($1, $2, $3, $4, $5::text::jsonb) \
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
           SET version = EXCLUDED.version, state_schema = EXCLUDED.state_schema, \
               payload = EXCLUDED.payload, taken_at = now() \
           WHERE aggregate_snapshots.version < EXCLUDED.version",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(version as i64)
    .bind(schema)
    .bind(payload)
    .execute(pool)
    .await?;
    Ok(())
}

/// A command-log row as stored.
pub(crate) struct StoredOutcome {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub command_type: String,
    pub outcome: Value,
    pub fingerprint: Option<String>,
}

/// The stored outcomes of the given command ids (those that have one).
pub(crate) async fn stored_outcomes(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StoredOutcome>, Error> {
    let rows: Vec<(Uuid, String, String, String, Value, Option<String>)> = sqlx::query_as(
        "SELECT command_id, aggregate_type, aggregate_id, command_type, outcome, fingerprint \
         FROM command_log WHERE command_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, aggregate_type, aggregate_id, command_type, outcome, fingerprint)| {
                (
                    id,
                    StoredOutcome {
                        aggregate_type,
                        aggregate_id,
                        command_type,
                        outcome,
                        fingerprint,
                    },
                )
            },
        )
        .collect())
}

/// The events with sequences `first..=last` of one aggregate, with their log positions.
pub(crate) async fn events_between<A: Aggregate>(
    pool: &PgPool,
    id: &str,
    first: u64,
    last: u64,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<Vec<(A::Event, LogPosition)>, Error> {
    let rows: Vec<(String, String, Value, i64, String)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::jsonb, global_position, transaction_id::text \
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         AND sequence BETWEEN $3 AND $4 ORDER BY sequence",
    )
    .bind(A::TYPE)
    .bind(id)
    .bind(first as i64)
    .bind(last as i64)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(et, ev, payload, pos, tx)| {
            Ok((
                decode_event::<A>(et, ev, payload, upcasters)?,
                LogPosition::new(parse_xid8(&tx)?, pos),
            ))
        })
        .collect()
}
