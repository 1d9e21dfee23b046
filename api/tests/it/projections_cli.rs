//! `trx-energy project`, `rebuild` and `audit` through the real binary against a test database:
//! two projector processes share the work (one applies, the other takes over when it is
//! killed), and the exit codes of `audit verify` and `rebuild --check`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine::testing::TestDb;
use projections::testing::{
    all_readers, differences, insert_commits, simulate, wait_caught_up, Ctx,
};
use sqlx::PgPool;

fn trx_energy(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trx-energy"));
    cmd.env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .env("TRX_DATABASE_POOL_SIZE", "4")
        .stdin(Stdio::null());
    cmd
}

/// A `trx-energy project` process, killed when dropped (also when an assertion fails). Its
/// warnings go to a file, so a failed assertion can show why a process stopped.
struct Projector(Child, std::path::PathBuf);

impl Projector {
    fn id(&self) -> u32 {
        self.0.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_projector(db: &TestDb, n: u32) -> Projector {
    let log = std::env::temp_dir().join(format!("{}-projector-{n}.log", db.name));
    let stderr = std::fs::File::create(&log).expect("create the projector's log file");
    Projector(
        trx_energy(db)
            .arg("project")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start trx-energy project"),
        log,
    )
}

/// Which process (by its pid in `application_name`) holds each worker's ownership lock. Only
/// the session locks that make a process a worker's owner count, not the per-batch transaction
/// locks a running worker takes and drops all the time.
async fn owners(pool: &PgPool) -> Vec<String> {
    let mut lock_names: Vec<String> = projections::projection::names()
        .into_iter()
        .map(|n| format!("projection:{n}"))
        .collect();
    lock_names.push("audit-sequencer".to_string());
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() \
           AND l.objsubid = 2 \
           AND l.objid IN (SELECT hashtext(n)::oid FROM unnest($1::text[]) AS n) \
           AND a.application_name LIKE 'trx-energy projector pid %' ORDER BY 1",
    )
    .bind(&lock_names)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn connections_of(pool: &PgPool, pid: u32) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE $1",
    )
    .bind(format!("trx-energy projector pid {pid} %"))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_owned_by(owners: &[String], pid: u32) -> bool {
    let prefix = format!("trx-energy projector pid {pid} ");
    owners.len() == all_readers().len() && owners.iter().all(|o| o.starts_with(&prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_project_processes_one_applies_and_the_other_takes_over_when_it_is_killed() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("procs", 8, 2);
    let commits = simulate(&ctx, 31, 90);
    let thirds: Vec<&[projections::testing::Commit]> =
        commits.chunks(commits.len() / 3 + 1).collect();
    let mut conn = db.connect().await;
    insert_commits(&mut conn, thirds[0]).await.unwrap();

    let mut first = spawn_projector(&db, 1);
    wait_caught_up(&db.pool, &all_readers(), Duration::from_secs(60))
        .await
        .unwrap();
    let mut second = spawn_projector(&db, 2);
    // The second process is up (its connections try the locks) but owns nothing.
    let second_pid = second.id();
    wait_for("the second process to connect", || async {
        connections_of(&db.pool, second_pid).await >= all_readers().len() as i64
    })
    .await;
    insert_commits(&mut conn, thirds[1]).await.unwrap();
    wait_caught_up(&db.pool, &all_readers(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        all_owned_by(&owners(&db.pool).await, first.id()),
        "owners {:?}; first (pid {}) logged:\n{}\nsecond (pid {second_pid}) logged:\n{}",
        owners(&db.pool).await,
        first.id(),
        first.log(),
        second.log()
    );

    // The owner dies; the standby takes every worker over and applies the rest.
    first.kill();
    let killed = Instant::now();
    insert_commits(&mut conn, thirds[2]).await.unwrap();
    wait_caught_up(&db.pool, &all_readers(), Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!(
        "handed over and caught up {:?} after the kill",
        killed.elapsed()
    );
    wait_for("the second process to own every worker", || async {
        all_owned_by(&owners(&db.pool).await, second_pid)
    })
    .await;
    second.kill();
    let diff = differences(&db.pool).await.unwrap();
    assert!(diff.is_empty(), "{diff:#?}");
}

#[tokio::test]
async fn audit_verify_exits_0_on_an_untouched_log_and_1_naming_a_changed_event() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("cli", 4, 1);
    let mut conn = db.connect().await;
    insert_commits(&mut conn, &simulate(&ctx, 41, 15))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();

    let ok = trx_energy(&db).args(["audit", "verify"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&ok.stdout).starts_with(&format!("ok {n} events\n")),
        "{ok:?}"
    );

    // The export's head is signed with the audit key, which the master key opens.
    let no_key = trx_energy(&db)
        .args(["audit", "export", "--from", "1", "--to", &n.to_string()])
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("TRX_MASTER_KEY is not set"));
    let export = trx_energy(&db)
        .args(["audit", "export", "--from", "1", "--to", &n.to_string()])
        .env("TRX_MASTER_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0), "{export:?}");
    let file = std::env::temp_dir().join(format!("{}.jsonl", db.name));
    std::fs::write(&file, &export.stdout).unwrap();
    let offline = trx_energy(&db)
        .args(["audit", "verify-export"])
        .arg(&file)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&offline.stdout).starts_with(&format!(
            "ok {n} lines (audit #1..#{n}); 1 signed head holds"
        )),
        "{offline:?}"
    );
    let _ = std::fs::remove_file(&file);

    let history = trx_energy(&db)
        .args(["audit", "history", "account", "acct-cli-0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(text.starts_with("#"), "{text}");
    assert!(
        text.contains("AccountOpened by workload (system)"),
        "{text}"
    );

    let state = trx_energy(&db)
        .args([
            "audit",
            "state",
            "account",
            "acct-cli-0",
            "--at-position",
            "1000000",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(json["aggregate_id"], "acct-cli-0");
    assert!(json["state"]["balances"].is_object(), "{json}");

    let mut t = db.connect().await;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut t)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET metadata = '{\"actor_subject\":\"mallory\"}' WHERE global_position = 3",
    )
    .execute(&mut t)
    .await
    .unwrap();
    let failed = trx_energy(&db).args(["audit", "verify"]).output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(
        text.starts_with("FAILED: altered: audit #3 (global position 3)"),
        "{text}"
    );
}

#[tokio::test]
async fn rebuild_check_exits_1_and_prints_the_rows_when_a_view_was_edited() {
    let db = TestDb::new().await;
    let ctx = Ctx::new("rcheck", 4, 1);
    let mut conn = db.connect().await;
    insert_commits(&mut conn, &simulate(&ctx, 51, 20))
        .await
        .unwrap();
    let rebuilt = trx_energy(&db).args(["rebuild", "--all"]).output().unwrap();
    assert_eq!(
        rebuilt.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert!(String::from_utf8_lossy(&rebuilt.stdout).starts_with(
        "rebuilt account_balances, daily_finance, deposits, orders, wallet_utilisation:"
    ));

    let check = trx_energy(&db)
        .args(["rebuild", "orders", "--check"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0));
    sqlx::query(
        "UPDATE orders SET price = price + 1 WHERE order_id = (SELECT min(order_id) FROM orders)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let check = trx_energy(&db)
        .args(["rebuild", "orders", "--check"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.starts_with("orders: 1 rows only in the live table, 1 rows only in the rebuild"),
        "{text}"
    );
    assert!(text.contains("  live:    {"), "{text}");
}
