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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
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
