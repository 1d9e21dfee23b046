//! Test support: a fresh, migrated database per test on a real PostgreSQL server.
//!
//! The server is `DATABASE_URL`'s when that is set; otherwise a private cluster under
//! `target/pg-test`, started from the installed PostgreSQL binaries by the first test that needs
//! it and left running on purpose (README): every test binary of a run shares it, so none may
//! stop it on exit, and the next run starts at once. Stop it with
//! `pg_ctl -D target/pg-test/pgdata stop`, as the `postgres` user when root.
//! Databases are named `trxtest_<unix seconds>_<random>`; ones older than three hours are
//! dropped when a new one is made, so stale test databases do not pile up.
//!
//! The server is shared by every test binary of a run and by the processes tests start, so it
//! can be momentarily full ("too many clients already", SQLSTATE 53300): every connection made
//! here then waits for a free slot (bounded by [`ROOM_WAIT`], and said once on stderr) instead
//! of failing the test; the pools' own connects do the same (sqlx retries 53300 until their
//! acquire timeout, [`ROOM_WAIT`] here).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::store::cluster::PrivateCluster;

const STALE_AFTER_SECS: u64 = 3 * 3600;

/// How long a test waits for the server to have room for a connection before it fails.
pub const ROOM_WAIT: Duration = Duration::from_secs(120);

/// Whether `e` says the server has no room for a connection now (too many clients, or still
/// starting up): worth waiting for.
pub fn is_full(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("53300" | "57P03")))
}

/// Connects, waiting while the server is full (up to [`ROOM_WAIT`]).
pub async fn connect_waiting(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    let deadline = Instant::now() + ROOM_WAIT;
    let mut pause = Duration::from_millis(50);
    let mut told = false;
    loop {
        match options.connect().await {
            Err(e) if is_full(&e) && Instant::now() < deadline => {
                if !told {
                    eprintln!("the test PostgreSQL server is full ({e}); waiting for a free connection slot");
                    told = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

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
        let mut conn = connect_waiting(&admin)
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
            .acquire_timeout(ROOM_WAIT)
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
        let mut conn = connect_waiting(&admin_options())
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
        connect_waiting(&self.options)
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

/// Where a secret shows in `text`, if it does: the form it is written in. Each form is made from
/// the secret's first 8 bytes, so a secret cut short or inside a longer value is caught too: hex
/// (in any case), and `Debug` of its bytes in decimal and in hex (`{:?}`, `{:x?}`, without the
/// bracket, so `Zeroizing([…])` and longer arrays match); and the whole secret in base64,
/// standard and URL-safe (unpadded: the padded form contains it). For tests that search logs,
/// answers and events for keys.
pub fn find_secret(text: &str, secret: &[u8]) -> Option<&'static str> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let head = &secret[..secret.len().min(8)];
    let debug = |text: String| text.trim_matches(['[', ']']).to_string();
    let lower = text.to_lowercase();
    [
        ("hex", lower.contains(&hex::encode(head))),
        ("Debug bytes", lower.contains(&debug(format!("{head:?}")))),
        (
            "Debug hex bytes",
            lower.contains(&debug(format!("{head:x?}"))),
        ),
        ("base64", text.contains(&STANDARD_NO_PAD.encode(secret))),
        ("base64url", text.contains(&URL_SAFE_NO_PAD.encode(secret))),
    ]
    .into_iter()
    .find_map(|(form, found)| found.then_some(form))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A role allowed one connection: the server answers its second "too many connections"
    /// (SQLSTATE 53300), as a full server does.
    async fn one_connection_role(db: &TestDb) -> PgConnectOptions {
        let role = format!("{}_one", db.name);
        sqlx::query(&format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 1"))
            .execute(&db.pool)
            .await
            .unwrap();
        db.options.clone().username(&role)
    }

    #[tokio::test]
    async fn a_connection_to_a_full_server_waits_for_a_free_slot_instead_of_failing() {
        // Arrange: the role's one slot is taken.
        let db = TestDb::new().await;
        let options = one_connection_role(&db).await;
        let held = options.connect().await.expect("the first connection");
        let refused = options.connect().await.expect_err("the second is refused");
        assert!(is_full(&refused), "{refused}");
        // Act: connect while the slot frees 300 ms later.
        let started = Instant::now();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            held.close().await.unwrap();
        });
        let waited = connect_waiting(&options).await;
        // Assert: it waited for the slot, then connected.
        release.await.unwrap();
        let conn = waited.expect("connected once the slot was free");
        assert!(started.elapsed() >= Duration::from_millis(250));
        conn.close().await.unwrap();
        let role = options.get_username().to_string();
        db.drop_database().await;
        let mut admin = connect_waiting(&admin_options()).await.unwrap();
        sqlx::query(&format!("DROP ROLE {role}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn another_error_is_not_waited_for() {
        let options = admin_options().database("trxtest_no_such_database");
        let started = Instant::now();
        let err = connect_waiting(&options)
            .await
            .expect_err("no such database");
        assert!(!is_full(&err), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
