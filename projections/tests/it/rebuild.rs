//! Rebuilds: into shadow tables while the live projection runs and commands keep arriving,
//! swapped in atomically; `check` names the rows a fresh rebuild disagrees with.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::testing::TestDb;
use projections::rebuild::{rebuild, Phase, RebuildOptions};
use projections::testing::{
    all_readers, differences, flow, insert_commits, rng, setup, simulate, wait_caught_up, Buses,
    Ctx,
};
use projections::{Runtime, RuntimeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_while_commands_keep_arriving_swaps_to_a_view_equal_to_the_live_one() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("rebuild", 12, 2);
    // History before the rebuild, written directly; new commands through the buses meanwhile.
    let mut conn = db.connect().await;
    for chunk in simulate(&ctx, 21, 200).chunks(100) {
        insert_commits(&mut conn, chunk).await.unwrap();
    }
    let live = Runtime::all(db.pool.clone(), RuntimeConfig::default()).spawn();
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicU64::new(0));
    let writer = {
        let (mut buses, ctx, stop, during) = (
            Buses::new(&db.pool, &ctx),
            ctx.clone(),
            stop.clone(),
            during.clone(),
        );
        tokio::spawn(async move {
            let mut r = rng(22);
            let mut n = 100_000;
            while !stop.load(Ordering::Relaxed) {
                flow(&mut buses, &ctx, &mut r, n).await.unwrap();
                n += 1;
                during.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let options = RebuildOptions {
        batch_size: 97,
        ..Default::default()
    };
    let mut phases = Vec::new();
    let report = rebuild(&db.pool, &projections::projection::all(), &options, |p| {
        if phases.last() != Some(&p.phase) {
            phases.push(p.phase);
        }
    })
    .await
    .unwrap();
    let flows_during = during.load(Ordering::Relaxed);
    // A few more commands after the swap, on the new tables.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(report.swapped);
    assert_eq!(
        phases,
        [
            Phase::Building,
            Phase::Indexing,
            Phase::Swapping,
            Phase::Done
        ]
    );
    assert!(flows_during > 0, "commands arrived during the rebuild");

    wait_caught_up(&db.pool, &all_readers(), Duration::from_secs(60))
        .await
        .unwrap();
    live.shutdown().await.unwrap();
    let diff = differences(&db.pool).await.unwrap();
    assert!(diff.is_empty(), "{diff:#?}");
    // The swapped tables kept their index and key names, and no shadow is left behind.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename IN ('orders', 'account_balances') \
         ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        names,
        [
            "account_balances_pkey",
            "orders_account_placed_idx",
            "orders_pkey",
            "orders_placed_at_idx",
            "orders_status_idx"
        ]
    );
    let shadows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_rebuild'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(shadows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_check_names_the_rows_that_differ_from_a_fresh_rebuild() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("check", 6, 2);
    let mut buses = Buses::new(&db.pool, &ctx);
    setup(&mut buses, &ctx).await.unwrap();
    let mut r = rng(5);
    for n in 0..30 {
        flow(&mut buses, &ctx, &mut r, n).await.unwrap();
    }
    let live = Runtime::all(db.pool.clone(), RuntimeConfig::default()).spawn();
    wait_caught_up(&db.pool, &all_readers(), Duration::from_secs(60))
        .await
        .unwrap();
    live.shutdown().await.unwrap();
    assert!(differences(&db.pool).await.unwrap().is_empty());

    // Someone edits a balance by hand.
    sqlx::query(
        "UPDATE account_balances SET available = available + 1 \
         WHERE (account_id, asset) = (SELECT account_id, asset FROM account_balances \
                                      ORDER BY account_id, asset LIMIT 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let diff = differences(&db.pool).await.unwrap();
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert_eq!(diff[0].table, "account_balances");
    assert_eq!((diff[0].only_live, diff[0].only_rebuilt), (1, 1));
    assert!(diff[0].live_rows[0].contains("acct-check-0"));

    // A rebuild (swap) repairs it.
    let report = rebuild(
        &db.pool,
        &[projections::projection::by_name("account_balances").unwrap()],
        &RebuildOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.swapped && report.events > 0);
    assert!(differences(&db.pool).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_whose_rows_outgrow_its_memory_builds_the_same_tables() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("small-cache", 6, 2);
    let mut conn = db.connect().await;
    for chunk in simulate(&ctx, 61, 120).chunks(40) {
        insert_commits(&mut conn, chunk).await.unwrap();
    }
    // Rows in memory until 30 of them, flushed every 100 events; then loaded batch by batch.
    let options = RebuildOptions {
        batch_size: 37,
        cache_rows: 30,
        flush_every: 100,
        ..Default::default()
    };
    let report = rebuild(&db.pool, &projections::projection::all(), &options, |_| {})
        .await
        .unwrap();
    assert!(report.swapped);
    // A rebuild with everything in memory finds no difference.
    let diff = differences(&db.pool).await.unwrap();
    assert!(diff.is_empty(), "{diff:#?}");
}
