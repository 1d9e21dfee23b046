//! The canonical encoding of an event that the audit chain hashes (docs/audit.md specifies it
//! byte by byte, so an auditor can reimplement it):
//!
//! ```text
//! encoding = field(event_type) field(event_version) field(aggregate_type) field(aggregate_id)
//!            field(decimal(sequence)) field(canonical_json(payload))
//!            field(canonical_json(metadata)) field(rfc3339_micros_utc(recorded_at))
//! field(x) = u32 big-endian byte length of x, then the UTF-8 bytes of x
//! hash     = sha256(prev_hash || encoding)      (prev_hash of the first event: 32 zero bytes)
//! ```
//!
//! Canonical JSON: no whitespace; object keys sorted by their UTF-8 bytes; strings escaped as
//! JSON requires and no more (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters
//! as `\u00xx` in lower-case hex; everything else, including non-ASCII, as raw UTF-8); integers
//! in plain decimal; `true`, `false`, `null`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The hash before the first event.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// An event as stored, with its payload and metadata as the JSON text in the table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub global_position: i64,
    pub transaction_id: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
}

/// Writes `value` as canonical JSON.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                canonical_json(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    write_string_bytes(s.as_bytes(), out);
}

/// `write_string` over the UTF-8 bytes of a string.
fn write_string_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `recorded_at` as hashed: RFC 3339, UTC, exactly six fractional digits, `Z`
/// (`%Y-%m-%dT%H:%M:%S%.6fZ`, written by hand: it is on the hot path of `verify`).
pub fn format_time(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    }
    let micros = t.timestamp_subsec_micros().min(999_999);
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn json_field(out: &mut Vec<u8>, value: &Value) {
    let at = out.len();
    out.extend_from_slice(&[0u8; 4]);
    canonical_json(value, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// The canonical encoding from parsed payload and metadata.
#[allow(clippy::too_many_arguments)]
pub fn encode_parts(
    event_type: &str,
    event_version: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    payload: &Value,
    metadata: &Value,
    recorded_at: DateTime<Utc>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    field(&mut out, event_type.as_bytes());
    field(&mut out, event_version.as_bytes());
    field(&mut out, aggregate_type.as_bytes());
    field(&mut out, aggregate_id.as_bytes());
    field(&mut out, sequence.to_string().as_bytes());
    json_field(&mut out, payload);
    json_field(&mut out, metadata);
    field(&mut out, format_time(recorded_at).as_bytes());
    out
}

/// The canonical encoding of a stored event.
pub fn encode(event: &StoredEvent) -> Result<Vec<u8>, Error> {
    let parse = |what: &str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| {
            Error::corrupt(
                format!("{what} of the event at position {}", event.global_position),
                e,
            )
        })
    };
    let payload = parse("payload", &event.payload)?;
    let metadata = parse("metadata", &event.metadata)?;
    Ok(encode_parts(
        &event.event_type,
        &event.event_version,
        &event.aggregate_type,
        &event.aggregate_id,
        event.sequence,
        &payload,
        &metadata,
        event.recorded_at,
    ))
}

/// `sha256(prev || encoding)`.
pub fn chain(prev: &[u8; 32], encoding: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(encoding);
    h.finalize().into()
}

/// The fast canonicalizer of `audit verify`: canonical JSON straight from JSON text, without
/// building a `serde_json::Value`. It handles the JSON the event store writes (and any JSON made
/// of objects without repeated keys, arrays, strings, integers that fit 64 bits, `true`, `false`,
/// `null`); for anything else (a float, an exponent, `-0`, a repeated key, a lone surrogate
/// escape, nesting deeper than 64, text that is not JSON) it gives up and the caller takes the
/// reference path (`serde_json` and [`canonical_json`]), so the bytes are the reference's in
/// every case (`projections/tests/it/canonical.rs` compares them on random values, as written and as
/// PostgreSQL prints them back from `json` and `jsonb` columns).
#[derive(Debug, Default)]
pub struct FastCanonical {
    /// The members of the objects being written, innermost last.
    members: Vec<Member>,
    /// Decoded object keys that had escapes.
    keys: Vec<u8>,
    /// Decoded strings that had escapes, and an object's members while they are reordered.
    scratch: Vec<u8>,
}

/// Gave up: the reference path decides.
#[derive(Debug)]
pub struct GaveUp;

#[derive(Debug, Clone, Copy)]
enum KeyAt {
    /// The key's bytes are `text[from..to]` (no escapes).
    Text(usize, usize),
    /// The decoded key is `keys[from..to]`.
    Decoded(usize, usize),
}

/// One object member as written: `"key":value` is `out[start..end]`; `prefix` is the key's first
/// eight bytes (zero-padded, big-endian), which orders two keys whenever they differ.
#[derive(Debug, Clone, Copy)]
struct Member {
    prefix: u64,
    key: KeyAt,
    start: usize,
    end: usize,
}

fn prefix(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(first) => u64::from_be_bytes(*first),
        None => key
            .iter()
            .enumerate()
            .fold(0, |v, (i, b)| v | u64::from(*b) << (56 - 8 * i)),
    }
}

/// Two members' keys in UTF-8 byte order.
#[inline]
fn key_order(a: &Member, b: &Member, text: &[u8], keys: &[u8]) -> std::cmp::Ordering {
    a.prefix
        .cmp(&b.prefix)
        .then_with(|| key_bytes(a.key, text, keys).cmp(key_bytes(b.key, text, keys)))
}

const MAX_DEPTH: usize = 64;

impl FastCanonical {
    /// Appends the canonical JSON of `text` to `out`; on `Err` `out` holds partial output (the
    /// caller truncates it).
    pub fn write(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result<(), GaveUp> {
        self.members.clear();
        self.keys.clear();
        let mut i = skip_ws(text, 0);
        self.value(text, &mut i, out, 0)?;
        if skip_ws(text, i) != text.len() {
            return Err(GaveUp);
        }
        Ok(())
    }

    fn value(
        &mut self,
        text: &[u8],
        i: &mut usize,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), GaveUp> {
        match text.get(*i) {
            Some(b'{') => self.object(text, i, out, depth + 1),
            Some(b'[') => self.array(text, i, out, depth + 1),
            Some(b'"') => {
                let (from, to, escaped) = scan_string(text, i)?;
                if escaped {
                    self.scratch.clear();
                    decode_string(&text[from..to], &mut self.scratch)?;
                    write_string_bytes(&self.scratch, out);
                } else {
                    // No escapes and (scan_string checked) no control characters: the
                    // canonical form is the text itself.
                    out.push(b'"');
                    out.extend_from_slice(&text[from..to]);
                    out.push(b'"');
                }
                Ok(())
            }
            Some(b't') => literal(text, i, b"true", out),
            Some(b'f') => literal(text, i, b"false", out),
            Some(b'n') => literal(text, i, b"null", out),
            Some(b'-' | b'0'..=b'9') => integer(text, i, out),
            _ => Err(GaveUp),
        }
    }

    fn array(
        &mut self,
        text: &[u8],
        i: &mut usize,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), GaveUp> {
        if depth > MAX_DEPTH {
            return Err(GaveUp);
        }
        *i = skip_ws(text, *i + 1);
        out.push(b'[');
        if text.get(*i) == Some(&b']') {
            *i += 1;
            out.push(b']');
            return Ok(());
        }
        loop {
            self.value(text, i, out, depth)?;
            *i = skip_ws(text, *i);
            match text.get(*i) {
                Some(b',') => {
                    *i = skip_ws(text, *i + 1);
                    out.push(b',');
                }
                Some(b']') => {
                    *i += 1;
                    out.push(b']');
                    return Ok(());
                }
                _ => return Err(GaveUp),
            }
        }
    }

    fn object(
        &mut self,
        text: &[u8],
        i: &mut usize,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), GaveUp> {
        if depth > MAX_DEPTH {
            return Err(GaveUp);
        }
        *i = skip_ws(text, *i + 1);
        out.push(b'{');
        if text.get(*i) == Some(&b'}') {
            *i += 1;
            out.push(b'}');
            return Ok(());
        }
        let base = self.members.len();
        let keys_base = self.keys.len();
        let body = out.len();
        loop {
            if text.get(*i) != Some(&b'"') {
                return Err(GaveUp);
            }
            let (from, to, escaped) = scan_string(text, i)?;
            let start = out.len();
            let key = if escaped {
                let at = self.keys.len();
                decode_string(&text[from..to], &mut self.keys)?;
                write_string_bytes(&self.keys[at..], out);
                KeyAt::Decoded(at, self.keys.len())
            } else {
                out.push(b'"');
                out.extend_from_slice(&text[from..to]);
                out.push(b'"');
                KeyAt::Text(from, to)
            };
            *i = skip_ws(text, *i);
            if text.get(*i) != Some(&b':') {
                return Err(GaveUp);
            }
            *i = skip_ws(text, *i + 1);
            out.push(b':');
            self.value(text, i, out, depth)?;
            self.members.push(Member {
                prefix: prefix(key_bytes(key, text, &self.keys)),
                key,
                start,
                end: out.len(),
            });
            *i = skip_ws(text, *i);
            match text.get(*i) {
                Some(b',') => {
                    *i = skip_ws(text, *i + 1);
                    out.push(b',');
                }
                Some(b'}') => {
                    *i += 1;
                    break;
                }
                _ => return Err(GaveUp),
            }
        }
        let mut in_order = true;
        for pair in self.members[base..].windows(2) {
            match key_order(&pair[0], &pair[1], text, &self.keys) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Err(GaveUp),
                std::cmp::Ordering::Greater => in_order = false,
            }
        }
        if !in_order {
            let keys = &self.keys;
            self.members[base..].sort_unstable_by(|a, b| key_order(a, b, text, keys));
            for pair in self.members[base..].windows(2) {
                if key_order(&pair[0], &pair[1], text, keys).is_eq() {
                    return Err(GaveUp);
                }
            }
            self.scratch.clear();
            self.scratch.extend_from_slice(&out[body..]);
            out.truncate(body);
            for (n, m) in self.members[base..].iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&self.scratch[m.start - body..m.end - body]);
            }
        }
        out.push(b'}');
        self.members.truncate(base);
        self.keys.truncate(keys_base);
        Ok(())
    }
}

#[inline]
fn key_bytes<'a>(k: KeyAt, text: &'a [u8], keys: &'a [u8]) -> &'a [u8] {
    match k {
        KeyAt::Text(from, to) => &text[from..to],
        KeyAt::Decoded(from, to) => &keys[from..to],
    }
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = text.get(i) {
        i += 1;
    }
    i
}

fn literal(text: &[u8], i: &mut usize, word: &[u8], out: &mut Vec<u8>) -> Result<(), GaveUp> {
    if text.get(*i..*i + word.len()) != Some(word) {
        return Err(GaveUp);
    }
    *i += word.len();
    out.extend_from_slice(word);
    Ok(())
}

/// An integer that `serde_json` keeps as a `u64` or an `i64` (and prints back digit for digit);
/// anything else (fraction, exponent, `-0`, leading zeros, out of range) gives up.
fn integer(text: &[u8], i: &mut usize, out: &mut Vec<u8>) -> Result<(), GaveUp> {
    let start = *i;
    let negative = text[start] == b'-';
    let digits = if negative { start + 1 } else { start };
    let mut end = digits;
    let mut value: u64 = 0;
    while let Some(&d @ b'0'..=b'9') = text.get(end) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(GaveUp)?;
        end += 1;
    }
    let len = end - digits;
    if len == 0
        || (text[digits] == b'0' && (len > 1 || negative))
        || (negative && value > 1u64 << 63)
        || matches!(text.get(end), Some(b'.' | b'e' | b'E'))
    {
        return Err(GaveUp);
    }
    out.extend_from_slice(&text[start..end]);
    *i = end;
    Ok(())
}

/// From the opening quote at `*i`: the string's content `text[from..to]`, whether it has escapes;
/// `*i` moves past the closing quote. Gives up on a raw control character (not JSON).
fn scan_string(text: &[u8], i: &mut usize) -> Result<(usize, usize, bool), GaveUp> {
    let from = *i + 1;
    let mut at = from;
    let mut escaped = false;
    loop {
        // Eight bytes at a time to the first quote, backslash or control character.
        if let Some(word) = text.get(at..).and_then(|t| t.first_chunk::<8>()) {
            let special = special_bytes(u64::from_le_bytes(*word));
            if special == 0 {
                at += 8;
                continue;
            }
            at += (special.trailing_zeros() / 8) as usize;
        }
        match text.get(at) {
            None => return Err(GaveUp),
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                at += 2;
            }
            Some(0x00..=0x1f) => return Err(GaveUp),
            Some(_) => at += 1,
        }
    }
    *i = at + 1;
    Ok((from, at, escaped))
}

/// The high bit of each byte of `w` (little-endian) that is `"`, `\\` or below 0x20; the lowest
/// set bit is always exact (bytes above the first match may be flagged falsely).
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_0x20 = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    zero_byte(w ^ (ONES * u64::from(b'"'))) | zero_byte(w ^ (ONES * u64::from(b'\\'))) | below_0x20
}

/// The bytes of a JSON string's content with its escapes resolved, appended to `out`; gives up on
/// a bad escape and on a surrogate `\u` escape that is not a high-low pair (the reference rejects
/// those).
fn decode_string(raw: &[u8], out: &mut Vec<u8>) -> Result<(), GaveUp> {
    let mut i = 0;
    while i < raw.len() {
        let Some(at) = raw[i..].iter().position(|b| *b == b'\\') else {
            out.extend_from_slice(&raw[i..]);
            return Ok(());
        };
        out.extend_from_slice(&raw[i..i + at]);
        i += at;
        let byte = match raw.get(i + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let mut code = hex4(raw.get(i + 2..i + 6))?;
                i += 6;
                if (0xd800..0xdc00).contains(&code) {
                    // A high surrogate: only as the first half of a pair.
                    if raw.get(i..i + 2) != Some(b"\\u") {
                        return Err(GaveUp);
                    }
                    let low = hex4(raw.get(i + 2..i + 6))?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(GaveUp);
                    }
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                    i += 6;
                }
                let c = char::from_u32(code).ok_or(GaveUp)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return Err(GaveUp),
        };
        out.push(byte);
        i += 2;
    }
    Ok(())
}

fn hex4(hex: Option<&[u8]>) -> Result<u32, GaveUp> {
    let mut code = 0u32;
    for h in hex.ok_or(GaveUp)? {
        code = code * 16 + char::from(*h).to_digit(16).ok_or(GaveUp)?;
    }
    Ok(code)
}

/// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's binary `timestamptz`) as
/// [`format_time`] writes it, appended to `out`; `None` outside years 0–9999.
pub fn write_pg_time(micros_since_2000: i64, out: &mut Vec<u8>) -> Option<()> {
    let unix = micros_since_2000.checked_add(946_684_800_000_000)?;
    let secs = unix.div_euclid(1_000_000);
    let micros = unix.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for k in (at..at + width).rev() {
            buf[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, sod / 3_600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 6, micros);
    out.extend_from_slice(&buf);
    Some(())
}

/// The canonical encoding of an event whose fields are as PostgreSQL sends them in binary
/// (`payload` and `metadata` as their JSON text, `recorded_at` in microseconds since 2000),
/// written into `out` (cleared first) with the fast canonicalizer; falls back to [`encode`] when
/// that gives up, so the bytes are always [`encode`]'s.
pub struct RawEvent<'a> {
    pub global_position: i64,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a str,
    pub metadata: &'a str,
    pub recorded_at: i64,
}

impl RawEvent<'_> {
    /// The event as [`encode`] takes it.
    pub fn to_stored(&self) -> Result<StoredEvent, Error> {
        let recorded_at = DateTime::<Utc>::from_timestamp_micros(
            self.recorded_at
                .checked_add(946_684_800_000_000)
                .ok_or_else(|| Error::corrupt("recorded_at", self.recorded_at))?,
        )
        .ok_or_else(|| Error::corrupt("recorded_at", self.recorded_at))?;
        Ok(StoredEvent {
            global_position: self.global_position,
            transaction_id: 0,
            aggregate_type: self.aggregate_type.to_string(),
            aggregate_id: self.aggregate_id.to_string(),
            sequence: self.sequence,
            event_type: self.event_type.to_string(),
            event_version: self.event_version.to_string(),
            payload: self.payload.to_string(),
            metadata: self.metadata.to_string(),
            recorded_at,
        })
    }

    /// Writes the canonical encoding into `out`.
    pub fn encode_into(&self, fast: &mut FastCanonical, out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        if self.encode_fast(fast, out).is_err() {
            *out = encode(&self.to_stored()?)?;
        }
        Ok(())
    }

    fn encode_fast(&self, fast: &mut FastCanonical, out: &mut Vec<u8>) -> Result<(), GaveUp> {
        field(out, self.event_type.as_bytes());
        field(out, self.event_version.as_bytes());
        field(out, self.aggregate_type.as_bytes());
        field(out, self.aggregate_id.as_bytes());
        let mut digits = [0u8; 20];
        field(out, decimal(self.sequence, &mut digits));
        for json in [self.payload, self.metadata] {
            let at = out.len();
            out.extend_from_slice(&[0u8; 4]);
            fast.write(json.as_bytes(), out)?;
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        out.extend_from_slice(&27u32.to_be_bytes());
        write_pg_time(self.recorded_at, out).ok_or(GaveUp)
    }
}

/// `n` in decimal, as `n.to_string()` writes it.
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut v = n.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_by_bytes_and_drops_whitespace() {
        let v: Value =
            serde_json::from_str(r#"{ "b": 1, "a": [true, null, {"z": "x", "Z": -2}], "é": "" }"#)
                .unwrap();
        let mut out = Vec::new();
        canonical_json(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[true,null,{"Z":-2,"z":"x"}],"b":1,"é":""}"#
        );
    }

    #[test]
    fn canonical_strings_escape_only_what_json_requires() {
        let mut out = Vec::new();
        canonical_json(&json!("q\"b\\n\nt\tc\u{1}/é\u{7f}"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"q\\\"b\\\\n\\nt\\tc\\u0001/é\u{7f}\""
        );
    }

    #[test]
    fn times_are_written_with_six_fractional_digits_in_utc() {
        for text in [
            "2026-01-02T03:04:05Z",
            "2026-12-31T23:59:59.999999Z",
            "0999-01-01T00:00:00.000001Z",
            "2026-06-01T12:00:00.5+02:00",
        ] {
            let t = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(
                format_time(t),
                t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            );
        }
    }

    #[test]
    fn large_integers_keep_every_digit() {
        let v: Value = serde_json::from_str(
            r#"{"a":9223372036854775807,"b":18446744073709551615,"c":-9223372036854775808}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        canonical_json(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":9223372036854775807,"b":18446744073709551615,"c":-9223372036854775808}"#
        );
    }

    #[test]
    fn the_documented_example_event_hashes_to_the_documented_value() {
        // The worked example of docs/audit.md.
        let event = StoredEvent {
            global_position: 1,
            transaction_id: 1000,
            aggregate_type: "account".into(),
            aggregate_id: "tg:1".into(),
            sequence: 1,
            event_type: "AccountOpened".into(),
            event_version: "1.0".into(),
            payload: r#"{"AccountOpened": {"opened_at": "2026-01-02T03:04:05Z", "account_id": "tg:1"}}"#.into(),
            metadata: r#"{"command_id": "00000000-0000-0000-0000-000000000001", "actor_subject": "bot-1", "actor_role": "bot"}"#.into(),
            recorded_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.000123Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let encoding = encode(&event).unwrap();
        let hash = chain(&GENESIS, &encoding);
        assert_eq!(
            hex::encode(&encoding[..20]),
            "0000000d4163636f756e744f70656e6564000000"
        );
        assert_eq!(
            hex::encode(hash),
            "dfe43ca49cd7fc002d588cf7fbb74002984e787bd0e49d6479f89d57a18cb27a"
        );
    }
}
