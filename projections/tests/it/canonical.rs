//! The fast canonicalizer of `audit verify` against the reference (`serde_json` parsing and
//! `canonical_json`): many random JSON values, written out in several styles (compact, pretty,
//! random whitespace, needless escapes), round-tripped through real PostgreSQL `json` and `jsonb`
//! columns and read back as PostgreSQL prints them, must canonicalize to exactly the same bytes,
//! or the fast path must give up (then verify takes the reference path).

use chrono::{DateTime, Utc};
use engine::testing::TestDb;
use projections::audit::canonical::{
    canonical_json, encode, write_pg_time, FastCanonical, RawEvent, StoredEvent,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Number, Value};

const CHARS: &[char] = &[
    'a', 'b', 'Z', '0', '_', ' ', '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{1}',
    '\u{1f}', '\u{7f}', 'é', 'ß', '€', '中', '😀', '\u{2028}', '\u{fffd}', '{', '}', '[', ':', ',',
];

fn random_string(r: &mut StdRng) -> String {
    let len = match r.gen_range(0..10) {
        0 => 0,
        1..=6 => r.gen_range(1..8),
        _ => r.gen_range(8..60),
    };
    (0..len)
        .map(|_| {
            if r.gen_bool(0.5) {
                char::from(r.gen_range(b'a'..=b'z'))
            } else {
                CHARS[r.gen_range(0..CHARS.len())]
            }
        })
        .collect()
}

/// A random number; `floats` allows the ones the fast path gives up on.
fn random_number(r: &mut StdRng, floats: bool) -> Number {
    match r.gen_range(0..if floats { 9 } else { 6 }) {
        0 => Number::from(r.gen_range(0u64..10)),
        1 => Number::from(r.gen_range(-1_000_000i64..1_000_000)),
        2 => Number::from(r.gen::<u64>()),
        3 => Number::from(r.gen::<i64>()),
        4 => Number::from([i64::MIN, i64::MAX, 0, -1][r.gen_range(0..4)]),
        5 => Number::from(u64::MAX - r.gen_range(0..3)),
        6 => Number::from_f64(r.gen_range(-1e6..1e6)).unwrap_or_else(|| Number::from(0)),
        7 => Number::from_f64([0.5, -0.0, 1e300, 1.0, -2.5e-7][r.gen_range(0..5)])
            .unwrap_or_else(|| Number::from(0)),
        _ => Number::from_f64(r.gen::<f64>() * 1e20).unwrap_or_else(|| Number::from(0)),
    }
}

fn random_value(r: &mut StdRng, depth: u32, floats: bool) -> Value {
    let leaf = depth >= 4 || r.gen_bool(0.4);
    match r.gen_range(0..if leaf { 4 } else { 6 }) {
        0 => [Value::Null, Value::Bool(true), Value::Bool(false)][r.gen_range(0..3)].clone(),
        1 => Value::Number(random_number(r, floats)),
        2 | 3 => Value::String(random_string(r)),
        4 => Value::Array(
            (0..r.gen_range(0..5))
                .map(|_| random_value(r, depth + 1, floats))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..r.gen_range(0..7) {
                let key = if r.gen_bool(0.3) {
                    ["a", "b", "ab", "B", "é", "", "a\u{0}", "\n", "😀"][r.gen_range(0..9)].into()
                } else {
                    random_string(r)
                };
                map.insert(key, random_value(r, depth + 1, floats));
            }
            Value::Object(map)
        }
    }
}

/// `v` as JSON text with random whitespace, members in a random order and needless escapes.
fn write_loosely(v: &Value, r: &mut StdRng, out: &mut String) {
    let ws = |r: &mut StdRng, out: &mut String| {
        for _ in 0..r.gen_range(0..3) {
            out.push([' ', '\n', '\t', '\r'][r.gen_range(0..4)]);
        }
    };
    ws(r, out);
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_loosely(item, r, out);
            }
            ws(r, out);
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            for i in (1..entries.len()).rev() {
                entries.swap(i, r.gen_range(0..=i));
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(r, out);
                write_string_loosely(k, r, out);
                ws(r, out);
                out.push(':');
                write_loosely(item, r, out);
            }
            ws(r, out);
            out.push('}');
        }
        Value::String(s) => write_string_loosely(s, r, out),
        other => out.push_str(&other.to_string()),
    }
    ws(r, out);
}

fn write_string_loosely(s: &str, r: &mut StdRng, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            '/' if r.gen_bool(0.5) => out.push_str("\\/"),
            c if r.gen_bool(0.1) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if r.gen_bool(0.5) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn reference(text: &str) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_str(text).ok()?;
    let mut out = Vec::new();
    canonical_json(&value, &mut out);
    Some(out)
}

/// Whether the fast path, where it does not give up, writes the reference's bytes.
fn check(text: &str, fast: &mut FastCanonical) -> bool {
    let mut out = b"prefix".to_vec();
    match fast.write(text.as_bytes(), &mut out) {
        Ok(()) => {
            let expected = reference(text).unwrap_or_else(|| panic!("fast accepted bad {text:?}"));
            assert_eq!(
                String::from_utf8_lossy(&out[6..]),
                String::from_utf8_lossy(&expected),
                "canonical JSON of {text:?}"
            );
            assert_eq!(out[6..], expected[..], "canonical JSON of {text:?}");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn fast_canonical_json_matches_the_reference_on_text_as_written() {
    let mut r = StdRng::seed_from_u64(7);
    let mut fast = FastCanonical::default();
    let mut gave_up = 0;
    for i in 0..20_000 {
        let floats = i % 4 == 0;
        let v = random_value(&mut r, 0, floats);
        let mut texts = vec![
            serde_json::to_string(&v).unwrap(),
            serde_json::to_string_pretty(&v).unwrap(),
        ];
        let mut loose = String::new();
        write_loosely(&v, &mut r, &mut loose);
        texts.push(loose);
        for text in &texts {
            if !check(text, &mut fast) {
                assert!(floats, "the fast path gave up on {text:?}");
                gave_up += 1;
            }
        }
    }
    assert!(gave_up > 0, "the float cases reached the fast path");
    // Edge cases, written by hand: the fast path must give up on each (or agree).
    for text in [
        "-0",
        "0",
        "-1",
        "01",
        "1.0",
        "1e3",
        "1E3",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"\\u0061\":2}",
        "\"\\ud83d\\ude00\"",
        "\"\\ud800\"",
        "\"\\x\"",
        "\"a\u{1}\"",
        "[1,]",
        "{\"a\":}",
        "",
        " ",
        "nul",
        "truex",
        "[1] [2]",
        "{\"a\" 1}",
        "\"\\u00\"",
        "\"\\u00zz\"",
        "[[[[]]]]",
        "{\"b\":{},\"a\":[]}",
        "\"\\/\"",
        "\"\\u0000\"",
        "\"\\u001F\\u007f\"",
        "{\"\":0}",
    ] {
        check(text, &mut fast);
    }
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(!check(&deep, &mut fast), "gives up past 64 levels");
}

#[tokio::test]
async fn fast_canonical_json_matches_the_reference_on_text_printed_by_postgres() {
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE samples (n int PRIMARY KEY, j json NOT NULL, b jsonb NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut r = StdRng::seed_from_u64(2026);
    let mut fast = FastCanonical::default();
    let mut n = 0i32;
    for batch in 0..10 {
        let mut ns = Vec::new();
        let mut texts = Vec::new();
        for i in 0..1_000 {
            let floats = (batch * 1_000 + i) % 4 == 0;
            let v = random_value(&mut r, 0, floats);
            let mut text = String::new();
            if r.gen_bool(0.5) {
                write_loosely(&v, &mut r, &mut text);
            } else {
                text = serde_json::to_string(&v).unwrap();
            }
            // PostgreSQL refuses \u0000 in text, so jsonb cannot hold it.
            if text.contains("\\u0000") || text.contains('\u{0}') {
                continue;
            }
            n += 1;
            ns.push(n);
            texts.push(text);
        }
        sqlx::query(
            "INSERT INTO samples SELECT n, t::json, t::jsonb FROM unnest($1::int[], $2::text[]) AS x(n, t)",
        )
        .bind(&ns)
        .bind(&texts)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT j::text, b::text FROM samples ORDER BY n")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(rows.len() > 9_000);
    let mut fast_hits = 0;
    for (json, jsonb) in &rows {
        for text in [json, jsonb] {
            if check(text, &mut fast) {
                fast_hits += 1;
            }
        }
        // jsonb normalises numbers (1e3 -> 1000), which serde_json then reads as an integer or a
        // float: the two columns agree with the reference separately, not necessarily with each
        // other; for integer-only values they must agree with each other too.
        if reference(json).is_some() && !json.contains(['.', 'e', 'E']) {
            assert_eq!(reference(json), reference(jsonb), "{json} vs {jsonb}");
        }
    }
    assert!(fast_hits > rows.len(), "the fast path took most values");
}

#[test]
fn a_whole_event_encodes_to_the_same_bytes_either_way() {
    let mut r = StdRng::seed_from_u64(99);
    let mut fast = FastCanonical::default();
    let mut out = Vec::new();
    for i in 0..5_000 {
        let payload = serde_json::to_string(&random_value(&mut r, 0, i % 3 == 0)).unwrap();
        let metadata = serde_json::to_string(&random_value(&mut r, 0, false)).unwrap();
        // Any microsecond from 0001 to 9999 and around 2000 (where the count turns negative).
        let micros: i64 = if r.gen_bool(0.5) {
            r.gen_range(-63_082_281_600_000_000..252_455_615_999_999_999)
        } else {
            r.gen_range(-10_000_000..10_000_000)
        };
        let event_type = random_string(&mut r);
        let aggregate_id = random_string(&mut r);
        let raw = RawEvent {
            global_position: i,
            aggregate_type: "account",
            aggregate_id: &aggregate_id,
            sequence: [0, 1, r.gen::<i64>(), i64::MIN, i64::MAX][r.gen_range(0..5)],
            event_type: &event_type,
            event_version: "1.0",
            payload: &payload,
            metadata: &metadata,
            recorded_at: micros,
        };
        let stored: StoredEvent = raw.to_stored().unwrap();
        raw.encode_into(&mut fast, &mut out).unwrap();
        assert_eq!(
            out,
            encode(&stored).unwrap(),
            "{payload} {metadata} {micros}"
        );
    }
}

#[test]
fn postgres_binary_times_print_as_format_time_does() {
    let mut r = StdRng::seed_from_u64(5);
    let epoch = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut out = Vec::new();
    for i in 0..200_000 {
        let micros: i64 = match i % 3 {
            0 => r.gen_range(-63_082_281_600_000_000..252_455_615_999_999_999),
            1 => r.gen_range(-100_000_000_000..100_000_000_000),
            _ => r.gen_range(-2_000_000i64..2_000_000) * 86_400_000_000 + r.gen_range(-2..2),
        };
        let t = epoch + chrono::Duration::microseconds(micros);
        out.clear();
        let year_in_range = (0..=9999).contains(&chrono::Datelike::year(&t));
        assert_eq!(write_pg_time(micros, &mut out).is_some(), year_in_range);
        if year_in_range {
            assert_eq!(
                String::from_utf8(out.clone()).unwrap(),
                projections::audit::canonical::format_time(t)
            );
        }
    }
}

/// CPU time of this thread so far (Linux), else wall time: the machine may be shared.
fn cpu_now() -> std::time::Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(std::time::Duration::from_nanos)
        .unwrap_or_else(|| std::time::UNIX_EPOCH.elapsed().unwrap_or_default())
}

/// Not a check: the CPU time the fast and the reference encodings of a typical event take
/// (`cargo test --release -p projections --test it canonical:: -- --ignored --nocapture`).
#[test]
#[ignore]
fn encoding_speed() {
    let payload = r#"{"OrderPlaced":{"account_id":"acct-bench-208","receiver":"TLrcgeLfYQZzqZVzSEfSdRTonuXPveSrJo","energy":190543,"duration":"3d","quote":{"energy":190543,"duration":"3d","asset":"USDT","unit_price":23,"price":13147467},"pay_by":"2026-03-01T08:45:04Z","placed_at":"2026-03-01T08:30:04Z"}}"#;
    let metadata = r#"{"command_id":"21a42b80-45a1-4779-93b4-293c6eb4d528","causation_id":"21a42b80-45a1-4779-93b4-293c6eb4d528","correlation_id":"21a42b80-45a1-4779-93b4-293c6eb4d528","actor_role":"system","actor_subject":"workload"}"#;
    let raw = RawEvent {
        global_position: 1,
        aggregate_type: "order",
        aggregate_id: "ord-bench-1234",
        sequence: 1,
        event_type: "OrderPlaced",
        event_version: "1.0",
        payload,
        metadata,
        recorded_at: 830_000_000_000_000,
    };
    let stored = raw.to_stored().unwrap();
    let mut fast = FastCanonical::default();
    let mut out = Vec::new();
    let n = 1_000_000u32;
    let started = cpu_now();
    for _ in 0..n {
        raw.encode_into(&mut fast, &mut out).unwrap();
        std::hint::black_box(&out);
    }
    let fast_ns = (cpu_now() - started).as_nanos() as f64 / f64::from(n);
    let started = cpu_now();
    for _ in 0..n {
        let mut h = projections::audit::canonical::GENESIS;
        h[0] = out[0];
        std::hint::black_box(projections::audit::canonical::chain(&h, &out));
    }
    let sha_ns = (cpu_now() - started).as_nanos() as f64 / f64::from(n);
    let started = cpu_now();
    for _ in 0..n / 10 {
        std::hint::black_box(encode(&stored).unwrap());
    }
    let reference_ns = (cpu_now() - started).as_nanos() as f64 / f64::from(n / 10);
    println!(
        "{} bytes of JSON: fast encoding {fast_ns:.0} ns, sha256 {sha_ns:.0} ns, reference encoding {reference_ns:.0} ns",
        payload.len() + metadata.len()
    );
}
