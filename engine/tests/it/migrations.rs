//! The migrations build the postgres-es `events` table with our global-order columns.

use engine::testing::TestDb;

#[tokio::test]
async fn the_events_table_gets_a_position_a_transaction_id_and_a_time_from_the_database() {
    let db = TestDb::new().await;
    // The exact INSERT postgres-es 0.5 issues: seven named columns, nothing else.
    let mut tx = db.pool.begin().await.unwrap();
    for seq in 1..=2i64 {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind("Account")
        .bind("tg:1")
        .bind(seq)
        .bind("AccountOpened")
        .bind("1.0")
        .bind(serde_json::json!({"AccountOpened": {}}))
        .bind(serde_json::json!({}))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let rows: Vec<(i64, String, bool)> = sqlx::query_as(
        "SELECT global_position, transaction_id::text, recorded_at <= now() FROM events ORDER BY global_position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].0 < rows[1].0, "positions increase");
    assert_eq!(rows[0].1, rows[1].1, "one transaction, one transaction id");
    assert!(rows.iter().all(|r| r.2));
}

#[tokio::test]
async fn applying_the_migrations_twice_changes_nothing() {
    let db = TestDb::new().await;
    assert_eq!(engine::store::migrate(&db.pool).await.unwrap(), 0);
}

#[tokio::test]
async fn the_global_log_is_indexed_on_transaction_id_then_global_position() {
    let db = TestDb::new().await;
    let definitions: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'events'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(
        definitions
            .iter()
            .any(|d| d.ends_with("USING btree (transaction_id, global_position)")),
        "{definitions:#?}"
    );
}
