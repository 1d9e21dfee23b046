//! Checking the chain without the database: an export file (`audit verify-export`) or the API's
//! pages (`audit verify-api`), line by line, against the signed heads that come with it and any
//! an auditor saved earlier (docs/audit.md, "Verifying an export offline").
//!
//! A line carries exactly the fields the chain covers (the eight of the event's encoding, its
//! audit number, `prev_hash` and `hash`) and `global_position`, which locates the event in the
//! live log; any other field, at any depth a repeated key, is refused, naming the line. An
//! export ends with its own signed head (`{"head": …, "signature": …}`), which states the first
//! and last number, the count, the hash before the first line and the last line's hash: a line
//! removed at the start, at the end or in the middle, or added after the head, is reported with
//! where it happened.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::canonical::{chain, encode_parts, format_time};
use super::head::{hex_exact, AuditPublicKey, CheckedHead, SignedHead};

/// One line of an export, and one entry of `GET /v1/audit/log`: the event as hashed, its number,
/// and the hashes that chain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    pub audit_seq: i64,
    /// Where the event sits in the live log (`events.global_position`); not covered by the hash.
    pub global_position: i64,
    /// The previous line's hash (32 zero bytes before the first), hex.
    pub prev_hash: String,
    /// sha256(prev_hash ‖ the event's canonical encoding), hex.
    pub hash: String,
    /// The event's fields as hashed; all `null` if the event is gone from the event store
    /// (verification then fails on it).
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

impl ExportLine {
    /// `account tg:1 #3 FundsCredited`, or `the missing event` when it is gone.
    pub fn describe(&self) -> String {
        match (&self.aggregate_type, &self.aggregate_id, &self.event_type) {
            (Some(t), Some(id), Some(e)) => format!(
                "{t} {id} #{} {e}",
                self.sequence.map_or("?".into(), |s| s.to_string())
            ),
            _ => "the missing event".into(),
        }
    }
}

/// What an offline check found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// The line is not the export format (not JSON, a repeated key, a wrong type…).
    Malformed,
    /// A field the chain does not cover.
    AddedField,
    /// The event does not match its hash.
    Altered,
    /// The event's fields are null: it is gone from the events table.
    Deleted,
    /// Numbers jump: lines were removed in the middle.
    Removed,
    /// Numbers go back or repeat.
    OutOfOrder,
    /// A `prev_hash` is not the previous line's hash.
    ChainBroken,
    /// Lines are missing at the start or the end of what the signed head covers, or the
    /// export has no signed head at its end.
    Truncated,
    /// Lines that no signed head covers were added.
    Extended,
    /// The chain no longer has the hash a signed head gives it.
    Rewritten,
    /// A head whose form, signature or key does not hold.
    BadHead,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Malformed => "malformed",
            FindingKind::AddedField => "added field",
            FindingKind::Altered => "altered",
            FindingKind::Deleted => "deleted",
            FindingKind::Removed => "removed",
            FindingKind::OutOfOrder => "out of order",
            FindingKind::ChainBroken => "chain broken",
            FindingKind::Truncated => "truncated",
            FindingKind::Extended => "extended",
            FindingKind::Rewritten => "rewritten",
            FindingKind::BadHead => "bad head",
        })
    }
}

/// The first problem found: its kind, where (`line 7 (audit #12, account tg:1 #3
/// FundsCredited)` in a file, `audit #12 (…)` in the API's pages) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub at: String,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.kind, self.at, self.detail)
    }
}

fn finding(kind: FindingKind, at: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        kind,
        at: at.into(),
        detail: detail.into(),
    }
}

/// One record of an export file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Event(Box<ExportLine>),
    Head(SignedHead),
}

/// A JSON value that refuses a key repeated in any object (a second value for a key would be
/// a field the hash does not cover: the hash is computed over the value a parser keeps).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Strict(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// Parses JSON text, refusing a key repeated in any object.
pub fn parse_strict(text: &str) -> Result<Value, String> {
    serde_json::from_str::<Strict>(text)
        .map(|Strict(v)| v)
        .map_err(|e| e.to_string())
}

/// Parses one line of an export: an event line or a signed head, with nothing the chain does not
/// cover. `at` names the line in the error.
pub fn parse_record(text: &str, at: &str) -> Result<Record, Finding> {
    let value = parse_strict(text).map_err(|e| finding(FindingKind::Malformed, at, e))?;
    record_from_value(value, at)
}

/// [`parse_record`] of a value parsed with [`parse_strict`] (an entry of an API page).
pub fn record_from_value(value: Value, at: &str) -> Result<Record, Finding> {
    let is_head = value.as_object().is_some_and(|o| o.contains_key("head"));
    let refused = |e: serde_json::Error| {
        let text = e.to_string();
        if text.starts_with("unknown field") {
            finding(
                FindingKind::AddedField,
                at,
                format!("{text}: the chain does not cover it, so it is refused"),
            )
        } else {
            finding(FindingKind::Malformed, at, text)
        }
    };
    if is_head {
        serde_json::from_value::<SignedHead>(value)
            .map(Record::Head)
            .map_err(refused)
    } else {
        serde_json::from_value::<ExportLine>(value)
            .map(|l| Record::Event(Box::new(l)))
            .map_err(refused)
    }
}

/// The last line checked.
#[derive(Debug, Clone)]
struct Link {
    seq: i64,
    hash: [u8; 32],
    at: String,
}

/// What an offline check vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineSummary {
    /// Event lines checked, and their first and last audit numbers.
    pub lines: u64,
    pub first: i64,
    pub last: i64,
    /// Signed heads that held (the export's own, those given, the API's).
    pub heads_held: u64,
    /// The newest of them.
    pub newest: Option<CheckedHead>,
    /// The key the heads are signed with, and whether the auditor gave it.
    pub key: Option<AuditPublicKey>,
    pub key_given: bool,
    /// Heads given that this check could not reach (before the first line or after the last).
    pub notes: Vec<String>,
}

impl OfflineSummary {
    /// An empty chain, as its signed head (if any) says.
    pub fn empty(head: Option<CheckedHead>) -> Self {
        Self {
            lines: 0,
            first: 0,
            last: 0,
            heads_held: u64::from(head.is_some()),
            newest: head,
            key: head.map(|h| h.key),
            key_given: false,
            notes: Vec::new(),
        }
    }
}

impl fmt::Display for OfflineSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ok {} lines", self.lines)?;
        if self.lines > 0 {
            write!(f, " (audit #{}..#{})", self.first, self.last)?;
        }
        if let Some(newest) = &self.newest {
            write!(f, "; {}, the newest {newest}", heads_hold(self.heads_held))?;
        }
        match (&self.key, self.key_given) {
            (Some(_), true) => write!(f, "\nheads signed by the audit key you gave")?,
            (Some(key), false) => write!(
                f,
                "\nheads signed by key {key} (fingerprint {}): compare it with the audit key \
                 you hold, or give it with --public-key",
                key.fingerprint()
            )?,
            (None, _) => {}
        }
        for note in &self.notes {
            write!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

/// `1 signed head holds`, `3 signed heads hold`.
pub fn heads_hold(n: u64) -> String {
    if n == 1 {
        "1 signed head holds".into()
    } else {
        format!("{n} signed heads hold")
    }
}

/// How the checked lines must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// An export: the last line is its signed head, covering every event line.
    SignedHead,
    /// The API's pages up to a head given with [`OfflineCheck::expect`]: every head given must be
    /// reached (one beyond the last line means the chain was cut short).
    ChainEnd,
}

/// The state of one offline check; feed it lines in order, then [`OfflineCheck::finish`].
#[derive(Debug)]
pub struct OfflineCheck {
    trusted: Option<AuditPublicKey>,
    key: Option<AuditPublicKey>,
    /// Heads to meet, by their last number.
    expected: BTreeMap<i64, Vec<(String, CheckedHead)>>,
    first: Option<(i64, [u8; 32])>,
    last: Option<Link>,
    lines: u64,
    /// The newest head met in the stream (the export's own, when it ends the file), with the
    /// number of lines checked when it came.
    trailer: Option<(CheckedHead, u64, String)>,
    /// The newest given head that held, to narrow where a rewrite is.
    held_to: Option<i64>,
    heads_held: u64,
    newest: Option<CheckedHead>,
}

impl OfflineCheck {
    /// `trusted`: the audit key as the auditor holds it; every head must then be signed by it.
    pub fn new(trusted: Option<AuditPublicKey>) -> Self {
        Self {
            trusted,
            key: trusted,
            expected: BTreeMap::new(),
            first: None,
            last: None,
            lines: 0,
            trailer: None,
            held_to: None,
            heads_held: 0,
            newest: None,
        }
    }

    fn check_head(&mut self, origin: &str, head: &SignedHead) -> Result<CheckedHead, Finding> {
        let checked = head.check(self.key.as_ref()).map_err(|e| {
            finding(
                FindingKind::BadHead,
                format!("{origin} (the head of #{})", head.head.to),
                e.to_string(),
            )
        })?;
        self.key.get_or_insert(checked.key);
        Ok(checked)
    }

    /// A head to hold the lines to when the line with its last number comes (one the auditor
    /// saved, or one the API serves); `origin` names it in findings.
    pub fn expect(&mut self, origin: &str, head: &SignedHead) -> Result<(), Finding> {
        let checked = self.check_head(origin, head)?;
        self.expected
            .entry(checked.range.to)
            .or_default()
            .push((origin.to_string(), checked));
        Ok(())
    }

    fn held(&mut self, head: CheckedHead) {
        self.heads_held += 1;
        self.held_to = Some(self.held_to.map_or(head.range.to, |t| t.max(head.range.to)));
        if self
            .newest
            .is_none_or(|n| (n.range.to, n.signed_at) <= (head.range.to, head.signed_at))
        {
            self.newest = Some(head);
        }
    }

    /// Where a change lies, given that the hash at `to` is not the signed one.
    fn rewritten_range(&self, to: i64) -> String {
        match self.held_to.filter(|t| *t < to) {
            Some(held) => format!("an event in #{}..#{to}", held + 1),
            None => format!("an event at or before #{to}"),
        }
    }

    /// Holds the head to the chain as checked so far: it must end at the last line.
    fn meet(&self, origin: &str, head: &CheckedHead, last: &Link) -> Result<(), Finding> {
        if head.range.last_hash != last.hash {
            return Err(finding(
                FindingKind::Rewritten,
                last.at.clone(),
                format!(
                    "its hash is {}, but {head} ({origin}) gives #{} the hash {}: {} was \
                     changed and the chain recomputed after it",
                    hex::encode(last.hash),
                    head.range.to,
                    hex::encode(head.range.last_hash),
                    self.rewritten_range(head.range.to)
                ),
            ));
        }
        if let Some((first_seq, first_prev)) = self.first {
            if head.range.from == first_seq && head.range.prev_hash != first_prev {
                return Err(finding(
                    FindingKind::Rewritten,
                    last.at.clone(),
                    format!(
                        "the first line's prev_hash is {}, but {head} ({origin}) gives {}: the \
                         chain before #{first_seq} was changed",
                        hex::encode(first_prev),
                        hex::encode(head.range.prev_hash)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One line of an export file (`line` counts from 1).
    pub fn record(&mut self, line: u64, text: &str) -> Result<(), Finding> {
        let at = format!("line {line}");
        match parse_record(text, &at)? {
            Record::Event(l) => {
                let at = format!("line {line} (audit #{}, {})", l.audit_seq, l.describe());
                self.event(at, &l)
            }
            Record::Head(h) => self.stream_head(&at, &h),
        }
    }

    /// A signed head within the lines: it states the chain up to the line before it.
    fn stream_head(&mut self, at: &str, head: &SignedHead) -> Result<(), Finding> {
        let checked = self.check_head(at, head)?;
        let Some(last) = self.last.clone() else {
            return Err(finding(
                FindingKind::Truncated,
                at,
                format!("{checked} comes before any event line: the lines it covers were removed"),
            ));
        };
        if checked.range.to > last.seq {
            return Err(finding(
                FindingKind::Truncated,
                at,
                format!(
                    "{checked}, but the line before it is audit #{}: #{}..#{} were removed \
                     before the head",
                    last.seq,
                    last.seq + 1,
                    checked.range.to
                ),
            ));
        }
        if checked.range.to < last.seq {
            return Err(finding(
                FindingKind::Extended,
                at,
                format!(
                    "{checked}, but lines up to audit #{} come before it: #{}..#{} were added",
                    last.seq,
                    checked.range.to + 1,
                    last.seq
                ),
            ));
        }
        self.meet(at, &checked, &last)?;
        let first = self.first.map_or(last.seq, |f| f.0);
        if checked.range.from < first {
            return Err(finding(
                FindingKind::Truncated,
                at,
                format!(
                    "{checked}, but the first line is audit #{first}: #{}..#{} were removed \
                     from the start",
                    checked.range.from,
                    first - 1
                ),
            ));
        }
        if checked.range.from > first {
            return Err(finding(
                FindingKind::Extended,
                at,
                format!(
                    "{checked}, but the lines start at audit #{first}: #{first}..#{} were \
                     added before what it covers",
                    checked.range.from - 1
                ),
            ));
        }
        self.held(checked);
        self.trailer = Some((checked, self.lines, at.to_string()));
        Ok(())
    }

    /// One event line (an export's, or an API page's entry); `at` names it.
    pub fn event(&mut self, at: String, l: &ExportLine) -> Result<(), Finding> {
        let prev: [u8; 32] = hex_exact(&l.prev_hash).ok_or_else(|| {
            finding(
                FindingKind::Malformed,
                &at,
                "prev_hash is not 32 bytes of lower-case hex",
            )
        })?;
        let hash: [u8; 32] = hex_exact(&l.hash).ok_or_else(|| {
            finding(
                FindingKind::Malformed,
                &at,
                "hash is not 32 bytes of lower-case hex",
            )
        })?;
        match &self.last {
            None => self.first = Some((l.audit_seq, prev)),
            Some(last) => {
                if l.audit_seq > last.seq + 1 {
                    return Err(finding(
                        FindingKind::Removed,
                        &at,
                        format!(
                            "it follows audit #{}: #{}..#{} were removed",
                            last.seq,
                            last.seq + 1,
                            l.audit_seq - 1
                        ),
                    ));
                }
                if l.audit_seq != last.seq + 1 {
                    return Err(finding(
                        FindingKind::OutOfOrder,
                        &at,
                        format!("it follows audit #{}", last.seq),
                    ));
                }
                if prev != last.hash {
                    return Err(finding(
                        FindingKind::ChainBroken,
                        &at,
                        "its prev_hash is not the previous line's hash",
                    ));
                }
            }
        }
        let (Some(et), Some(ev), Some(agg), Some(id), Some(sq), Some(p), Some(m), Some(rec)) = (
            &l.event_type,
            &l.event_version,
            &l.aggregate_type,
            &l.aggregate_id,
            l.sequence,
            &l.payload,
            &l.metadata,
            &l.recorded_at,
        ) else {
            return Err(finding(
                FindingKind::Deleted,
                &at,
                "the event is missing (its fields are null)",
            ));
        };
        let recorded_at = DateTime::parse_from_rfc3339(rec)
            .map_err(|e| finding(FindingKind::Malformed, &at, format!("recorded_at: {e}")))?
            .with_timezone(&Utc);
        if &format_time(recorded_at) != rec {
            return Err(finding(
                FindingKind::Malformed,
                &at,
                "recorded_at is not in the canonical form",
            ));
        }
        let encoding = encode_parts(et, ev, agg, id, sq, p, m, recorded_at);
        if chain(&prev, &encoding) != hash {
            return Err(finding(
                FindingKind::Altered,
                &at,
                "the event does not match its hash",
            ));
        }
        let link = Link {
            seq: l.audit_seq,
            hash,
            at,
        };
        if let Some(heads) = self.expected.remove(&l.audit_seq) {
            for (origin, head) in heads {
                self.meet(&origin, &head, &link)?;
                self.held(head);
            }
        }
        self.last = Some(link);
        self.lines += 1;
        Ok(())
    }

    /// After the last line: how the lines must end, and what the heads given could not reach.
    pub fn finish(self, ending: Ending) -> Result<OfflineSummary, Finding> {
        let Some(last) = self.last.clone() else {
            return Err(finding(
                FindingKind::Truncated,
                "the input",
                "it has no event lines",
            ));
        };
        let first = self.first.map_or(last.seq, |f| f.0);
        let mut notes = Vec::new();
        for (origin, head) in self.expected.values().flatten() {
            if head.range.to < first {
                notes.push(format!(
                    "{head} ({origin}) was not checked: it ends before audit #{first}"
                ));
            } else if ending == Ending::ChainEnd {
                return Err(finding(
                    FindingKind::Truncated,
                    format!("after audit #{}", last.seq),
                    format!(
                        "the chain ends at #{}, but {head} ({origin}) covers up to #{}: \
                         #{}..#{} were removed from its end",
                        last.seq,
                        head.range.to,
                        last.seq + 1,
                        head.range.to
                    ),
                ));
            } else {
                notes.push(format!(
                    "{head} ({origin}) was not checked: it ends after audit #{}",
                    last.seq
                ));
            }
        }
        if ending == Ending::SignedHead {
            match &self.trailer {
                None => {
                    return Err(finding(
                        FindingKind::Truncated,
                        format!("after {}", last.at),
                        "the export does not end with its signed head: its last lines (at \
                         least the head) were removed",
                    ))
                }
                Some((head, lines, at)) if *lines < self.lines => {
                    return Err(finding(
                        FindingKind::Extended,
                        format!("after {at}"),
                        format!(
                            "#{}..#{} come after the export's signed head, which ends at #{}: \
                             they were added",
                            head.range.to + 1,
                            last.seq,
                            head.range.to
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(OfflineSummary {
            lines: self.lines,
            first,
            last: last.seq,
            heads_held: self.heads_held,
            newest: self.newest,
            key: self.key,
            key_given: self.trusted.is_some(),
            notes,
        })
    }
}

/// Verifies an export: every line in order, ending with its signed head, held to the heads
/// given besides. Returns what it vouches for, or the first finding.
pub fn verify_export(
    input: impl BufRead,
    trusted: Option<AuditPublicKey>,
    saved: &[(String, SignedHead)],
) -> Result<OfflineSummary, Finding> {
    let mut check = OfflineCheck::new(trusted);
    for (origin, head) in saved {
        check.expect(origin, head)?;
    }
    for (i, line) in input.lines().enumerate() {
        let n = i as u64 + 1;
        let line =
            line.map_err(|e| finding(FindingKind::Malformed, format!("line {n}"), e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        check.record(n, &line)?;
    }
    check.finish(Ending::SignedHead)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::canonical::GENESIS;
    use crate::audit::head::{AuditSigner, HeadRange};

    fn signer() -> AuditSigner {
        AuditSigner::from_seed(&[9u8; 32])
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05.000123Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Event lines 1..=n of a small chain (their JSON values).
    fn chain_of(n: i64) -> Vec<ExportLine> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|i| {
                let payload = json!({"FundsCredited": {"account_id": "tg:1", "amount": i * 100}});
                let metadata = json!({"actor_subject": "bot-1", "actor_role": "bot"});
                let encoding = encode_parts(
                    "FundsCredited",
                    "1.0",
                    "account",
                    "tg:1",
                    i,
                    &payload,
                    &metadata,
                    at(),
                );
                let hash = chain(&prev, &encoding);
                let line = ExportLine {
                    audit_seq: i,
                    global_position: 10 * i,
                    prev_hash: hex::encode(prev),
                    hash: hex::encode(hash),
                    event_type: Some("FundsCredited".into()),
                    event_version: Some("1.0".into()),
                    aggregate_type: Some("account".into()),
                    aggregate_id: Some("tg:1".into()),
                    sequence: Some(i),
                    payload: Some(payload),
                    metadata: Some(metadata),
                    recorded_at: Some(format_time(at())),
                };
                prev = hash;
                line
            })
            .collect()
    }

    /// Every hash recomputed after an edit, as someone with write access to the chain could.
    fn recompute(lines: &mut [ExportLine]) {
        let mut prev = GENESIS;
        for l in lines {
            l.prev_hash = hex::encode(prev);
            let encoding = encode_parts(
                "FundsCredited",
                "1.0",
                "account",
                "tg:1",
                l.sequence.unwrap(),
                l.payload.as_ref().unwrap(),
                l.metadata.as_ref().unwrap(),
                at(),
            );
            prev = chain(&prev, &encoding);
            l.hash = hex::encode(prev);
        }
    }

    fn head_over(lines: &[ExportLine], signed_at: DateTime<Utc>) -> SignedHead {
        let (first, last) = (&lines[0], &lines[lines.len() - 1]);
        signer().sign(
            &HeadRange {
                from: first.audit_seq,
                to: last.audit_seq,
                prev_hash: hex_exact(&first.prev_hash).unwrap(),
                last_hash: hex_exact(&last.hash).unwrap(),
            },
            signed_at,
        )
    }

    /// An export of audit numbers `from..=to` of a chain of `n`, as text lines.
    fn export(n: i64, from: i64, to: i64) -> Vec<String> {
        let all = chain_of(n);
        let lines = &all[(from - 1) as usize..to as usize];
        let mut out: Vec<String> = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect();
        out.push(serde_json::to_string(&head_over(lines, at())).unwrap());
        out
    }

    fn check(lines: &[String]) -> Result<OfflineSummary, Finding> {
        check_with(lines, Some(signer().public_key()), &[])
    }

    fn check_with(
        lines: &[String],
        trusted: Option<AuditPublicKey>,
        saved: &[(String, SignedHead)],
    ) -> Result<OfflineSummary, Finding> {
        verify_export(lines.join("\n").as_bytes(), trusted, saved)
    }

    fn failed(lines: &[String]) -> Finding {
        check(lines).expect_err("the check should fail")
    }

    #[test]
    fn an_export_with_its_signed_head_verifies() {
        let summary = check(&export(6, 1, 6)).unwrap();
        assert_eq!((summary.lines, summary.first, summary.last), (6, 1, 6));
        assert_eq!(summary.heads_held, 1);
        assert!(summary.key_given);
        let summary = check(&export(9, 4, 7)).unwrap();
        assert_eq!((summary.lines, summary.first, summary.last), (4, 4, 7));
    }

    #[test]
    fn the_last_event_line_removed_is_reported_before_the_head() {
        let mut lines = export(6, 1, 6);
        lines.remove(5);
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::Truncated, "{f}");
        assert_eq!(f.at, "line 6");
        assert!(f.detail.contains("#6..#6 were removed"), "{f}");
    }

    #[test]
    fn the_signed_head_removed_from_the_end_is_reported() {
        let mut lines = export(6, 1, 6);
        lines.pop();
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::Truncated, "{f}");
        assert!(f.at.starts_with("after line 6 (audit #6"), "{f}");
        // Both the head and the last event line gone: the same, one line earlier.
        lines.pop();
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::Truncated, "{f}");
        assert!(f.at.starts_with("after line 5 (audit #5"), "{f}");
    }

    #[test]
    fn the_first_line_removed_is_reported_with_the_numbers_missing() {
        let mut lines = export(8, 3, 8);
        lines.remove(0);
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::Truncated, "{f}");
        assert!(
            f.detail.contains("#3..#3 were removed from the start"),
            "{f}"
        );
    }

    #[test]
    fn a_line_removed_in_the_middle_is_reported_naming_the_line_after_it() {
        let mut lines = export(6, 1, 6);
        lines.remove(2);
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::Removed, "{f}");
        assert_eq!(f.at, "line 3 (audit #4, account tg:1 #4 FundsCredited)");
        assert!(f.detail.contains("#3..#3 were removed"), "{f}");
    }

    #[test]
    fn a_field_the_chain_does_not_cover_is_refused_naming_the_line() {
        let mut lines = export(6, 1, 6);
        let mut v: Value = serde_json::from_str(&lines[3]).unwrap();
        v["note"] = json!("approved by finance");
        lines[3] = v.to_string();
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::AddedField, "{f}");
        assert_eq!(f.at, "line 4");
        assert!(f.detail.contains("`note`"), "{f}");
        // On the head line too.
        let mut lines = export(6, 1, 6);
        let mut v: Value = serde_json::from_str(&lines[6]).unwrap();
        v["head"]["approved"] = json!(true);
        lines[6] = v.to_string();
        let f = failed(&lines);
        assert_eq!(
            (f.kind, f.at.as_str()),
            (FindingKind::AddedField, "line 7"),
            "{f}"
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_wherever_it_is() {
        let mut lines = export(3, 1, 3);
        // A parser that keeps the first value would read 1, the hash covers the second.
        lines[1] = lines[1].replacen(
            "{\"FundsCredited\":{",
            "{\"FundsCredited\":{\"amount\":1,",
            1,
        );
        let f = failed(&lines);
        assert_eq!(
            (f.kind, f.at.as_str()),
            (FindingKind::Malformed, "line 2"),
            "{f}"
        );
        assert!(f.detail.contains("\"amount\" appears twice"), "{f}");
    }

    #[test]
    fn lines_added_after_the_signed_head_are_reported() {
        let mut lines = export(8, 1, 6);
        let seventh = &chain_of(8)[6];
        lines.push(serde_json::to_string(seventh).unwrap());
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::Extended, "{f}");
        assert_eq!(f.at, "after line 7");
        assert!(f.detail.contains("#7..#7 come after"), "{f}");
    }

    #[test]
    fn an_edited_event_is_altered_and_a_recomputed_chain_is_rewritten() {
        let mut lines = export(6, 1, 6);
        let mut v: Value = serde_json::from_str(&lines[2]).unwrap();
        v["payload"]["FundsCredited"]["amount"] = json!(1_000_000);
        lines[2] = v.to_string();
        let f = failed(&lines);
        assert_eq!(f.kind, FindingKind::Altered, "{f}");
        assert_eq!(f.at, "line 3 (audit #3, account tg:1 #3 FundsCredited)");

        // The same edit with every hash after it recomputed: each line holds, the head does not.
        let mut all = chain_of(6);
        all[2].payload =
            Some(json!({"FundsCredited": {"account_id": "tg:1", "amount": 1_000_000}}));
        recompute(&mut all);
        let original_head = export(6, 1, 6).pop().unwrap();
        let mut rewritten: Vec<String> = all
            .iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect();
        rewritten.push(original_head);
        let f = failed(&rewritten);
        assert_eq!(f.kind, FindingKind::Rewritten, "{f}");
        assert_eq!(f.at, "line 6 (audit #6, account tg:1 #6 FundsCredited)");
    }

    #[test]
    fn a_head_saved_earlier_narrows_where_a_rewrite_is() {
        // The auditor saved heads of #2 and #4 earlier; #3 was then rewritten and re-exported
        // with a new head signed by the key holder.
        let all = chain_of(6);
        let saved: Vec<(String, SignedHead)> = [2usize, 4]
            .iter()
            .map(|&k| (format!("saved head {k}"), head_over(&all[..k], at())))
            .collect();
        assert!(check_with(&export(6, 1, 6), None, &saved).is_ok());
        let mut changed = all.clone();
        changed[2].payload = Some(json!({"FundsCredited": {"account_id": "tg:1", "amount": 7}}));
        recompute(&mut changed);
        let mut lines: Vec<String> = changed
            .iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect();
        lines.push(serde_json::to_string(&head_over(&changed, at())).unwrap());
        assert!(
            check(&lines).is_ok(),
            "consistent in itself, and freshly signed"
        );
        let f = check_with(&lines, None, &saved).unwrap_err();
        assert_eq!(f.kind, FindingKind::Rewritten, "{f}");
        assert_eq!(f.at, "line 4 (audit #4, account tg:1 #4 FundsCredited)");
        assert!(f.detail.contains("an event in #3..#4 was changed"), "{f}");
    }

    #[test]
    fn a_head_not_signed_by_the_key_the_auditor_holds_is_refused() {
        let lines = export(3, 1, 3);
        let other = AuditSigner::from_seed(&[10u8; 32]).public_key();
        let f = check_with(&lines, Some(other), &[]).unwrap_err();
        assert_eq!(
            (f.kind, f.at.as_str()),
            (FindingKind::BadHead, "line 4 (the head of #3)"),
            "{f}"
        );
        let summary = check_with(&lines, None, &[]).unwrap();
        assert!(!summary.key_given);
        assert!(summary
            .to_string()
            .contains(&signer().public_key().to_string()));
    }
}
