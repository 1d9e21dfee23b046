//! Signed heads in the database (`audit_heads`, migration 0100): the sequencer signs the chain's
//! last link every [`HeadPolicy::every_events`] events or [`HeadPolicy::interval`], whichever
//! comes first while the chain grows; `GET /v1/audit/head` signs the chain as it is when asked;
//! and [`check_heads`] holds the chain to every head ever signed, so that a rewrite behind one of
//! them — an event changed and every hash after it recomputed, which the chain alone cannot see
//! — is reported with the range it lies in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::PgConnection;

use super::canonical::{format_time, GENESIS};
use super::head::{AuditPublicKey, AuditSigner, CheckedHead, Head, HeadRange, SignedHead};
use super::verify::{Problem, ProblemKind};
use super::{chain_head, to_hash};
use crate::error::Error;

/// How often the sequencer signs a head while the chain grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadPolicy {
    /// After this many newly numbered events…
    pub every_events: i64,
    /// …or this long after the last head, whichever comes first.
    pub interval: Duration,
}

impl Default for HeadPolicy {
    fn default() -> Self {
        Self {
            every_events: 10_000,
            interval: Duration::from_secs(60),
        }
    }
}

/// The sequencer's head signing: the audit key, the policy, and what it last saw.
#[derive(Debug)]
pub struct HeadSigning {
    signer: Arc<AuditSigner>,
    policy: HeadPolicy,
    known: Mutex<Option<Known>>,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    /// The newest stored head's last number and signing time.
    head_to: i64,
    head_at: DateTime<Utc>,
    /// The chain's last number.
    chain_to: i64,
}

impl HeadSigning {
    pub fn new(signer: Arc<AuditSigner>, policy: HeadPolicy) -> Self {
        Self {
            signer,
            policy,
            known: Mutex::new(None),
        }
    }

    fn known(&self) -> Option<Known> {
        *self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, known: Known) {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = Some(known);
    }

    /// At the end of a sequencer batch, in its transaction: signs and stores a head of the whole
    /// chain if one is due. `numbered` is the chain's last link when the batch numbered events.
    pub async fn after_batch(
        &self,
        conn: &mut PgConnection,
        numbered: Option<(i64, [u8; 32])>,
    ) -> Result<Option<SignedHead>, Error> {
        let now = Utc::now();
        let mut known = match self.known() {
            Some(k) => k,
            None => {
                let latest: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT to_seq, signed_at FROM audit_heads ORDER BY to_seq DESC LIMIT 1",
                )
                .fetch_optional(&mut *conn)
                .await?;
                let (head_to, head_at) = latest.unwrap_or((0, DateTime::<Utc>::MIN_UTC));
                let (chain_to, _) = chain_head(conn).await?;
                Known {
                    head_to,
                    head_at,
                    chain_to,
                }
            }
        };
        if let Some((to, _)) = numbered {
            known.chain_to = to;
        }
        let grown = known.chain_to - known.head_to;
        let interval =
            chrono::Duration::from_std(self.policy.interval).unwrap_or(chrono::Duration::MAX);
        let due =
            grown > 0 && (grown >= self.policy.every_events || now - known.head_at >= interval);
        if !due {
            self.remember(known);
            return Ok(None);
        }
        let (to, last_hash) = match numbered {
            Some(link) if link.0 == known.chain_to => link,
            _ => chain_head(conn).await?,
        };
        if let Err(e) = newest_head_holds(conn, 1, to).await {
            // Numbering goes on (the projections and the feed depend on it); signing over a
            // rewrite never does. Logged at every batch that would sign, until it is resolved.
            tracing::error!(error = %e, "audit head not signed: the chain disagrees with a signed head");
            self.remember(known);
            return Ok(None);
        }
        let signed = self.signer.sign(
            &HeadRange {
                from: 1,
                to,
                prev_hash: GENESIS,
                last_hash,
            },
            now,
        );
        let stored = store_head(conn, &signed).await?;
        logged(&stored, "by the sequencer");
        self.remember(Known {
            head_to: to,
            head_at: now,
            chain_to: to,
        });
        Ok(Some(stored))
    }
}

/// The log line of a new head: with its number, hash and signature it is one more copy of the
/// head outside the database.
fn logged(head: &SignedHead, by: &str) {
    tracing::info!(
        to = head.head.to,
        last_hash = %head.head.last_hash,
        signed_at = %head.head.signed_at,
        signature = %head.signature,
        public_key = %head.head.public_key,
        by,
        "audit head signed"
    );
}

type HeadRow = (
    i64,
    i64,
    i64,
    Vec<u8>,
    Vec<u8>,
    DateTime<Utc>,
    Vec<u8>,
    Vec<u8>,
);

const HEAD_COLUMNS: &str =
    "h.from_seq, h.to_seq, h.count, h.prev_hash, h.last_hash, h.signed_at, h.public_key, h.signature";

fn from_row(row: HeadRow) -> SignedHead {
    let (from, to, count, prev_hash, last_hash, signed_at, public_key, signature) = row;
    SignedHead {
        head: Head {
            from,
            to,
            count,
            prev_hash: hex::encode(prev_hash),
            last_hash: hex::encode(last_hash),
            signed_at: format_time(signed_at),
            public_key: hex::encode(public_key),
        },
        signature: hex::encode(signature),
    }
}

/// Stores a head of the whole chain (`from` 1); a head already stored for the same last number
/// is kept and returned instead (two processes signing the same chain agree on its hash).
pub async fn store_head(conn: &mut PgConnection, signed: &SignedHead) -> Result<SignedHead, Error> {
    let checked = signed
        .check(None)
        .map_err(|e| Error::corrupt("a head to store", e))?;
    if checked.range.from != 1 {
        return Err(Error::corrupt(
            "a head to store",
            "only heads of the whole chain (from 1) are kept",
        ));
    }
    let signature = hex::decode(&signed.signature).map_err(|e| Error::corrupt("signature", e))?;
    sqlx::query(
        "INSERT INTO audit_heads (to_seq, from_seq, count, prev_hash, last_hash, signed_at, \
                                  public_key, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (to_seq) DO NOTHING",
    )
    .bind(checked.range.to)
    .bind(checked.range.from)
    .bind(checked.range.count())
    .bind(checked.range.prev_hash.to_vec())
    .bind(checked.range.last_hash.to_vec())
    .bind(checked.signed_at)
    .bind(checked.key.to_bytes().to_vec())
    .bind(signature)
    .execute(&mut *conn)
    .await?;
    let stored: HeadRow = sqlx::query_as(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_heads h WHERE h.to_seq = $1"
    ))
    .bind(checked.range.to)
    .fetch_one(&mut *conn)
    .await?;
    Ok(from_row(stored))
}

/// Whether the chain still has the hashes the newest stored head within `from..=to` signed
/// (at its last number and before its first): [`Error::HeadDisagrees`] if not. Checked before
/// anything new is signed, so that a rewrite behind that head is never signed over.
pub async fn newest_head_holds(conn: &mut PgConnection, from: i64, to: i64) -> Result<(), Error> {
    let head: Option<(i64, DateTime<Utc>, bool)> = sqlx::query_as(
        "SELECT h.to_seq, h.signed_at, \
                coalesce(a.hash = h.last_hash \
                         AND (h.from_seq = 1 OR p.hash = h.prev_hash), false) \
         FROM audit_heads h \
         LEFT JOIN audit_log a ON a.audit_seq = h.to_seq \
         LEFT JOIN audit_log p ON p.audit_seq = h.from_seq - 1 \
         WHERE h.to_seq BETWEEN $1 AND $2 ORDER BY h.to_seq DESC LIMIT 1",
    )
    .bind(from)
    .bind(to)
    .fetch_optional(conn)
    .await?;
    match head {
        Some((head_to, signed_at, false)) => Err(Error::HeadDisagrees(format!(
            "the chain at #{head_to} no longer has the hash the head signed at {} gives it",
            format_time(signed_at)
        ))),
        _ => Ok(()),
    }
}

/// A signed head of the chain as it is now: the stored one if the chain has not grown since
/// the last head, else a new one, stored. An empty chain gets a head of nothing (not stored).
pub async fn sign_current(
    conn: &mut PgConnection,
    signer: &AuditSigner,
) -> Result<SignedHead, Error> {
    let (to, last_hash) = chain_head(conn).await?;
    let range = HeadRange {
        from: 1,
        to,
        prev_hash: GENESIS,
        last_hash,
    };
    if to == 0 {
        return Ok(signer.sign(&range, Utc::now()));
    }
    newest_head_holds(conn, 1, to).await?;
    let stored: Option<HeadRow> = sqlx::query_as(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_heads h WHERE h.to_seq = $1"
    ))
    .bind(to)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = stored {
        let head = from_row(row);
        if head.head.public_key == signer.public_key().to_string() {
            return Ok(head);
        }
    }
    let signed = signer.sign(&range, Utc::now());
    let stored = store_head(conn, &signed).await?;
    logged(&stored, "on request");
    Ok(stored)
}

/// Stored heads after last number `after`, oldest first.
pub async fn heads_page(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<SignedHead>, Error> {
    let rows: Vec<HeadRow> = sqlx::query_as(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_heads h WHERE h.to_seq > $1 ORDER BY h.to_seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// What holding the chain to its heads found.
#[derive(Debug, Clone, Default)]
pub struct HeadsReport {
    /// Heads checked (stored ones and the ones given).
    pub checked: u64,
    /// The newest head checked that holds.
    pub newest: Option<CheckedHead>,
    /// The key the stored heads are signed with (the one given, when given).
    pub key: Option<AuditPublicKey>,
    /// The chain's last number.
    pub chain_to: i64,
    pub problems: Vec<Problem>,
}

/// A head to hold the chain to, and where it came from (`stored`, or a file an auditor saved).
#[derive(Debug, Clone)]
pub struct GivenHead {
    pub origin: String,
    pub head: SignedHead,
}

/// Holds the chain (`audit_log`, which [`super::verify`] holds to the events) to every stored
/// head and to the `given` ones: each must be signed (by `trusted` when given, else all by the
/// key of the first stored head), and the chain must still have the signed hash at the head's
/// last number and before its first. The first head that no longer holds is reported as
/// `rewritten`, with the range between the newest head before it that holds and its own last
/// number; a head beyond the chain's end as `truncated`.
pub async fn check_heads(
    conn: &mut PgConnection,
    trusted: Option<&AuditPublicKey>,
    given: &[GivenHead],
) -> Result<HeadsReport, Error> {
    let (chain_to, _) = chain_head(conn).await?;
    let mut report = HeadsReport {
        key: trusted.copied(),
        chain_to,
        ..HeadsReport::default()
    };
    let mut heads: Vec<(String, SignedHead)> = Vec::new();
    {
        let sql = format!("SELECT {HEAD_COLUMNS} FROM audit_heads h ORDER BY h.to_seq");
        let mut rows = sqlx::query_as::<_, HeadRow>(&sql).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            heads.push(("stored".into(), from_row(row)));
        }
    }
    heads.extend(given.iter().map(|g| (g.origin.clone(), g.head.clone())));
    let mut checked: Vec<(String, CheckedHead)> = Vec::with_capacity(heads.len());
    for (origin, head) in heads {
        report.checked += 1;
        let key = report.key;
        match head.check(key.as_ref()) {
            Ok(c) => {
                report.key.get_or_insert(c.key);
                checked.push((origin, c));
            }
            Err(e) => report.problems.push(Problem {
                kind: ProblemKind::BadHead,
                audit_seq: head.head.to,
                global_position: 0,
                event: None,
                detail: format!("the {origin} head of #{}: {e}", head.head.to),
            }),
        }
    }
    checked.sort_by_key(|(_, c)| c.range.to);
    let mut holds_to = 0i64;
    let mut first_broken: Option<Problem> = None;
    let mut also_broken = 0u64;
    for (origin, head) in &checked {
        let at = |seq: i64| {
            sqlx::query_as::<_, (Vec<u8>, i64)>(
                "SELECT hash, global_position FROM audit_log WHERE audit_seq = $1",
            )
            .bind(seq)
        };
        let broken = |kind, position, detail: String| Problem {
            kind,
            audit_seq: head.range.to,
            global_position: position,
            event: None,
            detail: format!("{detail} ({origin}: {head})"),
        };
        let problem = if head.range.to > chain_to {
            Some(broken(
                ProblemKind::Truncated,
                0,
                format!(
                    "the chain ends at #{chain_to}, but a signed head covers up to #{}: \
                     #{}..#{} were removed from its end",
                    head.range.to,
                    chain_to + 1,
                    head.range.to
                ),
            ))
        } else {
            let last = at(head.range.to).fetch_optional(&mut *conn).await?;
            let before = if head.range.from > 1 {
                at(head.range.from - 1)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|(h, _)| h)
            } else {
                Some(GENESIS.to_vec())
            };
            let position = last.as_ref().map_or(0, |l| l.1);
            match (last, before) {
                (Some((hash, _)), Some(prev))
                    if to_hash(&hash)? == head.range.last_hash
                        && to_hash(&prev)? == head.range.prev_hash =>
                {
                    None
                }
                (last, _) => Some(broken(
                    ProblemKind::Rewritten,
                    position,
                    format!(
                        "the chain {} at #{}, but the head signed {}: an event in #{}..#{} \
                         was changed and the chain recomputed after it",
                        last.map_or("has no link".to_string(), |(h, _)| format!(
                            "has hash {}",
                            hex::encode(h)
                        )),
                        head.range.to,
                        hex::encode(head.range.last_hash),
                        holds_to + 1,
                        head.range.to
                    ),
                )),
            }
        };
        match problem {
            None => {
                holds_to = holds_to.max(head.range.to);
                if report.newest.is_none_or(|n| n.range.to <= head.range.to) {
                    report.newest = Some(*head);
                }
            }
            Some(p) if first_broken.is_none() => first_broken = Some(p),
            Some(_) => also_broken += 1,
        }
    }
    if let Some(mut p) = first_broken {
        if also_broken > 0 {
            p.detail
                .push_str(&format!("; {also_broken} later heads do not hold either"));
        }
        report.problems.push(p);
    }
    Ok(report)
}
