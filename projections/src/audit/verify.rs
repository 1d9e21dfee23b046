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
use sqlx::{Connection, PgConnection};

use super::canonical::{chain, encode, StoredEvent, GENESIS};
use super::{stored, to_hash, SEQUENCER_READER, STORED_COLUMNS};
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

/// Verifies the whole chain in one consistent snapshot of the database.
pub async fn verify(conn: &mut PgConnection) -> Result<VerifyReport, Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let checkpoint = load_checkpoint(&mut tx, SEQUENCER_READER).await?;
    let mut report = VerifyReport::default();
    let mut mismatches: Vec<Mismatch> = Vec::new();
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
            let encoding = match encode(&event) {
                Ok(e) => e,
                Err(e) => {
                    problem(
                        ProblemKind::Altered,
                        Some(describe(&event)),
                        format!("its stored JSON no longer parses: {e}"),
                    );
                    continue;
                }
            };
            if chain(&prev, &encoding) != hash {
                problem(
                    ProblemKind::Altered,
                    Some(describe(&event)),
                    "the event no longer matches the hash it was sequenced with".into(),
                );
                if mismatches.len() < KEEP_MISMATCHES {
                    mismatches.push(Mismatch {
                        seq,
                        prev,
                        hash,
                        encoding,
                    });
                }
            }
        }
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
