//! `audit verify`: recomputes the hash chain from the events table and names the first event
//! that was altered, inserted, deleted or reordered since it was sequenced.
//!
//! - **altered**: the event at an audit number no longer matches its hash;
//! - **reordered**: the event at an audit number is one that was sequenced under another number
//!   (contents swapped between rows), or the chain's events are no longer in log order;
//! - **deleted**: an audit number's event is gone;
//! - **inserted**: an event sits inside the sequenced part of the log (at or before the
//!   sequencer's checkpoint) but has no audit number;
//! - **chain broken**: the audit rows themselves were changed (a gap in the numbers, or a
//!   `prev_hash` that is not the previous hash).

use std::fmt;

use engine::log::{load_checkpoint, LogPosition};
use futures::TryStreamExt;
use sqlx::{Connection, PgConnection, PgPool};

use super::canonical::{chain, encode, StoredEvent, GENESIS};
use super::{stored, to_hash, StoredRow, SEQUENCER_READER, STORED_COLUMNS};
use crate::error::Error;

/// What kind of tampering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    ChainBroken,
    Deleted,
    Reordered,
    Altered,
    Inserted,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::ChainBroken => "chain broken",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Altered => "altered",
            ProblemKind::Inserted => "inserted",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The audit number concerned; for an inserted event, the number of the chain event that
    /// follows it in the log.
    pub audit_seq: i64,
    pub global_position: i64,
    /// `account tg:1 #3 FundsCredited`, when the event is there to name.
    pub event: Option<String>,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: audit #{} (global position {})",
            self.kind, self.audit_seq, self.global_position
        )?;
        if let Some(e) = &self.event {
            write!(f, ", {e}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Audit rows checked.
    pub events: u64,
    /// Every finding, the first (in audit order) first.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn describe(e: &StoredEvent) -> String {
    format!(
        "{} {} #{} {}",
        e.aggregate_type, e.aggregate_id, e.sequence, e.event_type
    )
}

type Row = (
    i64,
    i64,
    Vec<u8>,
    Vec<u8>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// An audit row whose event does not match its hash.
struct Mismatch {
    seq: i64,
    prev: [u8; 32],
    hash: [u8; 32],
    encoding: Vec<u8>,
}

/// How many mismatches are kept to tell "altered" from "reordered".
const KEEP_MISMATCHES: usize = 1_000;
/// How many findings are reported at most.
const MAX_PROBLEMS: usize = 100;

/// One audit row whose event is there, for the hash check (done off the reading task, in
/// parallel: each row carries its own `prev_hash`, so rows check independently).
struct ToCheck {
    seq: i64,
    position: i64,
    prev: [u8; 32],
    hash: [u8; 32],
    event: StoredEvent,
}

/// What the hash check of a chunk found.
#[derive(Default)]
struct Checked {
    problems: Vec<Problem>,
    mismatches: Vec<Mismatch>,
}

fn check_chunk(chunk: Vec<ToCheck>) -> Checked {
    let mut out = Checked::default();
    for row in chunk {
        let problem = |kind, detail: String| Problem {
            kind,
            audit_seq: row.seq,
            global_position: row.position,
            event: Some(describe(&row.event)),
            detail,
        };
        match encode(&row.event) {
            Err(e) => out.problems.push(problem(
                ProblemKind::Altered,
                format!("its stored JSON no longer parses: {e}"),
            )),
            Ok(encoding) => {
                if chain(&row.prev, &encoding) != row.hash {
                    out.problems.push(problem(
                        ProblemKind::Altered,
                        "the event no longer matches the hash it was sequenced with".into(),
                    ));
                    out.mismatches.push(Mismatch {
                        seq: row.seq,
                        prev: row.prev,
                        hash: row.hash,
                        encoding,
                    });
                }
            }
        }
    }
    out
}

/// Rows per parallel hash check, and checks in flight.
const CHUNK: usize = 2_048;
const IN_FLIGHT: usize = 4;

/// Verifies the whole chain in one consistent snapshot of the database: first the fast way
/// (the audit rows and the events side by side, each in its own order, hashes checked in
/// parallel); if that finds anything at all, again the thorough way, which names each problem.
pub async fn verify(pool: &PgPool) -> Result<VerifyReport, Error> {
    if let Some(clean) = verify_fast(pool).await? {
        return Ok(clean);
    }
    let mut conn = pool.acquire().await?;
    verify_thorough(&mut conn).await
}

type AuditRow = (i64, i64, Vec<u8>, Vec<u8>);

/// The chain checked by walking `audit_log` (by number) and the events up to the sequencer's
/// checkpoint (in log order) side by side. `None` as soon as anything differs.
async fn verify_fast(pool: &PgPool) -> Result<Option<VerifyReport>, Error> {
    let mut a = pool.acquire().await?;
    let mut b = pool.acquire().await?;
    let mut ta = a.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *ta)
        .await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *ta)
        .await?;
    let mut tb = b.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tb)
        .await?;
    sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
        .execute(&mut *tb)
        .await?;
    let checkpoint = load_checkpoint(&mut ta, SEQUENCER_READER).await?;
    let events_sql = format!(
        "SELECT {STORED_COLUMNS} FROM events e \
         WHERE (e.transaction_id, e.global_position) <= ($1::text::xid8, $2) \
         ORDER BY e.transaction_id, e.global_position"
    );
    let mut audit = sqlx::query_as::<_, AuditRow>(
        "SELECT audit_seq, global_position, prev_hash, hash FROM audit_log ORDER BY audit_seq",
    )
    .fetch(&mut *ta);
    let mut events = sqlx::query_as::<_, StoredRow>(&events_sql)
        .bind(checkpoint.transaction_id.to_string())
        .bind(checkpoint.global_position)
        .fetch(&mut *tb);
    let mut count = 0u64;
    let mut expected_seq = 1i64;
    let mut running = GENESIS;
    let mut chunk: Vec<ToCheck> = Vec::with_capacity(CHUNK);
    let mut checks: std::collections::VecDeque<tokio::task::JoinHandle<Checked>> =
        Default::default();
    let mut clean = true;
    loop {
        let (row, event) = tokio::join!(audit.try_next(), events.try_next());
        let (row, event) = match (row?, event?) {
            (None, None) => break,
            (Some(row), Some(event)) => (row, stored(event)?),
            _ => {
                clean = false;
                break;
            }
        };
        let (seq, position, prev, hash) = row;
        let (prev, hash) = (to_hash(&prev)?, to_hash(&hash)?);
        if seq != expected_seq || prev != running || position != event.global_position {
            clean = false;
            break;
        }
        expected_seq += 1;
        running = hash;
        count += 1;
        chunk.push(ToCheck {
            seq,
            position,
            prev,
            hash,
            event,
        });
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            checks.push_back(tokio::task::spawn_blocking(move || check_chunk(full)));
            if checks.len() >= IN_FLIGHT {
                if let Some(first) = checks.pop_front() {
                    let checked = first
                        .await
                        .map_err(|e| Error::Busy(format!("a hash check ended: {e}")))?;
                    if !checked.problems.is_empty() {
                        clean = false;
                        break;
                    }
                }
            }
        }
    }
    if clean && !chunk.is_empty() {
        checks.push_back(tokio::task::spawn_blocking(move || check_chunk(chunk)));
    }
    while let Some(first) = checks.pop_front() {
        let checked = first
            .await
            .map_err(|e| Error::Busy(format!("a hash check ended: {e}")))?;
        clean &= checked.problems.is_empty();
    }
    drop(audit);
    drop(events);
    let _ = ta.commit().await;
    let _ = tb.commit().await;
    Ok(clean.then_some(VerifyReport {
        events: count,
        problems: Vec::new(),
    }))
}

/// The chain checked row by row from `audit_log` joined to the events, naming every problem.
async fn verify_thorough(conn: &mut PgConnection) -> Result<VerifyReport, Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let checkpoint = load_checkpoint(&mut tx, SEQUENCER_READER).await?;
    let mut report = VerifyReport::default();
    let mut mismatches: Vec<Mismatch> = Vec::new();
    let mut checks: std::collections::VecDeque<tokio::task::JoinHandle<Checked>> =
        Default::default();
    let mut collect = |checked: Checked, report: &mut VerifyReport| {
        for p in checked.problems {
            if report.problems.len() < MAX_PROBLEMS {
                report.problems.push(p);
            }
        }
        for m in checked.mismatches {
            if mismatches.len() < KEEP_MISMATCHES {
                mismatches.push(m);
            }
        }
    };
    {
        let sql = format!(
            "SELECT a.audit_seq, a.global_position, a.prev_hash, a.hash, {} \
             FROM audit_log a LEFT JOIN events e ON e.global_position = a.global_position \
             ORDER BY a.audit_seq",
            STORED_COLUMNS
        );
        let mut rows = sqlx::query_as::<_, Row>(&sql).fetch(&mut *tx);
        let mut expected_seq = 1i64;
        let mut running = GENESIS;
        let mut last_position: Option<LogPosition> = None;
        let mut chunk: Vec<ToCheck> = Vec::with_capacity(CHUNK);
        while let Some(row) = rows.try_next().await? {
            let (seq, position, prev, hash, gp, tx_id, at, aid, sq, et, ev, payload, metadata, rec) =
                row;
            report.events += 1;
            let prev = to_hash(&prev)?;
            let hash = to_hash(&hash)?;
            let mut problem = |kind, event: Option<String>, detail: String| {
                if report.problems.len() < MAX_PROBLEMS {
                    report.problems.push(Problem {
                        kind,
                        audit_seq: seq,
                        global_position: position,
                        event,
                        detail,
                    });
                }
            };
            if seq != expected_seq {
                problem(
                    ProblemKind::ChainBroken,
                    None,
                    format!("audit numbers jump from #{} to #{seq}", expected_seq - 1),
                );
            } else if prev != running {
                problem(
                    ProblemKind::ChainBroken,
                    None,
                    "its prev_hash is not the hash of the audit row before it".into(),
                );
            }
            expected_seq = seq + 1;
            running = hash;
            let (
                Some(gp),
                Some(tx_id),
                Some(at),
                Some(aid),
                Some(sq),
                Some(et),
                Some(ev),
                Some(payload),
                Some(metadata),
                Some(rec),
            ) = (gp, tx_id, at, aid, sq, et, ev, payload, metadata, rec)
            else {
                problem(
                    ProblemKind::Deleted,
                    None,
                    "the event sequenced here is no longer in the events table".into(),
                );
                continue;
            };
            let event = stored((gp, tx_id, at, aid, sq, et, ev, payload, metadata, rec))?;
            let here = LogPosition::new(event.transaction_id, event.global_position);
            if last_position.is_some_and(|last| here <= last) {
                problem(
                    ProblemKind::Reordered,
                    Some(describe(&event)),
                    "the event now sorts before the event sequenced ahead of it in the log \
                     (its transaction id was changed)"
                        .into(),
                );
            }
            last_position = Some(here);
            chunk.push(ToCheck {
                seq,
                position,
                prev,
                hash,
                event,
            });
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                checks.push_back(tokio::task::spawn_blocking(move || check_chunk(full)));
                if checks.len() >= IN_FLIGHT {
                    if let Some(first) = checks.pop_front() {
                        let checked = first
                            .await
                            .map_err(|e| Error::Busy(format!("a hash check ended: {e}")))?;
                        collect(checked, &mut report);
                    }
                }
            }
        }
        if !chunk.is_empty() {
            checks.push_back(tokio::task::spawn_blocking(move || check_chunk(chunk)));
        }
    }
    while let Some(first) = checks.pop_front() {
        let checked = first
            .await
            .map_err(|e| Error::Busy(format!("a hash check ended: {e}")))?;
        collect(checked, &mut report);
    }
    // An altered event whose content is exactly another audit row's event was moved there.
    for m in &mismatches {
        let moved_from = mismatches
            .iter()
            .find(|other| other.seq != m.seq && chain(&other.prev, &m.encoding) == other.hash);
        if let Some(other) = moved_from {
            if let Some(p) = report
                .problems
                .iter_mut()
                .find(|p| p.audit_seq == m.seq && p.kind == ProblemKind::Altered)
            {
                p.kind = ProblemKind::Reordered;
                p.detail = format!(
                    "it holds the event that was sequenced as audit #{} (events swapped or moved)",
                    other.seq
                );
            }
        }
    }
    // Events inside the sequenced part of the log without an audit number.
    type Inserted = (Option<i64>, i64, String, String, i64, String);
    let inserted: Vec<Inserted> = sqlx::query_as(
        "SELECT (SELECT min(a.audit_seq) FROM audit_log a JOIN events f USING (global_position) \
                 WHERE (f.transaction_id, f.global_position) > (e.transaction_id, e.global_position)), \
                e.global_position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type \
         FROM events e \
         WHERE (e.transaction_id, e.global_position) <= ($1::text::xid8, $2) \
           AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.global_position = e.global_position) \
         ORDER BY e.transaction_id, e.global_position LIMIT 100",
    )
    .bind(checkpoint.transaction_id.to_string())
    .bind(checkpoint.global_position)
    .fetch_all(&mut *tx)
    .await?;
    for (next_seq, position, at, aid, sq, et) in inserted {
        if report.problems.len() < MAX_PROBLEMS {
            report.problems.push(Problem {
                kind: ProblemKind::Inserted,
                audit_seq: next_seq.unwrap_or(report.events as i64 + 1),
                global_position: position,
                event: Some(format!("{at} {aid} #{sq} {et}")),
                detail: "the event has no audit number, though the sequencer has passed its \
                         place in the log (it was inserted afterwards)"
                    .into(),
            });
        }
    }
    tx.commit().await?;
    report
        .problems
        .sort_by_key(|p| (p.audit_seq, p.kind != ProblemKind::Inserted, p.kind));
    Ok(report)
}
