//! The global-log reader never skips an event whose transaction commits late, and checkpoints
//! move forward with the effects they cover.

use std::time::{Duration, Instant};

use engine::log::{load_checkpoint, save_checkpoint, GlobalLogReader, LogPosition, RecordedEvent};
use engine::testing::TestDb;
use sqlx::{Connection, PgConnection};

async fn insert_event(conn: &mut PgConnection, id: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Account', $1, 1, 'AccountOpened', '1.0', '{\"AccountOpened\":{}}', '{}')",
    )
    .bind(id)
    .execute(conn)
    .await
    .unwrap();
}

/// Reads with the xid8 reader until `want` events arrived after `from` (other tests share the
/// server, and their transactions may hold the horizon back for a moment).
async fn read_until(conn: &mut PgConnection, from: LogPosition, want: usize) -> Vec<RecordedEvent> {
    let reader = GlobalLogReader::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let batch = reader.read_batch(conn, from, 100).await.unwrap();
        if batch.len() >= want || Instant::now() > deadline {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn naive_read(conn: &mut PgConnection, after: i64) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT global_position, aggregate_id FROM events WHERE global_position > $1 ORDER BY global_position",
    )
    .bind(after)
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_transaction_that_inserts_first_and_commits_last_is_delivered_not_skipped() {
    let db = TestDb::new().await;
    let mut a = db.connect().await;
    let mut b = db.connect().await;
    let mut reader_conn = db.connect().await;

    // A inserts first (lower position) and keeps its transaction open.
    let mut tx_a = a.begin().await.unwrap();
    insert_event(&mut tx_a, "A").await;
    // B inserts second and commits at once.
    let mut tx_b = b.begin().await.unwrap();
    insert_event(&mut tx_b, "B").await;
    tx_b.commit().await.unwrap();

    // A reader polls in between.
    let naive = naive_read(&mut reader_conn, 0).await;
    assert_eq!(
        naive.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["B"]
    );
    let naive_checkpoint = naive[0].0;
    let reader = GlobalLogReader::new();
    let early = reader
        .read_batch(&mut reader_conn, LogPosition::START, 100)
        .await
        .unwrap();
    assert!(
        early.is_empty(),
        "nothing is delivered while A, which began before B, is in flight: {early:?}"
    );

    tx_a.commit().await.unwrap();

    // The naive reader, resuming after B's position, has lost A for good.
    let naive_after = naive_read(&mut reader_conn, naive_checkpoint).await;
    assert!(naive_after.is_empty(), "a naive reader never sees A");

    // The horizon reader delivers both, A first (its transaction began first), then B.
    let batch = read_until(&mut reader_conn, LogPosition::START, 2).await;
    let ids: Vec<&str> = batch.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, ["A", "B"]);
    assert!(batch[0].position < batch[1].position);
    assert!(batch[0].position.global_position < batch[1].position.global_position);
}

#[tokio::test]
async fn a_checkpoint_saved_with_the_effects_resumes_after_them_and_never_moves_back() {
    let db = TestDb::new().await;
    let mut w = db.connect().await;
    for id in ["one", "two", "three"] {
        insert_event(&mut w, id).await;
    }
    let mut conn = db.connect().await;
    let reader = GlobalLogReader::new();
    let all = read_until(&mut conn, LogPosition::START, 3).await;
    assert_eq!(all.len(), 3);

    // Apply the first two and save the checkpoint in the same transaction.
    let mut tx = conn.begin().await.unwrap();
    let first_two = reader
        .read_batch(&mut tx, LogPosition::START, 2)
        .await
        .unwrap();
    save_checkpoint(&mut tx, "test-reader", first_two[1].position)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A rolled-back batch leaves the checkpoint where it was.
    let mut tx = conn.begin().await.unwrap();
    save_checkpoint(&mut tx, "test-reader", all[2].position)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let at = load_checkpoint(&mut conn, "test-reader").await.unwrap();
    assert_eq!(at, first_two[1].position);
    let rest = reader.read_batch(&mut conn, at, 100).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|e| e.aggregate_id.as_str())
            .collect::<Vec<_>>(),
        ["three"]
    );

    // Saving an older position does not move the checkpoint back.
    save_checkpoint(&mut conn, "test-reader", all[0].position)
        .await
        .unwrap();
    assert_eq!(
        load_checkpoint(&mut conn, "test-reader").await.unwrap(),
        first_two[1].position
    );
    assert_eq!(
        load_checkpoint(&mut conn, "never-ran").await.unwrap(),
        LogPosition::START
    );
}

#[tokio::test]
async fn typed_batches_decode_the_events_the_bus_wrote_and_refuse_unknown_ones() {
    use engine::domain::account::{Account, AccountCommand, AccountEvent};
    use engine::domain::ids::AccountId;
    use engine::log::AnyEvent;
    use engine::store::{Actor, CommandBus, CommandMetadata};

    let db = TestDb::new().await;
    let bus = CommandBus::<Account>::new(db.pool.clone(), ());
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse("tg:7").unwrap(),
        at: chrono::Utc::now(),
    };
    let meta = CommandMetadata::new(Actor::new("bot-1", "bot"));
    let committed = bus
        .execute("tg:7", open, meta.clone())
        .await
        .unwrap()
        .result
        .unwrap();

    let mut conn = db.connect().await;
    let batch = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let b = GlobalLogReader::new()
                .read_typed_batch(&mut conn, LogPosition::START, 10)
                .await
                .unwrap();
            if !b.is_empty() || Instant::now() > deadline {
                break b;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(batch.len(), 1);
    assert!(matches!(
        batch[0].event,
        AnyEvent::Account(AccountEvent::AccountOpened { .. })
    ));
    assert_eq!(Some(batch[0].recorded.position), committed.last_position());
    assert_eq!(batch[0].recorded.command_metadata(), Some(meta));

    // An event of an aggregate type we do not know stops the reader with an error.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Mystery', 'm1', 1, 'Happened', '1.0', '{}', '{}')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let after = batch[0].recorded.position;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match GlobalLogReader::new()
            .read_typed_batch(&mut conn, after, 10)
            .await
        {
            Err(e) => {
                assert!(e.to_string().contains("Mystery"), "{e}");
                break;
            }
            Ok(b) if b.is_empty() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(b) => panic!("an unknown event was not refused: {b:?}"),
        }
    }
}

#[tokio::test]
async fn batches_follow_transaction_ids_as_numbers_not_as_text() {
    // Transaction ids 999 and 1000: as text, "1000" sorts first.
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    for (id, tx) in [("late-digit", "999"), ("more-digits", "1000")] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, transaction_id) \
             VALUES ('Account', $1, 1, 'AccountOpened', '1.0', '{}', '{}', $2::text::xid8)",
        )
        .bind(id)
        .bind(tx)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let reader = GlobalLogReader::new();
    let first = reader
        .read_batch(&mut conn, LogPosition::START, 1)
        .await
        .unwrap();
    assert_eq!(first[0].aggregate_id, "late-digit");
    let second = reader
        .read_batch(&mut conn, first[0].position, 1)
        .await
        .unwrap();
    assert_eq!(second[0].aggregate_id, "more-digits");
}
