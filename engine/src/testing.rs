//! Test support: a fresh, migrated database per test on a real PostgreSQL server.
//!
//! The server is `DATABASE_URL`'s when that is set; otherwise a private cluster under
//! `target/pg-test`, started from the installed PostgreSQL binaries by the first test that needs
//! it and left running on purpose (README): every test binary of a run shares it, so none may
//! stop it on exit, and the next run starts at once. Stop it with
//! `pg_ctl -D target/pg-test/pgdata stop`, as the `postgres` user when root.
//! Databases are named `trxtest_<unix seconds>_<random>`; ones older than three hours are
//! dropped when a new one is made, so stale test databases do not pile up.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::store::cluster::PrivateCluster;

const STALE_AFTER_SECS: u64 = 3 * 3600;

/// A database of one test's own.
pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
    pub options: PgConnectOptions,
}

impl TestDb {
    /// Creates and migrates a new database.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        crate::store::migrate(&db.pool)
            .await
            .expect("apply migrations");
        db
    }

    /// Creates a new database with nothing in it, not even the migrations (for tests of
    /// `trx-energy migrate` and of the migrations applied at start-up).
    pub async fn empty() -> Self {
        let admin = admin_options();
        let mut conn = admin
            .connect()
            .await
            .expect("connect to the test PostgreSQL server");
        drop_stale(&mut conn).await;
        let now = unix_now();
        let name = format!("trxtest_{now}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let options = admin.clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect_with(options.clone())
            .await
            .expect("connect to test database");
        Self {
            pool,
            name,
            options,
        }
    }

    /// Drops the database now (ending any session still connected to it), instead of leaving
    /// it for the three-hour clean-up.
    pub async fn drop_database(self) {
        self.pool.close().await;
        let mut conn = admin_options()
            .connect()
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop test database");
        conn.close().await.ok();
    }

    /// A connection of its own, outside the pool (for tests that hold transactions open).
    pub async fn connect(&self) -> PgConnection {
        self.options
            .connect()
            .await
            .expect("connect to test database")
    }

    /// The URL of this database, for child processes.
    pub fn url(&self) -> String {
        self.options.to_url_lossy().to_string()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn drop_stale(conn: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'trxtest\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    let now = unix_now();
    for name in names {
        let created = name
            .split('_')
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > STALE_AFTER_SECS {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// Connection options for the server's `postgres` database.
pub fn admin_options() -> PgConnectOptions {
    static URL: OnceLock<String> = OnceLock::new();
    let url = URL.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => private_cluster_url(),
    });
    PgConnectOptions::from_str(url)
        .expect("DATABASE_URL is a valid PostgreSQL URL")
        .database("postgres")
}

fn private_cluster_url() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("pg-test");
    std::fs::create_dir_all(&dir).expect("create target/pg-test");
    // One process at a time starts the cluster; the others then find it running.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("start.lock"))
        .expect("open cluster lock");
    lock.lock().expect("lock cluster start");
    let cluster = PrivateCluster::start(&dir).expect("start the private test cluster");
    lock.unlock().ok();
    cluster.url()
}
