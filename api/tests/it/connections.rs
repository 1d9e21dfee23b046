//! PostgreSQL connections: two `trx-energy run` processes and a CLI command on one server
//! hold what docs/connections.md says, under a burst of API reads, well under PostgreSQL's
//! default limit of 100 (issue: each `run` held 27–32, and a second one plus a CLI command hit
//! "too many clients already").

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::app::Plan;
use api::settings::Settings;
use engine::testing::TestDb;

/// Connections a `run` holds outside its pool, as measured (docs/connections.md): the engine
/// workers' lease and log-reading connections (12), one per projector worker (6), and the
/// token revocations' listener (1).
const DEDICATED: i64 = 19;

const JWT_SECRET: &str = "connections test secret, 32+ characters long";

/// A child process, stopped (SIGINT, then waited for) when dropped, also when the test fails.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// A `trx-energy run` on `db`, and the URL its API prints.
fn start_run(db: &TestDb, n: usize) -> (Stopped, String) {
    let data = std::env::temp_dir().join(format!("trx-conn-{}-{}", db.name, n));
    let mut child = Command::new(env!("CARGO_BIN_EXE_trx-energy"))
        .arg("run")
        .env("DATABASE_URL", db.url())
        .env("TRX_MASTER_KEY", "ab".repeat(32))
        .env("TRX_JWT_SECRET", JWT_SECRET)
        .env("TRX_DATA_DIR", &data)
        .env("TRX_SIM_PORT", "0")
        .env("TRX_HTTP_ADDR", "127.0.0.1:0")
        .env("TRX_SIM_BLOCK_TIME_MS", "100")
        .env("TRX_RATE_LIMIT_READ", "1000000/1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start trx-energy run");
    let stdout = child.stdout.take().unwrap();
    let child = Stopped(child);
    let mut api = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("HTTP API at ") {
            let base = rest.split_whitespace().next().unwrap_or("");
            api = Some(base.trim_end_matches("/v1").to_string());
        }
        if line.starts_with("trx-energy is running") {
            break;
        }
    }
    (child, api.expect("the API's URL is printed"))
}

/// Connections of `trx-energy` processes to `database` now (each names itself and its pid in
/// `application_name`): in all, and the most any one process holds.
async fn count(pool: &sqlx::PgPool, database: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT coalesce(sum(n), 0)::bigint, coalesce(max(n), 0) FROM (\
           SELECT substring(application_name FROM 'pid [0-9]+') AS pid, count(*) AS n \
           FROM pg_stat_activity \
           WHERE datname = $1 AND application_name LIKE 'trx-energy%' GROUP BY 1) p",
    )
    .bind(database)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_and_a_cli_command_stay_well_under_the_servers_limit() {
    // Arrange: two engines on one database, and a watcher of pg_stat_activity.
    let db = TestDb::new().await;
    let (first, first_api) = tokio::task::block_in_place(|| start_run(&db, 1));
    let (second, second_api) = tokio::task::block_in_place(|| start_run(&db, 2));
    let (peak_total, peak_process) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicI64::new(0)));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (total, process, watching) =
            (peak_total.clone(), peak_process.clone(), watching.clone());
        let (pool, database) = (db.pool.clone(), db.name.clone());
        tokio::spawn(async move {
            while watching.load(Ordering::Relaxed) {
                let (all, one) = count(&pool, &database).await;
                total.fetch_max(all, Ordering::Relaxed);
                process.fetch_max(one, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Act: a CLI command (a token), then a burst of reads on both APIs while a second CLI
    // command runs.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_trx-energy"))
            .args(args)
            .env("DATABASE_URL", db.url())
            .env("TRX_JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run a CLI command")
    };
    let issued = cli(&[
        "token",
        "issue",
        "--role",
        "finance",
        "--subject",
        "conn",
        "--ttl",
        "1h",
    ]);
    assert!(issued.status.success(), "{issued:?}");
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let mut load = Vec::new();
    for i in 0..16 {
        let url = format!(
            "{}/v1/finance/balances",
            if i % 2 == 0 { &first_api } else { &second_api }
        );
        let (http, token) = (http.clone(), token.clone());
        load.push(tokio::spawn(async move {
            for _ in 0..20 {
                let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    let url = db.url();
    let listed = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_trx-energy"))
            .args(["token", "list"])
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run trx-energy token list")
    });
    for l in load {
        l.await.unwrap();
    }
    let listed = listed.await.unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let status = cli(&["status"]);
    assert!(status.status.success(), "{status:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    watching.store(false, Ordering::Relaxed);
    watcher.await.unwrap();

    // Assert: each process within its documented share, all together well under 100.
    let (total, process) = (
        peak_total.load(Ordering::Relaxed),
        peak_process.load(Ordering::Relaxed),
    );
    let pool = i64::from(Plan::run().pool_size(&Settings::default()));
    println!("peak connections: {total} in all, {process} in one process (a run's pool: {pool})");
    assert!(
        process <= pool + DEDICATED,
        "one process held {process} connections"
    );
    assert!(
        total <= 2 * (pool + DEDICATED) + 2,
        "{total} connections in all"
    );
    assert!(
        total <= 70,
        "{total} connections: not well under PostgreSQL's default 100"
    );
    drop((first, second));
}
