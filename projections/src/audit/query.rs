//! What auditors read: an aggregate's history with audit numbers, times and actors; its state
//! as of a time or a log position; and exports of the chain as JSON lines, which
//! [`verify_export`] (or the procedure in docs/audit.md) checks offline.

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use engine::domain::{Account, Deposit, DomainAggregate, Maintenance, Order, PriceList, Wallet};
use engine::store::event_store::decode_event;
use engine::store::upcast::upcasters;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;

use super::canonical::{chain, encode_parts, format_time};
use crate::error::Error;

/// The aggregate types, as stored in `events.aggregate_type`.
pub const AGGREGATE_TYPES: [&str; 6] = [
    "account",
    "order",
    "deposit",
    "wallet",
    "price_list",
    "maintenance",
];

/// The stored name of an aggregate type given in any case.
pub fn aggregate_type(name: &str) -> Result<&'static str, Error> {
    AGGREGATE_TYPES
        .into_iter()
        .find(|t| t.eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::UnknownAggregateType(name.to_string()))
}

/// One event of an aggregate's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// `None` until the sequencer has numbered it.
    pub audit_seq: Option<i64>,
    pub global_position: i64,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    pub actor_subject: Option<String>,
    pub actor_role: Option<String>,
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
    pub payload: Value,
}

impl HistoryEntry {
    /// One line of `trx-energy audit history`.
    pub fn line(&self) -> String {
        let audit = self
            .audit_seq
            .map_or_else(|| "#-".to_string(), |s| format!("#{s}"));
        format!(
            "{audit} seq {} pos {} {} {} by {} ({}) command {} {}",
            self.sequence,
            self.global_position,
            format_time(self.recorded_at),
            self.event_type,
            self.actor_subject.as_deref().unwrap_or("?"),
            self.actor_role.as_deref().unwrap_or("?"),
            self.command_id.as_deref().unwrap_or("-"),
            self.payload
        )
    }
}

type HistoryRow = (
    Option<i64>,
    i64,
    i64,
    String,
    String,
    DateTime<Utc>,
    Value,
    Value,
);

/// An aggregate's events in order, as stored, with their audit numbers.
pub async fn history(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<HistoryEntry>, Error> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT a.audit_seq, e.global_position, e.sequence, e.event_type, e.event_version, \
                e.recorded_at, e.metadata::jsonb, e.payload::jsonb \
         FROM events e LEFT JOIN audit_log a ON a.global_position = e.global_position \
         WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 ORDER BY e.sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                audit_seq,
                global_position,
                sequence,
                event_type,
                event_version,
                recorded_at,
                meta,
                payload,
            )| {
                let get = |k: &str| meta.get(k).and_then(Value::as_str).map(String::from);
                HistoryEntry {
                    audit_seq,
                    global_position,
                    sequence,
                    event_type,
                    event_version,
                    recorded_at,
                    actor_subject: get("actor_subject"),
                    actor_role: get("actor_role"),
                    command_id: get("command_id"),
                    correlation_id: get("correlation_id"),
                    payload,
                }
            },
        )
        .collect())
}

/// Which moment a state is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    /// Events recorded at or before this time.
    Time(DateTime<Utc>),
    /// Events at or before this global position (`events.global_position`). An aggregate's
    /// events have increasing positions, so this is always a prefix of its stream.
    Position(i64),
}

/// An aggregate's state as of a moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateReport {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub as_of: AsOf,
    /// Events applied (the aggregate's version then).
    pub version: i64,
    pub last_global_position: Option<i64>,
    pub last_recorded_at: Option<DateTime<Utc>>,
    pub state: Value,
}

/// Replays an aggregate's events up to `as_of`, through the upcasters, and returns its state.
pub async fn state_at(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    as_of: AsOf,
) -> Result<StateReport, Error> {
    let aggregate_type = self::aggregate_type(aggregate_type)?;
    let (position, time) = match as_of {
        AsOf::Time(t) => (None, Some(t)),
        AsOf::Position(p) => (Some(p), None),
    };
    let rows: Vec<(i64, String, String, Value, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT sequence, event_type, event_version, payload::jsonb, global_position, recorded_at \
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
           AND ($3::bigint IS NULL OR global_position <= $3) \
           AND ($4::timestamptz IS NULL OR recorded_at <= $4) \
         ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(position)
    .bind(time)
    .fetch_all(conn)
    .await?;
    let last = rows.last().map(|r| (r.4, r.5));
    let version = rows.len() as i64;
    let events = rows.into_iter().map(|(_, t, v, p, _, _)| (t, v, p));
    let state = match aggregate_type {
        "account" => replay_json::<Account>(events)?,
        "order" => replay_json::<Order>(events)?,
        "deposit" => replay_json::<Deposit>(events)?,
        "wallet" => replay_json::<Wallet>(events)?,
        "price_list" => replay_json::<PriceList>(events)?,
        _ => replay_json::<Maintenance>(events)?,
    };
    Ok(StateReport {
        aggregate_type: aggregate_type.to_string(),
        aggregate_id: aggregate_id.to_string(),
        as_of,
        version,
        last_global_position: last.map(|l| l.0),
        last_recorded_at: last.map(|l| l.1),
        state,
    })
}

fn replay_json<A: DomainAggregate + Serialize>(
    events: impl Iterator<Item = (String, String, Value)>,
) -> Result<Value, Error> {
    let chain = upcasters();
    let mut aggregate = A::default();
    for (event_type, event_version, payload) in events {
        let event = decode_event::<A>(event_type, event_version, payload, &chain)?;
        aggregate.apply(event);
    }
    serde_json::to_value(&aggregate).map_err(|e| Error::corrupt(format!("{} state", A::TYPE), e))
}

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportLine {
    pub audit_seq: i64,
    pub global_position: i64,
    /// Hex.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
    /// `null` fields: the event is missing from the events table (verification fails on it).
    pub event_type: Option<String>,
    pub event_version: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub sequence: Option<i64>,
    pub payload: Option<Value>,
    pub metadata: Option<Value>,
    /// RFC 3339, UTC, six fractional digits: exactly the text that is hashed.
    pub recorded_at: Option<String>,
}

type ExportRow = (
    i64,
    i64,
    Vec<u8>,
    Vec<u8>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// Writes audit numbers `from..=to` as JSON lines; returns how many were written.
pub async fn export(
    conn: &mut PgConnection,
    from: i64,
    to: i64,
    out: &mut impl Write,
) -> Result<u64, Error> {
    let mut rows = sqlx::query_as::<_, ExportRow>(
        "SELECT a.audit_seq, a.global_position, a.prev_hash, a.hash, e.event_type, \
                e.event_version, e.aggregate_type, e.aggregate_id, e.sequence, e.payload::text, \
                e.metadata::text, e.recorded_at \
         FROM audit_log a LEFT JOIN events e ON e.global_position = a.global_position \
         WHERE a.audit_seq BETWEEN $1 AND $2 ORDER BY a.audit_seq",
    )
    .bind(from)
    .bind(to)
    .fetch(conn);
    let mut n = 0;
    while let Some(row) = rows.try_next().await? {
        let (seq, pos, prev, hash, et, ev, at, aid, sq, payload, metadata, rec) = row;
        let parse = |text: Option<String>| -> Result<Option<Value>, Error> {
            text.map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| Error::corrupt(format!("JSON of audit #{seq}"), e))
        };
        let line = ExportLine {
            audit_seq: seq,
            global_position: pos,
            prev_hash: hex::encode(prev),
            hash: hex::encode(hash),
            event_type: et,
            event_version: ev,
            aggregate_type: at,
            aggregate_id: aid,
            sequence: sq,
            payload: parse(payload)?,
            metadata: parse(metadata)?,
            recorded_at: rec.map(format_time),
        };
        serde_json::to_writer(&mut *out, &line).map_err(|e| Error::corrupt("export line", e))?;
        out.write_all(b"\n")?;
        n += 1;
    }
    Ok(n)
}

/// Verifies an export offline (the procedure of docs/audit.md): every line's hash is
/// sha256(prev_hash || encoding), each line's prev_hash is the previous line's hash, and the
/// numbers are consecutive. Returns the number of lines, or the first line that fails.
pub fn verify_export(input: impl BufRead) -> Result<u64, String> {
    let mut previous: Option<(i64, String)> = None;
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: ExportLine =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let fail = |what: &str| format!("audit #{}: {what}", l.audit_seq);
        if let Some((seq, hash)) = &previous {
            if l.audit_seq != seq + 1 {
                return Err(fail(&format!("follows audit #{seq}")));
            }
            if &l.prev_hash != hash {
                return Err(fail("prev_hash is not the previous line's hash"));
            }
        }
        let (Some(et), Some(ev), Some(at), Some(aid), Some(sq), Some(p), Some(m), Some(rec)) = (
            &l.event_type,
            &l.event_version,
            &l.aggregate_type,
            &l.aggregate_id,
            l.sequence,
            &l.payload,
            &l.metadata,
            &l.recorded_at,
        ) else {
            return Err(fail("the event is missing"));
        };
        let recorded_at = DateTime::parse_from_rfc3339(rec)
            .map_err(|e| fail(&format!("recorded_at: {e}")))?
            .with_timezone(&Utc);
        if &format_time(recorded_at) != rec {
            return Err(fail("recorded_at is not in the canonical form"));
        }
        let prev: [u8; 32] = hex::decode(&l.prev_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail("prev_hash is not 32 bytes of hex"))?;
        let encoding = encode_parts(et, ev, at, aid, sq, p, m, recorded_at);
        if hex::encode(chain(&prev, &encoding)) != l.hash {
            return Err(fail("the event does not match its hash"));
        }
        previous = Some((l.audit_seq, l.hash.clone()));
        n += 1;
    }
    Ok(n)
}
