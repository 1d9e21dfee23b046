//! `trx-energy` as an operator meets it on a fresh machine: `--help`, `migrate` against an empty
//! database (and again), and the migrations every process applies at start-up.

use std::path::Path;
use std::process::{Command, Output};

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
