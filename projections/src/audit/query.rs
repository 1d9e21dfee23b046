//! What auditors read: an aggregate's history with audit numbers, times and actors; its state
//! as of a time or a log position; pages of the chain; and exports of it as JSON lines ending
//! with a signed head, which [`super::offline::verify_export`] (or the procedure in
//! docs/audit.md) checks offline.

use std::io::Write;

use chrono::{DateTime, Utc};
use engine::domain::{Account, Deposit, DomainAggregate, Maintenance, Order, PriceList, Wallet};
use engine::store::event_store::decode_event;
use engine::store::upcast::upcasters;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

use super::canonical::format_time;
use super::head::{AuditSigner, HeadRange};
use super::heads::newest_head_holds;
use super::offline::ExportLine;
use super::to_hash;
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

/// A row of [`EXPORT_SELECT`].
pub(super) type ExportRow = (
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

/// The chain's rows with their events (none where the event is gone), for exports and pages.
pub(super) const EXPORT_SELECT: &str =
    "SELECT a.audit_seq, a.global_position, a.prev_hash, a.hash, \
        e.event_type, e.event_version, e.aggregate_type, e.aggregate_id, e.sequence, \
        e.payload::text, e.metadata::text, e.recorded_at \
 FROM audit_log a LEFT JOIN events e ON e.global_position = a.global_position";

pub(super) fn export_line(row: ExportRow) -> Result<ExportLine, Error> {
    let (seq, pos, prev, hash, et, ev, at, aid, sq, payload, metadata, rec) = row;
    let parse = |text: Option<String>| -> Result<Option<Value>, Error> {
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| Error::corrupt(format!("JSON of audit #{seq}"), e))
    };
    Ok(ExportLine {
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
    })
}

/// Writes audit numbers `from..=to` as JSON lines, then a head of them signed by `signer`
/// (docs/audit.md, "Commands"); returns how many event lines were written (none: no head
/// either). Refuses when the chain no longer agrees with the newest stored head (it would sign
/// a rewrite): `audit verify` tells where.
pub async fn export(
    conn: &mut PgConnection,
    from: i64,
    to: i64,
    signer: &AuditSigner,
    out: &mut impl Write,
) -> Result<u64, Error> {
    newest_head_holds(conn, 1, i64::MAX).await?;
    let mut n = 0;
    let mut first_prev: Option<[u8; 32]> = None;
    let mut last: Option<(i64, [u8; 32])> = None;
    let mut first_seq = from;
    {
        let sql =
            format!("{EXPORT_SELECT} WHERE a.audit_seq BETWEEN $1 AND $2 ORDER BY a.audit_seq");
        let mut rows = sqlx::query_as::<_, ExportRow>(&sql)
            .bind(from)
            .bind(to)
            .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let (prev, hash) = (to_hash(&row.2)?, to_hash(&row.3)?);
            let line = export_line(row)?;
            if first_prev.is_none() {
                first_prev = Some(prev);
                first_seq = line.audit_seq;
            }
            last = Some((line.audit_seq, hash));
            serde_json::to_writer(&mut *out, &line)
                .map_err(|e| Error::corrupt("export line", e))?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    if let (Some(prev_hash), Some((to, last_hash))) = (first_prev, last) {
        let head = signer.sign(
            &HeadRange {
                from: first_seq,
                to,
                prev_hash,
                last_hash,
            },
            Utc::now(),
        );
        serde_json::to_writer(&mut *out, &head).map_err(|e| Error::corrupt("export head", e))?;
        out.write_all(b"\n")?;
    }
    Ok(n)
}
