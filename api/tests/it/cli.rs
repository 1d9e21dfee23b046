//! `trx-energy` as an operator meets it on a fresh machine: `--help`, `migrate` against an empty
//! database (and again), the migrations every process applies at start-up, and the private
//! cluster it starts in its data directory when `DATABASE_URL` is unset: stopped on exit (also
//! on a failing exit), and left running when it was another process's.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use engine::store::cluster::PrivateCluster;
use engine::testing::TestDb;
use sqlx::PgPool;

const BIN: &str = env!("CARGO_BIN_EXE_trx-energy");

/// Runs the binary with `args` and extra environment (`None` removes a variable); the settings
/// that would reach outside the test are removed.
fn trx(args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("TRX_DATA_DIR")
        .env_remove("TRX_MASTER_KEY")
        .env_remove("TRON_NODE_URL")
        .env("RUST_LOG", "info");
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.output().expect("start trx-energy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The migration files in `migrations/`.
fn migration_files() -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .map(|e| e.path().extension().is_some_and(|x| x == "sql"))
                .unwrap_or(false)
        })
        .count() as i64
}

async fn table_exists(pool: &PgPool, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn applied_migrations(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Everything issue 2 asks of the event store's schema: the postgres-es table with the global
/// order's columns and index, and the reader checkpoints.
async fn assert_event_store_schema(pool: &PgPool) {
    assert!(table_exists(pool, "_sqlx_migrations").await);
    assert_eq!(applied_migrations(pool).await, migration_files());
    let columns: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT column_name::text, udt_name::text, is_nullable::text, is_identity::text, \
                column_default::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = 'events' \
           AND column_name IN ('global_position', 'transaction_id', 'recorded_at') \
         ORDER BY column_name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let by_name = |name: &str| {
        columns
            .iter()
            .find(|c| c.0 == name)
            .unwrap_or_else(|| panic!("events has no column {name}: {columns:?}"))
            .clone()
    };
    let position = by_name("global_position");
    assert_eq!((position.1.as_str(), position.3.as_str()), ("int8", "YES"));
    let tx = by_name("transaction_id");
    assert_eq!((tx.1.as_str(), tx.2.as_str()), ("xid8", "NO"));
    assert_eq!(tx.4.as_deref(), Some("pg_current_xact_id()"));
    let at = by_name("recorded_at");
    assert_eq!(at.1, "timestamptz");
    assert_eq!(at.4.as_deref(), Some("now()"));
    let index: Option<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'events' \
           AND indexdef LIKE '%(transaction_id, global_position)'",
    )
    .fetch_optional(pool)
    .await
    .unwrap();
    assert!(
        index.is_some(),
        "no index on events (transaction_id, global_position)"
    );
    let checkpoint_columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = 'reader_checkpoints' \
         ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        checkpoint_columns
            .iter()
            .take(3)
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["reader", "last_tx", "last_pos"],
        "{checkpoint_columns:?}"
    );
}

#[test]
fn help_lists_every_command() {
    let out = trx(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for command in [
        "migrate", "run", "serve", "token", "status", "tron", "keys", "simulate", "project",
        "rebuild", "audit",
    ] {
        assert!(listed.contains(&command), "--help lacks {command}: {help}");
    }
    // It says where settings come from, and what happens without DATABASE_URL.
    assert!(help.contains("DATABASE_URL"), "{help}");
    assert!(help.contains("private PostgreSQL cluster"), "{help}");
}

#[test]
fn a_bad_setting_stops_a_command_at_start_naming_the_variable() {
    let data = std::env::temp_dir().join(format!("trx-bad-setting-{}", std::process::id()));
    let data = data.to_str().unwrap();
    for (args, name, value, code) in [
        (&["status"][..], "TRX_SIM_PORT", "eighty", 2),
        (&["status"][..], "TRX_DATABASE_POOL_SIZE", "0", 2),
        (&["serve"][..], "TRX_RATE_LIMIT_READ", "100", 1),
        (&["run"][..], "TRX_ALLOW_IPS_ADMIN", "10.0.0.0/40", 1),
    ] {
        let out = trx(args, &[(name, Some(value)), ("TRX_DATA_DIR", Some(data))]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?} {name}={value}: {out:?}"
        );
        assert!(text(&out.stderr).contains(name), "{}", text(&out.stderr));
        // Refused before anything was opened: no private cluster was made.
        assert!(
            !Path::new(data).join("postgres").exists(),
            "{args:?} {name}"
        );
    }
}

#[tokio::test]
async fn migrate_builds_the_event_store_in_an_empty_database_and_a_second_run_changes_nothing() {
    let db = TestDb::empty().await;
    assert!(!table_exists(&db.pool, "_sqlx_migrations").await);
    assert!(!table_exists(&db.pool, "events").await);

    let url = db.url();
    let out = trx(&["migrate"], &[("DATABASE_URL", Some(&url))]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("migrations applied"));
    assert_event_store_schema(&db.pool).await;
    let first: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&db.pool)
            .await
            .unwrap();

    let again = trx(&["migrate"], &[("DATABASE_URL", Some(&url))]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let second: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(first, second);
    db.drop_database().await;
}

#[tokio::test]
async fn any_command_that_opens_the_database_applies_the_migrations_first() {
    let db = TestDb::empty().await;
    let url = db.url();
    // `status` reads the events table: it can only answer if it migrated first.
    let out = trx(&["status"], &[("DATABASE_URL", Some(&url))]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("events: 0 in 0 aggregates"),
        "{}",
        text(&out.stdout)
    );
    assert_event_store_schema(&db.pool).await;
    db.drop_database().await;
}

/// A fresh data directory, removed (with any server left running in it stopped) when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "trx-cli-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        // Created with the umask's mode (0755): as root the cluster runs as `postgres`, which
        // must be able to reach its directory inside.
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    fn cluster(&self) -> PathBuf {
        self.0.join("postgres")
    }

    fn postmaster_pid(&self) -> PathBuf {
        self.cluster().join("pgdata").join("postmaster.pid")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.postmaster_pid().exists() {
            // A server the binary failed to stop: stop it, so a failing test leaves nothing.
            if let Ok(cluster) = PrivateCluster::start(&self.cluster()) {
                let _ = cluster.stop();
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True (and says so) when the private cluster cannot be tested here: the README promises the
/// tests pass with only `DATABASE_URL`, where no server binaries may be installed.
fn skipped_without_server_binaries() -> bool {
    if server_binaries_installed() {
        return false;
    }
    eprintln!(
        "SKIPPED: no PostgreSQL server binaries (initdb, pg_ctl) installed; the private \
         cluster cannot be tested on this machine"
    );
    true
}

/// Whether PostgreSQL's server binaries are installed where the private cluster looks for them.
fn server_binaries_installed() -> bool {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.iter()
        .any(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// The port the binary says its private cluster listens on.
fn cluster_port(stderr: &str) -> u16 {
    stderr
        .lines()
        .find(|l| l.contains("started a private PostgreSQL cluster"))
        .and_then(|l| l.split("port=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no private cluster port in: {stderr}"))
}

fn assert_stopped(data: &DataDir, port: u16) {
    assert!(
        !data.postmaster_pid().exists(),
        "the private cluster is still running (postmaster.pid is there)"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on the private cluster's port {port}"
    );
}

#[test]
fn without_database_url_migrate_starts_a_private_cluster_in_the_data_dir_and_stops_it_on_exit() {
    if skipped_without_server_binaries() {
        return;
    }
    let data = DataDir::new("migrate");
    let dir = data.0.to_str().unwrap();
    let out = trx(&["migrate"], &[("TRX_DATA_DIR", Some(dir))]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(text(&out.stdout).contains("migrations applied"));
    assert!(
        data.cluster().join("pgdata").join("PG_VERSION").is_file(),
        "no cluster in {}",
        data.cluster().display()
    );
    let port = cluster_port(&stderr);
    assert_ne!(port, 5432, "the private cluster must not be the system's");
    assert_stopped(&data, port);

    // The next process finds the cluster it left (initialised and migrated), starts it again,
    // and stops it again.
    let out = trx(&["status"], &[("TRX_DATA_DIR", Some(dir))]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(text(&out.stdout).contains("events: 0 in 0 aggregates"));
    assert!(!stderr.contains("applied migrations"), "{stderr}");
    assert_stopped(&data, cluster_port(&stderr));
}

#[test]
fn a_process_that_fails_after_starting_its_private_cluster_still_stops_it() {
    if skipped_without_server_binaries() {
        return;
    }
    let data = DataDir::new("fail");
    // `run` opens the database, then fails to start its chain simulator on a port in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let sim_port = taken.local_addr().unwrap().port().to_string();
    let out = trx(
        &["run"],
        &[
            ("TRX_DATA_DIR", Some(data.0.to_str().unwrap())),
            ("TRX_SIM_PORT", Some(&sim_port)),
            ("TRX_HTTP_ADDR", Some("127.0.0.1:0")),
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "run should fail: {stderr}");
    assert!(
        stderr.contains("start the built-in TRON simulator"),
        "run failed for another reason: {stderr}"
    );
    assert_stopped(&data, cluster_port(&stderr));
}

#[test]
fn a_process_that_finds_the_private_cluster_running_leaves_it_running() {
    if skipped_without_server_binaries() {
        return;
    }
    let data = DataDir::new("shared");
    // Another process (here: this test, as `run` would) has the cluster running; a second
    // command on the same data directory, e.g. `token issue`, uses it and must not stop it.
    let running = PrivateCluster::start(&data.cluster()).unwrap();
    assert!(running.started());
    let out = trx(
        &["status"],
        &[("TRX_DATA_DIR", Some(data.0.to_str().unwrap()))],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(data.postmaster_pid().exists(), "the cluster was stopped");
    assert!(
        TcpStream::connect(("127.0.0.1", running.port())).is_ok(),
        "the cluster no longer answers"
    );
    running.stop().unwrap();
    assert!(!data.postmaster_pid().exists());
}
