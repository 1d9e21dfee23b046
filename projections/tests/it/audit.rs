//! The audit chain: `verify` passes on an untouched log and names each kind of tampering done
//! with superuser SQL that bypasses the append-only trigger, including a rewrite that recomputes
//! the chain (caught by the heads signed before it); states as of a position equal a replay;
//! exports end with a signed head and verify offline.

use std::time::Duration;

use engine::domain::{replay, Account, AccountEvent};
use engine::testing::TestDb;
use projections::audit::heads::{sign_current, GivenHead};
use projections::audit::offline::{verify_export, FindingKind};
use projections::audit::query::{export, state_at, AsOf};
use projections::audit::{
    catch_up, sequence_batch_signing, verify, verify_with_options, AuditSigner, HeadPolicy,
    HeadSigning, ProblemKind, VerifyOptions, VerifyReport,
};
use projections::testing::{insert_commits, simulate, tamperer, Ctx};
use sqlx::PgPool;

async fn sequenced_db(flows: u64) -> (TestDb, i64) {
    let db = TestDb::new().await;
    let ctx = Ctx::new("audit", 6, 2);
    let mut conn = db.connect().await;
    for chunk in simulate(&ctx, 11, flows).chunks(50) {
        insert_commits(&mut conn, chunk).await.unwrap();
    }
    let n = catch_up(&mut conn, Duration::from_secs(60)).await.unwrap() as i64;
    (db, n)
}

async fn verified(db: &TestDb) -> VerifyReport {
    verify(&db.pool).await.unwrap()
}

async fn id_at(pool: &PgPool, position: i64) -> (String, String, i64) {
    sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence FROM events WHERE global_position = $1",
    )
    .bind(position)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_untouched_log_verifies_ok() {
    let (db, n) = sequenced_db(40).await;
    let report = verified(&db).await;
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.events as i64, n);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, total);
}

#[tokio::test]
async fn the_events_table_refuses_update_delete_and_truncate() {
    let (db, _) = sequenced_db(5).await;
    for sql in [
        "UPDATE events SET payload = '{}' WHERE global_position = 1",
        "DELETE FROM events WHERE global_position = 1",
        "TRUNCATE events CASCADE",
        "UPDATE audit_log SET hash = prev_hash WHERE audit_seq = 1",
        "DELETE FROM audit_log WHERE audit_seq = 1",
    ] {
        let err = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert!(verified(&db).await.is_ok());
}

#[tokio::test]
async fn audit_verify_names_a_changed_payload() {
    let (db, _) = sequenced_db(30).await;
    let mut t = tamperer(&db).await;
    // Raise a credited amount by one unit.
    let position: i64 = sqlx::query_scalar(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{FundsCredited,amount}', \
             to_jsonb((payload::jsonb #>> '{FundsCredited,amount}')::bigint + 1))::json \
         WHERE global_position = (SELECT min(global_position) FROM events \
                                  WHERE event_type = 'FundsCredited') \
         RETURNING global_position",
    )
    .fetch_one(&mut t)
    .await
    .unwrap();
    let report = verified(&db).await;
    let first = &report.problems[0];
    assert_eq!(first.kind, ProblemKind::Altered, "{first}");
    assert_eq!(first.global_position, position);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
}

#[tokio::test]
async fn audit_verify_names_a_deleted_event() {
    let (db, _) = sequenced_db(30).await;
    let mut t = tamperer(&db).await;
    sqlx::query("DELETE FROM events WHERE global_position = 17")
        .execute(&mut t)
        .await
        .unwrap();
    let report = verified(&db).await;
    let first = &report.problems[0];
    assert_eq!(first.kind, ProblemKind::Deleted, "{first}");
    assert_eq!((first.audit_seq, first.global_position), (17, 17));
}

#[tokio::test]
async fn audit_verify_names_an_inserted_event() {
    let (db, _) = sequenced_db(30).await;
    // A credit backdated into the middle of the log: another event's transaction id, a free
    // position, the account's next sequence number.
    let (_, account, _) = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT aggregate_type, aggregate_id, sequence FROM events \
         WHERE aggregate_type = 'account' ORDER BY global_position LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let mut t = tamperer(&db).await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                             payload, metadata, global_position, transaction_id, recorded_at) \
         OVERRIDING SYSTEM VALUE \
         SELECT 'account', $1, (SELECT max(sequence) + 1 FROM events WHERE aggregate_id = $1), \
                'BalanceAdjusted', '1.0', \
                '{\"BalanceAdjusted\":{\"asset\":\"TRX\",\"delta\":1000000000,\"reason\":\"x\",\"actor\":\"x\",\"available_after\":1000000000,\"reserved_after\":0}}', \
                '{}', 1000000, e.transaction_id, e.recorded_at \
         FROM events e WHERE e.global_position = 20",
    )
    .bind(&account)
    .execute(&mut t)
    .await
    .unwrap();
    // The sequencer does not number it: its place in the log is behind the checkpoint.
    assert_eq!(
        catch_up(&mut db.connect().await, Duration::from_secs(1))
            .await
            .unwrap(),
        0
    );
    let report = verified(&db).await;
    let first = &report.problems[0];
    assert_eq!(first.kind, ProblemKind::Inserted, "{first}");
    assert_eq!(first.global_position, 1_000_000);
    // It sorts after the events of transaction 20's batch, before the next batch's first event.
    let next: i64 = sqlx::query_scalar(
        "SELECT min(a.audit_seq) FROM audit_log a JOIN events e USING (global_position) \
         WHERE e.transaction_id > (SELECT transaction_id FROM events WHERE global_position = 20)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        first.audit_seq, next,
        "named with the audit number it sits before"
    );
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
}

#[tokio::test]
async fn audit_verify_names_two_swapped_events() {
    let (db, _) = sequenced_db(30).await;
    let (a, b) = (12i64, 25i64);
    assert_ne!(id_at(&db.pool, a).await, id_at(&db.pool, b).await);
    let mut t = tamperer(&db).await;
    // Exchange everything but the positions (the primary key is checked row by row, so both
    // rows are parked under other ids first).
    const COLS: &str =
        "aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";
    for sql in [
        format!("CREATE TEMP TABLE was_a AS SELECT {COLS} FROM events WHERE global_position = {a}"),
        format!("CREATE TEMP TABLE was_b AS SELECT {COLS} FROM events WHERE global_position = {b}"),
        format!("UPDATE events SET aggregate_id = aggregate_id || '~' WHERE global_position IN ({a}, {b})"),
        format!("UPDATE events SET ({COLS}) = (SELECT {COLS} FROM was_b) WHERE global_position = {a}"),
        format!("UPDATE events SET ({COLS}) = (SELECT {COLS} FROM was_a) WHERE global_position = {b}"),
    ] {
        sqlx::query(&sql).execute(&mut t).await.unwrap();
    }
    let report = verified(&db).await;
    let kinds: Vec<(ProblemKind, i64)> = report
        .problems
        .iter()
        .map(|p| (p.kind, p.audit_seq))
        .collect();
    assert_eq!(
        kinds,
        [(ProblemKind::Reordered, a), (ProblemKind::Reordered, b)],
        "{:?}",
        report.problems
    );
    assert!(report.problems[0].detail.contains(&format!("audit #{b}")));
}

#[tokio::test]
async fn audit_state_at_every_position_of_an_account_equals_replaying_its_events_up_to_there() {
    let (db, _) = sequenced_db(60).await;
    let account: String = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_type = 'account' \
         GROUP BY aggregate_id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let events: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT global_position, payload::jsonb FROM events \
         WHERE aggregate_type = 'account' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&account)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(events.len() > 5, "a busy account");
    let max = events.last().unwrap().0;
    let mut conn = db.connect().await;
    // Every log position up to the account's last event (and one past it).
    for position in 0..=max + 1 {
        let prefix: Vec<AccountEvent> = events
            .iter()
            .filter(|(p, _)| *p <= position)
            .map(|(_, payload)| serde_json::from_value(payload.clone()).unwrap())
            .collect();
        let count = prefix.len() as i64;
        let expected = serde_json::to_value(replay::<Account>(prefix)).unwrap();
        let report = state_at(&mut conn, "Account", &account, AsOf::Position(position))
            .await
            .unwrap();
        assert_eq!(report.state, expected, "at position {position}");
        assert_eq!(report.version, count);
    }
    // And by time: as of the last event's recorded_at, the state is the full replay.
    let at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(recorded_at) FROM events WHERE aggregate_id = $1")
            .bind(&account)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let report = state_at(&mut conn, "account", &account, AsOf::Time(at))
        .await
        .unwrap();
    assert_eq!(report.version, events.len() as i64);
}

fn signer() -> AuditSigner {
    AuditSigner::from_seed(&[42u8; 32])
}

#[tokio::test]
async fn an_export_ends_with_its_signed_head_and_verifies_offline_and_an_edited_line_does_not() {
    let (db, n) = sequenced_db(20).await;
    let mut out = Vec::new();
    let written = export(&mut db.connect().await, 5, n, &signer(), &mut out)
        .await
        .unwrap();
    assert_eq!(written as i64, n - 4);
    let key = Some(signer().public_key());
    let summary = verify_export(out.as_slice(), key, &[]).unwrap();
    assert_eq!(
        (summary.lines, summary.first, summary.last),
        (written, 5, n)
    );
    let text = String::from_utf8(out).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(lines.len() as u64, written + 1, "the lines, then the head");
    let head: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(
        (head["head"]["from"].as_i64(), head["head"]["to"].as_i64()),
        (Some(5), Some(n))
    );

    let mut line: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    line["metadata"]["actor_subject"] = "someone-else".into();
    lines[3] = line.to_string();
    let f = verify_export(lines.join("\n").as_bytes(), key, &[]).unwrap_err();
    assert_eq!(f.kind, FindingKind::Altered, "{f}");
    assert!(f.at.starts_with("line 4 (audit #8, "), "{f}");

    // The last event line cut off, head kept.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.remove(lines.len() - 2);
    let f = verify_export(lines.join("\n").as_bytes(), key, &[]).unwrap_err();
    assert_eq!(f.kind, FindingKind::Truncated, "{f}");
}

/// An event's metadata changed and every hash after it recomputed (triggers off).
async fn rewrite_and_recompute(db: &TestDb, seq: i64) {
    let mut t = tamperer(db).await;
    projections::testing::rewrite_and_recompute(&mut t, seq, r#"{"actor_subject":"mallory"}"#)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rewrite_that_recomputes_the_chain_is_caught_by_a_head_signed_before_it() {
    let (db, n) = sequenced_db(30).await;
    let mut conn = db.connect().await;
    let head = sign_current(&mut conn, &signer()).await.unwrap();
    assert_eq!(head.head.to, n);
    let k = n / 2;
    rewrite_and_recompute(&db, k).await;

    // The chain agrees with the events again; the head signed before does not.
    let report = verified(&db).await;
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!((p.kind, p.audit_seq), (ProblemKind::Rewritten, n), "{p}");
    assert!(
        p.detail
            .contains(&format!("an event in #1..#{n} was changed")),
        "{p}"
    );

    // Nothing new is signed over the rewrite: not a head, not an export.
    let refused = sign_current(&mut conn, &signer()).await.unwrap_err();
    assert!(
        matches!(refused, projections::Error::HeadDisagrees(_)),
        "{refused}"
    );
    let refused = export(&mut conn, 1, n, &signer(), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, projections::Error::HeadDisagrees(_)),
        "{refused}"
    );
}

#[tokio::test]
async fn heads_signed_before_and_after_a_rewrite_name_the_range_it_lies_in() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("heads", 6, 2);
    let mut conn = db.connect().await;
    let commits = simulate(&ctx, 12, 30);
    let (early, late) = commits.split_at(commits.len() / 2);
    insert_commits(&mut conn, early).await.unwrap();
    catch_up(&mut conn, Duration::from_secs(60)).await.unwrap();
    let first = sign_current(&mut conn, &signer()).await.unwrap().head.to;
    insert_commits(&mut conn, late).await.unwrap();
    catch_up(&mut conn, Duration::from_secs(60)).await.unwrap();
    let second = sign_current(&mut conn, &signer()).await.unwrap().head.to;
    assert!(first < second);
    let saved = sign_current(&mut conn, &signer()).await.unwrap();
    assert_eq!(
        saved.head.to, second,
        "the chain did not grow: the stored head again"
    );

    rewrite_and_recompute(&db, first + 2).await;
    let report = verified(&db).await;
    let p = &report.problems[0];
    assert_eq!(
        (p.kind, p.audit_seq),
        (ProblemKind::Rewritten, second),
        "{p}"
    );
    assert!(
        p.detail
            .contains(&format!("an event in #{}..#{second}", first + 1)),
        "{p}"
    );
    assert_eq!(report.heads.newest.map(|h| h.range.to), Some(first));

    // Deleting the stored heads behind the rewrite hides it from the database alone, but not
    // from a head the auditor saved.
    let mut t = tamperer(&db).await;
    sqlx::query("DELETE FROM audit_heads WHERE to_seq > $1")
        .bind(first)
        .execute(&mut t)
        .await
        .unwrap();
    assert!(verified(&db).await.is_ok(), "the documented limit");
    let options = VerifyOptions {
        public_key: Some(signer().public_key()),
        heads: vec![GivenHead {
            origin: "the head saved by the auditor".into(),
            head: saved,
        }],
    };
    let report = verify_with_options(&db.pool, options).await.unwrap();
    let p = &report.problems[0];
    assert_eq!(
        (p.kind, p.audit_seq),
        (ProblemKind::Rewritten, second),
        "{p}"
    );
    assert!(p.detail.contains("the head saved by the auditor"), "{p}");

    // Heads signed by a key other than the one the auditor holds are reported.
    let other = AuditSigner::from_seed(&[43u8; 32]);
    let options = VerifyOptions {
        public_key: Some(other.public_key()),
        heads: Vec::new(),
    };
    let report = verify_with_options(&db.pool, options).await.unwrap();
    assert_eq!(
        report.problems[0].kind,
        ProblemKind::BadHead,
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_chain_cut_short_below_a_signed_head_is_reported_as_truncated() {
    let (db, n) = sequenced_db(10).await;
    let mut conn = db.connect().await;
    sign_current(&mut conn, &signer()).await.unwrap();
    let mut t = tamperer(&db).await;
    sqlx::query("DELETE FROM audit_log WHERE audit_seq > $1")
        .bind(n - 3)
        .execute(&mut t)
        .await
        .unwrap();
    let report = verified(&db).await;
    let p = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Truncated)
        .unwrap_or_else(|| panic!("{:?}", report.problems));
    assert!(
        p.detail
            .contains(&format!("#{}..#{n} were removed from its end", n - 2)),
        "{p}"
    );
}

/// Sequencer batches of at most `limit` events until the chain has `total` links. A batch may
/// number fewer, or none, while a transaction elsewhere in the cluster (another test) holds the
/// log's horizon back.
async fn sequence_until(
    conn: &mut sqlx::PgConnection,
    heads: &HeadSigning,
    limit: i64,
    total: i64,
) {
    use sqlx::Connection;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut tx = conn.begin().await.unwrap();
        sequence_batch_signing(&mut tx, limit, Some(heads))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let chain: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        if chain >= total {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sequenced {chain} of {total}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The sequencer signs a head at its first batch, then every so many events, in the batch that
/// numbers them, and after the interval when the chain grew by fewer.
#[tokio::test]
async fn the_sequencer_signs_a_head_every_n_events_and_after_the_interval() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("cadence", 4, 1);
    let mut conn = db.connect().await;
    let commits = simulate(&ctx, 13, 20);
    let (most, last_two) = commits.split_at(commits.len() - 2);
    insert_commits(&mut conn, most).await.unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let total = count().await;
    let heads = HeadSigning::new(
        std::sync::Arc::new(signer()),
        HeadPolicy {
            every_events: 10,
            interval: Duration::from_secs(3600),
        },
    );
    sequence_until(&mut conn, &heads, 5, total).await;
    let tos: Vec<i64> = sqlx::query_scalar("SELECT to_seq FROM audit_heads ORDER BY to_seq")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    // The first batch signs at once (no head yet); then a head as soon as ten more events are
    // numbered: batches of at most five put it 10 to 14 events after the one before.
    assert!(tos[0] >= 1 && tos[0] <= 5, "{tos:?}");
    for pair in tos.windows(2) {
        assert!((10..15).contains(&(pair[1] - pair[0])), "{tos:?}");
    }
    assert!(total - tos[tos.len() - 1] < 10, "{total}: {tos:?}");
    assert!(verified(&db).await.is_ok());

    // A few more events, fewer than a policy of a thousand asks for: no head until the
    // interval has passed.
    insert_commits(&mut conn, last_two).await.unwrap();
    let all = count().await;
    let slow = HeadSigning::new(
        std::sync::Arc::new(signer()),
        HeadPolicy {
            every_events: 1_000,
            interval: Duration::from_secs(3600),
        },
    );
    let newest = || async {
        sqlx::query_scalar::<_, i64>("SELECT max(to_seq) FROM audit_heads")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let before = newest().await;
    sequence_until(&mut conn, &slow, 50, all).await;
    assert_eq!(newest().await, before, "not due yet");
    let quick = HeadSigning::new(
        std::sync::Arc::new(signer()),
        HeadPolicy {
            every_events: 1_000,
            interval: Duration::from_millis(1),
        },
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    sequence_until(&mut conn, &quick, 50, all).await;
    assert_eq!(
        newest().await,
        all,
        "an idle batch signs what the chain grew by"
    );
}
