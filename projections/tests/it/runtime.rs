//! The projector runtime against a real database: racing writers, a projector stopped in the
//! middle of a batch, a lost connection, and two runtimes sharing the work by advisory lock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::testing::TestDb;
use futures::FutureExt;
use projections::runtime::{BatchInfo, Hooks};
use projections::testing::{
    all_readers, differences, insert_commits, simulate, wait_caught_up, Commit, Ctx,
};
use projections::{Runtime, RuntimeConfig, WorkerState};
use rand::{Rng, SeedableRng};
use sqlx::{Connection, PgPool};

const CAUGHT_UP: Duration = Duration::from_secs(60);

fn config() -> RuntimeConfig {
    RuntimeConfig {
        batch_size: 64,
        ..RuntimeConfig::default()
    }
}

async fn insert_all(pool: &PgPool, commits: &[Commit]) {
    let mut conn = pool.acquire().await.unwrap();
    for chunk in commits.chunks(200) {
        insert_commits(&mut conn, chunk).await.unwrap();
    }
}

async fn assert_views_equal_a_rebuild(pool: &PgPool) {
    let diff = differences(pool).await.unwrap();
    assert!(
        diff.is_empty(),
        "live views differ from a rebuild: {diff:#?}"
    );
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_racing_with_random_delays_leave_views_equal_to_a_rebuild() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("race", 24, 3);
    let commits = simulate(&ctx, 8, 160);
    let setup = ctx.wallets.len() * 2 + ctx.accounts.len();
    insert_all(&db.pool, &commits[..setup]).await;
    let handle = Runtime::all(db.pool.clone(), config()).spawn();

    // Each aggregate's commits stay with one writer, in order; writers commit after a random
    // pause, so transactions that inserted first often commit last.
    let mut lanes: Vec<Vec<Commit>> = vec![Vec::new(); 8];
    for c in &commits[setup..] {
        let lane = c
            .aggregate_id
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
            % 8;
        lanes[lane as usize].push(c.clone());
    }
    let raced = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for (i, lane) in lanes.into_iter().enumerate() {
        let mut conn = db.connect().await;
        let raced = raced.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
            for group in lane.chunks(3) {
                let mut tx = conn.begin().await.unwrap();
                let positions = insert_commits(&mut tx, group).await.unwrap();
                let pause = rng.gen_range(0..6);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                tx.commit().await.unwrap();
                // Positions are 1, 2, 3, … with no gaps (nothing rolls back here): if fewer
                // than min-1 events below ours are visible now, one of them commits after us.
                let min = *positions.iter().min().unwrap();
                let visible_below: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position < $1")
                        .bind(min)
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                if visible_below < min - 1 {
                    raced.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    wait_caught_up(&db.pool, &all_readers(), CAUGHT_UP)
        .await
        .unwrap();
    handle.shutdown().await.unwrap();

    let (n, max): (i64, i64) = sqlx::query_as("SELECT count(*), max(global_position) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        n, max,
        "positions have no gaps, so the race check above holds"
    );
    assert!(
        raced.load(Ordering::Relaxed) > 0,
        "some event committed after a later-numbered one"
    );
    assert_views_equal_a_rebuild(&db.pool).await;
    let report = projections::audit::verify(&db.pool).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.events as i64, n);
}

/// A hook that stops the first batch of `worker` before it commits, once, and tells the test.
fn stop_once_before_commit(
    worker: &'static str,
) -> (
    Hooks,
    tokio::sync::mpsc::UnboundedReceiver<BatchInfo>,
    Arc<tokio::sync::Notify>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let fired = Arc::new(AtomicBool::new(false));
    let hook_release = release.clone();
    let hooks = Hooks {
        before_commit: Some(Arc::new(move |info: BatchInfo| {
            let stop = info.worker == worker && !fired.swap(true, Ordering::SeqCst);
            let tx = tx.clone();
            let release = hook_release.clone();
            async move {
                if stop {
                    let _ = tx.send(info);
                    release.notified().await;
                }
            }
            .boxed()
        })),
        after_commit: None,
    };
    (hooks, rx, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projector_aborted_mid_batch_resumes_without_applying_an_event_twice_or_missing_one() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("abort", 12, 2);
    insert_all(&db.pool, &simulate(&ctx, 3, 120)).await;
    let (hooks, mut stopped, _release) = stop_once_before_commit("daily_finance");
    let handle = Runtime::all(db.pool.clone(), RuntimeConfig { hooks, ..config() }).spawn();
    let batch = stopped.recv().await.unwrap();
    // The batch's rows are written but not committed: the checkpoint is still before it.
    let mut conn = db.connect().await;
    let at = engine::log::load_checkpoint(&mut conn, "projection:daily_finance")
        .await
        .unwrap();
    assert!(
        at < batch.first.unwrap(),
        "{at} is before the stopped batch"
    );
    // The task is aborted; dropping it drops the connection, and the batch rolls back.
    handle.abort();

    let handle = Runtime::all(db.pool.clone(), config()).spawn();
    wait_caught_up(&db.pool, &all_readers(), CAUGHT_UP)
        .await
        .unwrap();
    handle.shutdown().await.unwrap();
    assert_views_equal_a_rebuild(&db.pool).await;
    // The totals agree with the events themselves (nothing counted twice or missed).
    let (placed, rows): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE event_type = 'OrderPlaced'), \
                (SELECT sum(orders_placed)::bigint FROM daily_finance)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(placed, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projector_whose_connection_is_killed_mid_batch_reconnects_and_applies_each_event_once() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("kill", 12, 2);
    insert_all(&db.pool, &simulate(&ctx, 4, 120)).await;
    let (hooks, mut stopped, release) = stop_once_before_commit("account_balances");
    let handle = Runtime::all(db.pool.clone(), RuntimeConfig { hooks, ..config() }).spawn();
    stopped.recv().await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() \
           AND application_name = 'trx-energy projector account_balances'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(killed, [true]);
    release.notify_one();
    wait_caught_up(&db.pool, &all_readers(), CAUGHT_UP)
        .await
        .unwrap();
    let status = handle.metrics.worker("account_balances").unwrap();
    assert_eq!(status.state, WorkerState::Running);
    handle.shutdown().await.unwrap();
    assert_views_equal_a_rebuild(&db.pool).await;
    let (credited, deposited): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum((payload::jsonb #>> '{FundsCredited,amount}')::bigint), 0)::bigint \
                   FROM events WHERE event_type = 'FundsCredited'), \
                (SELECT coalesce(sum(deposited), 0)::bigint FROM account_balances)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(credited, deposited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_runtimes_exactly_one_applies_and_the_other_takes_over_when_it_stops() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("pair", 10, 2);
    let commits = simulate(&ctx, 5, 120);
    let (first, second) = commits.split_at(commits.len() / 2);
    insert_all(&db.pool, first).await;
    let a = Runtime::all(db.pool.clone(), config()).spawn();
    // Let A take every lock before B starts, so the roles are known.
    wait_caught_up(&db.pool, &all_readers(), CAUGHT_UP)
        .await
        .unwrap();
    let b = Runtime::all(db.pool.clone(), config()).spawn();
    let deadline = std::time::Instant::now() + CAUGHT_UP;
    while b
        .metrics
        .snapshot()
        .workers
        .iter()
        .any(|w| w.state != WorkerState::Standby)
    {
        assert!(std::time::Instant::now() < deadline, "B never stood by");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_count = event_count(&db.pool).await as u64;
    for w in a.metrics.snapshot().workers {
        assert_eq!(w.state, WorkerState::Running, "{}", w.name);
        assert_eq!(w.events_applied, first_count, "{}", w.name);
    }

    // A stops; B takes over every worker and applies the rest, once.
    let a_metrics = a.metrics.clone();
    a.shutdown().await.unwrap();
    insert_all(&db.pool, second).await;
    wait_caught_up(&db.pool, &all_readers(), CAUGHT_UP)
        .await
        .unwrap();
    let total = event_count(&db.pool).await as u64;
    for w in b.metrics.snapshot().workers {
        assert_eq!(w.state, WorkerState::Running, "{}", w.name);
        let by_a = a_metrics.worker(&w.name).unwrap().events_applied;
        assert_eq!(
            by_a + w.events_applied,
            total,
            "{} applied each event once",
            w.name
        );
    }
    b.shutdown().await.unwrap();
    assert_views_equal_a_rebuild(&db.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_a_projection_cannot_read_stops_it_at_that_event_without_skipping() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("stop", 3, 1);
    insert_all(&db.pool, &simulate(&ctx, 9, 10)).await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('account', 'acct-stop-0', 1000, 'FundsCredited', '1.0', '{\"FundsCredited\":{\"amount\":-5}}', '{}')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let bad: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('account', 'acct-after', 1, 'AccountOpened', '1.0', \
                 '{\"AccountOpened\":{\"account_id\":\"acct-after\",\"opened_at\":\"2026-03-01T00:00:00Z\"}}', '{}')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut handle = Runtime::all(db.pool.clone(), config()).spawn();
    let (worker, error) = handle.wait_any_failure().await;
    assert!(
        error.to_string().contains("FundsCredited"),
        "{worker}: {error}"
    );
    let status = handle.metrics.worker(worker).unwrap();
    assert!(matches!(status.state, WorkerState::Failed(_)), "{status:?}");
    handle.abort();
    // Its checkpoint stopped just before the bad event; nothing after it was applied.
    let mut conn = db.connect().await;
    let at = engine::log::load_checkpoint(&mut conn, &status.reader)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE (transaction_id, global_position) < \
         (SELECT transaction_id, global_position FROM events WHERE global_position = $1) \
         ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
    )
    .bind(bad)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        at.global_position <= before,
        "{at} is not past the bad event"
    );
}
