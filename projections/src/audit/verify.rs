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
//!   `prev_hash` that is not the previous hash);
//! - **rewritten**, **truncated**, **bad head**: the chain no longer agrees with a signed head
//!   ([`super::heads::check_heads`]): an event was changed and every hash after it recomputed,
//!   links were removed from the end, or a head's signature does not hold.

use std::fmt;

use engine::log::{load_checkpoint, LogPosition};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use sqlx::{Connection, PgConnection, PgPool};

use super::canonical::{chain, encode, FastCanonical, RawEvent, StoredEvent, GENESIS};
use super::head::AuditPublicKey;
use super::heads::{check_heads, GivenHead, HeadsReport};
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
    Rewritten,
    Truncated,
    BadHead,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::ChainBroken => "chain broken",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Altered => "altered",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Rewritten => "rewritten",
            ProblemKind::Truncated => "truncated",
            ProblemKind::BadHead => "bad head",
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
    /// Every finding: the chain's first (in audit order), then the heads'.
    pub problems: Vec<Problem>,
    /// What holding the chain to its signed heads found (its problems are in `problems`).
    pub heads: HeadsReport,
}

/// What to hold the chain to besides the stored heads.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The audit key's public half as the auditor holds it: every head must be signed by it.
    pub public_key: Option<AuditPublicKey>,
    /// Heads saved earlier (`audit verify --head FILE`).
    pub heads: Vec<GivenHead>,
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
/// (the audit rows and the events side by side, each in its own order, split into ranges read
/// and checked in parallel); if that finds anything at all, again the thorough way, which names
/// each problem. Then holds the chain to every stored signed head ([`check_heads`]).
///
/// The future is boxed as `Send` here, where every lifetime is concrete: the API spawns it, and
/// rustc cannot always prove an unboxed `async fn` future over sqlx executors `Send` for every
/// lifetime at a distance.
pub fn verify(pool: &PgPool) -> BoxFuture<'_, Result<VerifyReport, Error>> {
    Box::pin(verify_with_options(pool, VerifyOptions::default()))
}

/// [`verify`], holding the chain also to heads an auditor saved, and every head to the audit
/// key the auditor holds.
pub fn verify_with_options(
    pool: &PgPool,
    options: VerifyOptions,
) -> BoxFuture<'_, Result<VerifyReport, Error>> {
    let parts = std::thread::available_parallelism().map_or(2, |n| n.get());
    Box::pin(verify_with(
        pool,
        (parts * PARTS_PER_CPU).clamp(2, MAX_PARTS),
        MIN_PART_ROWS,
        options,
    ))
}

/// [`verify`] with the fast pass split into exactly `parts` ranges of audit numbers (fewer only
/// when there are fewer audit rows): for tests of the range boundaries.
pub async fn verify_in_parts(pool: &PgPool, parts: usize) -> Result<VerifyReport, Error> {
    verify_with(pool, parts, 1, VerifyOptions::default()).await
}

async fn verify_with(
    pool: &PgPool,
    parts: usize,
    min_part_rows: i64,
    options: VerifyOptions,
) -> Result<VerifyReport, Error> {
    let mut report = match verify_fast(pool, parts, min_part_rows).await? {
        Some(clean) => clean,
        None => {
            tracing::info!("verify: the fast pass found a difference; checking row by row");
            let mut conn = pool.acquire().await?;
            verify_thorough(&mut conn).await?
        }
    };
    let mut conn = pool.acquire().await?;
    let heads = check_heads(&mut conn, options.public_key.as_ref(), &options.heads).await?;
    for p in &heads.problems {
        if report.problems.len() < MAX_PROBLEMS {
            report.problems.push(p.clone());
        }
    }
    report.heads = heads;
    Ok(report)
}

/// Ranges of the fast pass per CPU, at most overall (each takes two connections), and the fewest
/// audit rows worth a range of its own.
const PARTS_PER_CPU: usize = 2;
const MAX_PARTS: usize = 4;
const MIN_PART_ROWS: i64 = 50_000;

/// For the range readers: walk the indexes in order (never a bitmap scan and a sort, which
/// `audit_log` gets when its statistics are stale, spilling to disk), and no JIT (loading it costs
/// each new connection more than it saves on these plain scans).
const READER_SETTINGS: [&str; 3] = [
    "SET LOCAL jit = off",
    "SET LOCAL enable_sort = off",
    "SET LOCAL enable_bitmapscan = off",
];

/// The first audit number of each range but the first (which starts at the beginning): `parts`
/// ranges of (nearly) equal size over audit numbers `1..=last`.
pub fn range_starts(last: i64, parts: usize) -> Vec<i64> {
    let parts = (parts.max(1) as i64).min(last.max(1));
    (1..parts).map(|i| 1 + i * last / parts).collect()
}

/// How one range of the fast pass ended.
#[derive(Debug, Default)]
struct RangeEnd {
    /// The first audit row's number and `prev_hash`, the last one's number and hash.
    first: Option<(i64, [u8; 32])>,
    last: Option<(i64, [u8; 32])>,
    rows: u64,
    clean: bool,
}

/// The chain checked by walking `audit_log` (by number) and the events up to the sequencer's
/// checkpoint (in log order) side by side, in `parts` ranges at once, each on two connections
/// of its own in one exported snapshot. Range `i` holds the audit numbers from `start[i]` up to
/// the next range's start, and the events from the log position of `start[i]`'s event up to the
/// next range's: when nothing was tampered with, the two line up row for row, and the ranges
/// together are exactly the whole chain and the whole sequenced log, so checking each range's
/// rows pairwise and the seams between ranges (numbers follow on, `prev_hash` is the previous
/// range's last hash) is the same check as one walk from the start. `None` as soon as anything
/// differs (or a range start's event is gone, or the starts are out of log order).
async fn verify_fast(
    pool: &PgPool,
    parts: usize,
    min_part_rows: i64,
) -> Result<Option<VerifyReport>, Error> {
    let options = pool.connect_options();
    let mut first = PgConnection::connect_with(&options).await?;
    begin_reader(&mut first, None).await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut first)
        .await?;
    let checkpoint = load_checkpoint(&mut first, SEQUENCER_READER).await?;
    let last: Option<i64> = sqlx::query_scalar("SELECT max(audit_seq) FROM audit_log")
        .fetch_one(&mut first)
        .await?;
    let last = last.unwrap_or(0);
    let parts = parts.min((last / min_part_rows.max(1)).max(1) as usize);
    let starts = range_starts(last, parts);
    let found: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT a.audit_seq, e.transaction_id::text, e.global_position \
         FROM audit_log a JOIN events e ON e.global_position = a.global_position \
         WHERE a.audit_seq = ANY($1) ORDER BY a.audit_seq",
    )
    .bind(&starts)
    .fetch_all(&mut first)
    .await?;
    let mut bounds: Vec<LogPosition> = Vec::with_capacity(found.len());
    for (seq, tx, position) in &found {
        let here = LogPosition::new(
            tx.parse()
                .map_err(|e| Error::corrupt("transaction_id", e))?,
            *position,
        );
        if bounds.last().is_some_and(|b| *b >= here) || !starts.contains(seq) {
            return Ok(None);
        }
        bounds.push(here);
    }
    if bounds.len() != starts.len() {
        return Ok(None);
    }
    let n = starts.len() + 1;
    // Two connections per range; if the server refuses that many, the thorough pass (one
    // pooled connection) does the whole check instead.
    let others = futures::future::try_join_all(
        (1..2 * n).map(|_| open_reader((*options).clone(), snapshot.clone())),
    )
    .await;
    let mut others = match others {
        Ok(others) => others,
        Err(e) => {
            tracing::warn!(error = %e, "verify: could not open a connection per range");
            return Ok(None);
        }
    };
    others.insert(0, first);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(n);
    let mut conns = others.into_iter();
    let xid8 = |p: LogPosition| format!("('{}'::xid8, {})", p.transaction_id, p.global_position);
    for i in 0..n {
        let mut audit_where = Vec::new();
        let mut events_where = vec![format!(
            "(transaction_id, global_position) <= {}",
            xid8(checkpoint)
        )];
        if i > 0 {
            audit_where.push(format!("audit_seq >= {}", starts[i - 1]));
            events_where.push(format!(
                "(transaction_id, global_position) >= {}",
                xid8(bounds[i - 1])
            ));
        }
        if i + 1 < n {
            audit_where.push(format!("audit_seq < {}", starts[i]));
            events_where.push(format!(
                "(transaction_id, global_position) < {}",
                xid8(bounds[i])
            ));
        }
        let audit_sql = format!(
            "COPY (SELECT audit_seq, global_position, prev_hash, hash FROM audit_log {} \
             ORDER BY audit_seq) TO STDOUT (FORMAT binary)",
            if audit_where.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", audit_where.join(" AND "))
            }
        );
        let events_sql = format!(
            "COPY (SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, \
                          event_version, payload, metadata, recorded_at \
                   FROM events WHERE {} ORDER BY transaction_id, global_position) \
             TO STDOUT (FORMAT binary)",
            events_where.join(" AND ")
        );
        let (Some(a), Some(e)) = (conns.next(), conns.next()) else {
            return Err(Error::Busy("verify: a connection went missing".into()));
        };
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let end = check_range(a, e, &audit_sql, &events_sql, &stop).await;
            if !matches!(&end, Ok(end) if end.clean) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            end
        }));
    }
    let mut ends = Vec::with_capacity(n);
    for task in tasks {
        ends.push(
            task.await
                .map_err(|e| Error::Busy(format!("a verify range ended: {e}")))??,
        );
    }
    // The seams: each range starts where the one before it ended.
    let mut expected = (1i64, GENESIS);
    let mut events = 0u64;
    for end in &ends {
        if !end.clean {
            return Ok(None);
        }
        match (end.first, end.last) {
            (Some(first), Some(last)) if first == expected => {
                expected = (last.0 + 1, last.1);
            }
            (None, None) if n == 1 => {}
            _ => return Ok(None),
        }
        events += end.rows;
    }
    Ok(Some(VerifyReport {
        events,
        ..VerifyReport::default()
    }))
}

/// A reading connection in the exported `snapshot`. (A named function rather than an async
/// block in a closure: the block's future is not provably `Send` for every lifetime, which the
/// API's `tokio::spawn` of `verify` needs.)
async fn open_reader(
    options: sqlx::postgres::PgConnectOptions,
    snapshot: String,
) -> Result<PgConnection, Error> {
    let mut conn = PgConnection::connect_with(&options).await?;
    begin_reader(&mut conn, Some(&snapshot)).await?;
    Ok(conn)
}

/// Opens a read-only repeatable-read transaction (in `snapshot` if given) with the readers'
/// settings. One statement at a time: sqlx 0.8.6's `raw_sql(…).execute` future is not `Send`
/// for every lifetime, so a caller could no longer spawn `verify` (ADR 0004).
async fn begin_reader(conn: &mut PgConnection, snapshot: Option<&str>) -> Result<(), Error> {
    let mut statements = vec!["BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_string()];
    if let Some(snapshot) = snapshot {
        statements.push(format!("SET TRANSACTION SNAPSHOT '{snapshot}'"));
    }
    statements.extend(READER_SETTINGS.iter().map(|s| s.to_string()));
    for statement in &statements {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    Ok(())
}

/// One range of the fast pass: its audit rows and its events, pairwise.
async fn check_range(
    mut audit_conn: PgConnection,
    mut events_conn: PgConnection,
    audit_sql: &str,
    events_sql: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<RangeEnd, Error> {
    let mut end = RangeEnd::default();
    let mut audit = CopyRows::new(audit_conn.copy_out_raw(audit_sql).await?);
    let mut events = CopyRows::new(events_conn.copy_out_raw(events_sql).await?);
    let mut fast = FastCanonical::default();
    let mut encoding = Vec::with_capacity(1024);
    let mut next: Option<(i64, [u8; 32])> = None;
    loop {
        let (has_row, has_event) = (audit.next().await?, events.next().await?);
        match (has_row, has_event) {
            (false, false) => break,
            (true, true) => {}
            _ => return Ok(end),
        }
        let [seq, position, prev, hash] = fields(audit.row(), "audit row")?;
        let (seq, position) = (int8(seq)?, int8(position)?);
        let (prev, hash) = (to_hash(prev)?, to_hash(hash)?);
        match next {
            None => end.first = Some((seq, prev)),
            Some(next) if next == (seq, prev) => {}
            Some(_) => return Ok(end),
        }
        let [gp, at, aid, sq, et, ev, payload, metadata, rec] = fields(events.row(), "event")?;
        let event = RawEvent {
            global_position: int8(gp)?,
            aggregate_type: text(at)?,
            aggregate_id: text(aid)?,
            sequence: int8(sq)?,
            event_type: text(et)?,
            event_version: text(ev)?,
            payload: text(payload)?,
            metadata: text(metadata)?,
            recorded_at: int8(rec)?,
        };
        if event.global_position != position
            || event.encode_into(&mut fast, &mut encoding).is_err()
            || chain(&prev, &encoding) != hash
        {
            return Ok(end);
        }
        next = Some((seq + 1, hash));
        end.last = Some((seq, hash));
        end.rows += 1;
        if end.rows % 4_096 == 0 && stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(end);
        }
    }
    end.clean = true;
    drop((audit, events));
    let _ = audit_conn.close().await;
    let _ = events_conn.close().await;
    Ok(end)
}

fn int8(bytes: &[u8]) -> Result<i64, Error> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::corrupt("a bigint", format!("{} bytes", bytes.len())))?;
    Ok(i64::from_be_bytes(bytes))
}

fn text(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|e| Error::corrupt("a text column", e))
}

/// The `N` fields of a binary `COPY` row, none of them NULL.
fn fields<'a, const N: usize>(row: &'a [u8], what: &str) -> Result<[&'a [u8]; N], Error> {
    let bad = |why: &str| Error::corrupt(format!("a COPY row ({what})"), why);
    if row.len() < 2 || i16::from_be_bytes([row[0], row[1]]) as usize != N {
        return Err(bad("wrong number of fields"));
    }
    let mut out: [&[u8]; N] = [&[]; N];
    let mut at = 2;
    for slot in &mut out {
        let len = row
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("truncated"))?;
        at += 4;
        let len = usize::try_from(len).map_err(|_| bad("a NULL"))?;
        *slot = row.get(at..at + len).ok_or_else(|| bad("truncated"))?;
        at += len;
    }
    Ok(out)
}

/// The rows of a `COPY … TO STDOUT (FORMAT binary)`, one at a time, whatever the chunking.
struct CopyRows<S> {
    stream: S,
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start, and the current row.
    at: usize,
    row: (usize, usize),
    header: bool,
    ended: bool,
}

const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl<S, B> CopyRows<S>
where
    S: futures::Stream<Item = Result<B, sqlx::Error>> + Unpin,
    B: AsRef<[u8]>,
{
    fn new(stream: S) -> Self {
        CopyRows {
            stream,
            buf: Vec::with_capacity(64 * 1024),
            at: 0,
            row: (0, 0),
            header: false,
            ended: false,
        }
    }

    /// The current row (after `next` returned `true`).
    fn row(&self) -> &[u8] {
        &self.buf[self.row.0..self.row.1]
    }

    /// Moves to the next row; `false` at the end of the data.
    async fn next(&mut self) -> Result<bool, Error> {
        let bad = |why: &str| Error::corrupt("the COPY data", why);
        loop {
            if self.ended {
                return Ok(false);
            }
            let unread = &self.buf[self.at..];
            if !self.header {
                if unread.len() >= COPY_SIGNATURE.len() + 8 {
                    if &unread[..COPY_SIGNATURE.len()] != COPY_SIGNATURE {
                        return Err(bad("not binary COPY data"));
                    }
                    let ext = &unread[COPY_SIGNATURE.len() + 4..COPY_SIGNATURE.len() + 8];
                    let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as usize;
                    let len = COPY_SIGNATURE.len() + 8 + ext;
                    if unread.len() >= len {
                        self.at += len;
                        self.header = true;
                        continue;
                    }
                }
            } else if let Some(len) = row_len(unread) {
                if len == 2 {
                    // The trailer.
                    self.ended = true;
                    return Ok(false);
                }
                self.row = (self.at, self.at + len);
                self.at += len;
                return Ok(true);
            }
            // Needs more data.
            if self.at == self.buf.len() {
                self.buf.clear();
                self.at = 0;
            } else if self.at > 0 {
                self.buf.drain(..self.at);
                self.at = 0;
            }
            match self.stream.try_next().await? {
                Some(chunk) => self.buf.extend_from_slice(chunk.as_ref()),
                None => return Err(bad("it ended without its trailer")),
            }
        }
    }
}

/// The length of the complete row (or 2 for the trailer) at the start of `b`, `None` if `b`
/// does not hold all of it yet.
fn row_len(b: &[u8]) -> Option<usize> {
    let count = i16::from_be_bytes([*b.first()?, *b.get(1)?]);
    if count < 0 {
        return Some(2);
    }
    let mut at = 2;
    for _ in 0..count {
        let len = b.get(at..at + 4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4 + usize::try_from(len).unwrap_or(0);
    }
    (at <= b.len()).then_some(at)
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
