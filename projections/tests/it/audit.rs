//! The audit chain: `verify` passes on an untouched log and names each kind of tampering done
//! with superuser SQL that bypasses the append-only trigger; states as of a position equal a
//! replay; exports verify offline.

use std::time::Duration;

use engine::domain::{replay, Account, AccountEvent};
use engine::testing::TestDb;
use projections::audit::query::{export, state_at, verify_export, AsOf};
use projections::audit::{catch_up, verify, ProblemKind, VerifyReport};
use projections::testing::{insert_commits, simulate, Ctx};
use sqlx::{PgConnection, PgPool};

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

/// A superuser session with triggers (the append-only ones and foreign keys) switched off.
async fn tamperer(db: &TestDb) -> PgConnection {
    let mut conn = db.connect().await;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
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

#[tokio::test]
async fn an_export_verifies_offline_and_an_edited_line_does_not() {
    let (db, n) = sequenced_db(20).await;
    let mut out = Vec::new();
    let written = export(&mut db.connect().await, 5, n, &mut out)
        .await
        .unwrap();
    assert_eq!(written as i64, n - 4);
    assert_eq!(verify_export(out.as_slice()), Ok(written));
    let text = String::from_utf8(out).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut line: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    line["metadata"]["actor_subject"] = "someone-else".into();
    lines[3] = line.to_string();
    let edited = lines.join("\n");
    let err = verify_export(edited.as_bytes()).unwrap_err();
    assert!(err.starts_with("audit #8:"), "{err}");
}

/// The fast pass reads the chain in ranges; tampering exactly at a range's first or last row,
/// or with the rows that tie two ranges together, is found as it is anywhere else.
#[tokio::test]
async fn audit_verify_in_ranges_finds_tampering_at_a_range_boundary() {
    use projections::audit::{range_starts, verify_in_parts};
    const PARTS: usize = 3;
    let (db, n) = sequenced_db(30).await;
    for parts in 1..=7 {
        let report = verify_in_parts(&db.pool, parts).await.unwrap();
        assert!(report.is_ok(), "{parts} parts: {:?}", report.problems);
        assert_eq!(report.events as i64, n, "{parts} parts");
    }
    let starts = range_starts(n, PARTS);
    assert_eq!(starts.len(), PARTS - 1);
    let s = starts[0];
    let at = |seq: i64| format!("(SELECT global_position FROM audit_log WHERE audit_seq = {seq})");
    let cases: Vec<(&str, Vec<String>, ProblemKind, i64)> = vec![
        (
            "payload of a range's first event",
            vec![format!(
                "UPDATE events SET payload = '{{\"x\":1}}' WHERE global_position = {}",
                at(s)
            )],
            ProblemKind::Altered,
            s,
        ),
        (
            "payload of the event before a range starts",
            vec![format!(
                "UPDATE events SET payload = '{{\"x\":1}}' WHERE global_position = {}",
                at(s - 1)
            )],
            ProblemKind::Altered,
            s - 1,
        ),
        (
            "a range's first event deleted",
            vec![format!(
                "DELETE FROM events WHERE global_position = {}",
                at(s)
            )],
            ProblemKind::Deleted,
            s,
        ),
        (
            "a range's first audit row's prev_hash",
            vec![format!(
                "UPDATE audit_log SET prev_hash = hash WHERE audit_seq = {s}"
            )],
            ProblemKind::ChainBroken,
            s,
        ),
        (
            "a range's first audit row deleted",
            vec![format!("DELETE FROM audit_log WHERE audit_seq = {s}")],
            ProblemKind::ChainBroken,
            s + 1,
        ),
        (
            "the last audit row before a range deleted",
            vec![format!("DELETE FROM audit_log WHERE audit_seq = {}", s - 1)],
            ProblemKind::ChainBroken,
            s,
        ),
    ];
    for (what, sqls, kind, seq) in cases {
        let (db, m) = sequenced_db(30).await;
        assert_eq!(
            (m, range_starts(m, PARTS)[0]),
            (n, s),
            "the same log each time"
        );
        let mut t = tamperer(&db).await;
        for sql in &sqls {
            sqlx::query(sql).execute(&mut t).await.unwrap();
        }
        let report = verify_in_parts(&db.pool, PARTS).await.unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| (p.kind, p.audit_seq) == (kind, seq)),
            "{what}: {:?}",
            report.problems
        );
        let one_part = verify_in_parts(&db.pool, 1).await.unwrap();
        assert_eq!(report.problems, one_part.problems, "{what}");
    }

    // Two events swapped across a range boundary (the last of one range, the first of the next).
    let (db, _) = sequenced_db(30).await;
    let (a, b): (i64, i64) = sqlx::query_as(&format!("SELECT {}, {}", at(s - 1), at(s)))
        .fetch_one(&db.pool)
        .await
        .unwrap();
    if id_at(&db.pool, a).await != id_at(&db.pool, b).await {
        let mut t = tamperer(&db).await;
        const COLS: &str = "aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";
        for sql in [
            format!("CREATE TEMP TABLE was_a AS SELECT {COLS} FROM events WHERE global_position = {a}"),
            format!("CREATE TEMP TABLE was_b AS SELECT {COLS} FROM events WHERE global_position = {b}"),
            format!("UPDATE events SET aggregate_id = aggregate_id || '~' WHERE global_position IN ({a}, {b})"),
            format!("UPDATE events SET ({COLS}) = (SELECT {COLS} FROM was_b) WHERE global_position = {a}"),
            format!("UPDATE events SET ({COLS}) = (SELECT {COLS} FROM was_a) WHERE global_position = {b}"),
        ] {
            sqlx::query(&sql).execute(&mut t).await.unwrap();
        }
        let report = verify_in_parts(&db.pool, PARTS).await.unwrap();
        let kinds: Vec<(ProblemKind, i64)> = report
            .problems
            .iter()
            .map(|p| (p.kind, p.audit_seq))
            .collect();
        assert_eq!(
            kinds,
            [(ProblemKind::Reordered, s - 1), (ProblemKind::Reordered, s)],
            "{:?}",
            report.problems
        );
    }

    // A range's first event moved later in the log (its transaction id raised to the last
    // transaction's): the events no longer line up with the audit rows.
    let (db, _) = sequenced_db(30).await;
    let mut t = tamperer(&db).await;
    sqlx::query(&format!(
        "UPDATE events SET transaction_id = (SELECT max(transaction_id) FROM events) \
         WHERE global_position = {}",
        at(s)
    ))
    .execute(&mut t)
    .await
    .unwrap();
    let report = verify_in_parts(&db.pool, PARTS).await.unwrap();
    assert!(!report.is_ok(), "a moved event at a range boundary");
    assert_eq!(
        report.problems,
        verify_in_parts(&db.pool, 1).await.unwrap().problems
    );
}
