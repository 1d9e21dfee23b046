//! The audit log: a sequencer gives every event of the global log a contiguous number and a
//! hash chain (`audit_log`) and signs heads of it with the audit key (`audit_heads`), and the
//! tools auditors use: verify the chain against the events table and its signed heads, an
//! aggregate's history, its state as of a time or position, and exports (and API pages) that
//! can be verified offline (docs/audit.md).

pub mod canonical;
pub mod head;
pub mod heads;
pub mod offline;
pub mod pages;
pub mod query;
pub mod verifications;
pub mod verify;

use engine::log::{load_checkpoint, save_checkpoint, LogPosition};
use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::error::Error;
use crate::projection::BatchResult;
use crate::runtime::Worker;
use canonical::{chain, encode, StoredEvent, GENESIS};

pub use head::{AuditPublicKey, AuditSigner, SignedHead};
pub use heads::{HeadPolicy, HeadSigning};
pub use verify::{
    range_starts, verify, verify_in_parts, verify_with_options, Problem, ProblemKind,
    VerifyOptions, VerifyReport,
};

/// The sequencer's checkpoint (reader) name.
pub const SEQUENCER_READER: &str = "audit:sequencer";
/// The worker name of the sequencer.
pub const SEQUENCER: &str = "audit_sequencer";

pub(crate) type StoredRow = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
);

pub(crate) const STORED_COLUMNS: &str =
    "e.global_position, e.transaction_id::text, e.aggregate_type, e.aggregate_id, \
     e.sequence, e.event_type, e.event_version, e.payload::text, e.metadata::text, e.recorded_at";

pub(crate) fn stored(row: StoredRow) -> Result<StoredEvent, Error> {
    let (
        global_position,
        tx,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        recorded_at,
    ) = row;
    Ok(StoredEvent {
        global_position,
        transaction_id: tx
            .parse()
            .map_err(|e| Error::corrupt("transaction_id", e))?,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        recorded_at,
    })
}

/// Up to `limit` events after `after`, as stored (not upcast: the chain covers what is in the
/// table), below the transaction horizon, in log order.
pub async fn read_stored(
    conn: &mut PgConnection,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<StoredEvent>, Error> {
    let rows: Vec<StoredRow> = sqlx::query_as(&format!(
        "SELECT {STORED_COLUMNS} FROM events e \
         WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2) \
           AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY e.transaction_id, e.global_position LIMIT $3"
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(stored).collect()
}

/// The last link of the chain: its number and hash (0 and the genesis hash when empty).
pub async fn chain_head(conn: &mut PgConnection) -> Result<(i64, [u8; 32]), Error> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT audit_seq, hash FROM audit_log ORDER BY audit_seq DESC LIMIT 1")
            .fetch_optional(conn)
            .await?;
    match row {
        None => Ok((0, GENESIS)),
        Some((seq, hash)) => Ok((seq, to_hash(&hash)?)),
    }
}

pub(crate) fn to_hash(bytes: &[u8]) -> Result<[u8; 32], Error> {
    bytes
        .try_into()
        .map_err(|_| Error::corrupt("audit hash", format!("{} bytes, not 32", bytes.len())))
}

/// One sequencer batch in the caller's transaction: numbers and chains the next events.
pub async fn sequence_batch(conn: &mut PgConnection, limit: i64) -> Result<BatchResult, Error> {
    sequence_batch_signing(conn, limit, None).await
}

/// [`sequence_batch`], then (in the same transaction) a signed head of the chain if `heads`
/// says one is due.
pub async fn sequence_batch_signing(
    conn: &mut PgConnection,
    limit: i64,
    heads: Option<&HeadSigning>,
) -> Result<BatchResult, Error> {
    sqlx::query(&format!(
        "SELECT set_config('synchronous_commit', 'off', true), \
                pg_advisory_xact_lock({}, hashtext('audit-batch'))",
        crate::projection::LOCK_CLASS_SQL
    ))
    .execute(&mut *conn)
    .await?;
    let at = load_checkpoint(conn, SEQUENCER_READER).await?;
    let events = read_stored(conn, at, limit).await?;
    let Some(last) = events.last() else {
        if let Some(heads) = heads {
            heads.after_batch(conn, None).await?;
        }
        return Ok(BatchResult {
            events: 0,
            position: at,
            first: None,
        });
    };
    let last = LogPosition::new(last.transaction_id, last.global_position);
    let first = events
        .first()
        .map(|e| LogPosition::new(e.transaction_id, e.global_position));
    let (mut seq, mut prev) = chain_head(conn).await?;
    let n = events.len();
    let (mut seqs, mut positions, mut prevs, mut hashes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for event in &events {
        let hash = chain(&prev, &encode(event)?);
        seq += 1;
        seqs.push(seq);
        positions.push(event.global_position);
        prevs.push(prev.to_vec());
        hashes.push(hash.to_vec());
        prev = hash;
    }
    sqlx::query(
        "INSERT INTO audit_log (audit_seq, global_position, prev_hash, hash) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])",
    )
    .bind(seqs)
    .bind(positions)
    .bind(prevs)
    .bind(hashes)
    .execute(&mut *conn)
    .await?;
    save_checkpoint(conn, SEQUENCER_READER, last).await?;
    if let Some(heads) = heads {
        heads.after_batch(conn, Some((seq, prev))).await?;
    }
    Ok(BatchResult {
        events: n,
        position: last,
        first,
    })
}

/// The audit sequencer as a runtime worker (one owner across processes). With
/// [`Sequencer::signing`] it also signs heads of the chain as it grows.
#[derive(Default)]
pub struct Sequencer {
    heads: Option<HeadSigning>,
}

impl Sequencer {
    pub fn new() -> Self {
        Sequencer { heads: None }
    }

    /// A sequencer that signs a head with `signer` as `policy` says.
    pub fn signing(signer: std::sync::Arc<AuditSigner>, policy: HeadPolicy) -> Self {
        Sequencer {
            heads: Some(HeadSigning::new(signer, policy)),
        }
    }
}

impl Worker for Sequencer {
    fn name(&self) -> &'static str {
        SEQUENCER
    }

    fn reader(&self) -> String {
        SEQUENCER_READER.to_string()
    }

    fn lock_name(&self) -> String {
        "audit-sequencer".to_string()
    }

    fn batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        limit: i64,
    ) -> BoxFuture<'a, Result<BatchResult, Error>> {
        Box::pin(sequence_batch_signing(conn, limit, self.heads.as_ref()))
    }
}

/// Sequences every event committed before the call, if no other process owns the sequencer
/// (then that process does it, and this returns 0 at once). A transaction elsewhere in the
/// cluster can hold the horizon back: this waits for it up to `wait`, then returns what it
/// sequenced so far. Returns how many events were sequenced here.
pub async fn catch_up(conn: &mut PgConnection, wait: std::time::Duration) -> Result<u64, Error> {
    use sqlx::Connection;
    let owned: bool = sqlx::query_scalar(&format!(
        "SELECT pg_try_advisory_lock({}, hashtext('audit-sequencer'))",
        crate::projection::LOCK_CLASS_SQL
    ))
    .fetch_one(&mut *conn)
    .await?;
    if !owned {
        return Ok(0);
    }
    let mut total = 0u64;
    let result = async {
        let target: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM events \
             ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        let Some((tx, pos)) = target else {
            return Ok::<_, Error>(());
        };
        let target = LogPosition::new(tx.parse().map_err(|e| Error::corrupt("xid8", e))?, pos);
        let deadline = std::time::Instant::now() + wait;
        loop {
            let mut tx = conn.begin().await?;
            let batch = sequence_batch(&mut tx, 5_000).await?;
            tx.commit().await?;
            total += batch.events as u64;
            if batch.position >= target {
                return Ok(());
            }
            if batch.events == 0 {
                if std::time::Instant::now() > deadline {
                    tracing::warn!(at = %batch.position, %target,
                        "the horizon is held back; sequenced what is below it");
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    .await;
    sqlx::query(&format!(
        "SELECT pg_advisory_unlock({}, hashtext('audit-sequencer'))",
        crate::projection::LOCK_CLASS_SQL
    ))
    .execute(&mut *conn)
    .await?;
    result.map(|()| total)
}
