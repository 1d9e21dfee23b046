//! The database a process uses: `DATABASE_URL`'s server, or a private cluster in the data
//! directory: started now and stopped when the process ends (also when it ends on an error),
//! or, if another process has it running, used and left running. Migrations are applied on
//! connect.

use std::str::FromStr;

use engine::store::cluster::PrivateCluster;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::settings::Settings;

/// How long a pool connection may sit idle before the pool closes it.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A connected, migrated pool, and the private cluster behind it if we started one.
pub struct Database {
    pub pool: PgPool,
    cluster: StopOnDrop,
}

/// The private cluster we started, stopped when dropped: by [`Database::close`], and on every
/// early return or panic between `open` and `close` (a command that fails must not leave a
/// server running in the data directory).
struct StopOnDrop(Option<PrivateCluster>);

impl StopOnDrop {
    fn stop(&mut self) -> Result<(), engine::Error> {
        if let Some(cluster) = self.0.take() {
            cluster.stop()?;
            tracing::info!("stopped the private PostgreSQL cluster");
        }
        Ok(())
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "could not stop the private PostgreSQL cluster");
        }
    }
}

impl Database {
    /// Connects (a pool of at most `pool_size` connections, [`super::Plan::pool_size`]) and
    /// migrates.
    pub async fn open(settings: &Settings, pool_size: u32) -> Result<Self, engine::Error> {
        let (options, cluster) = match &settings.database.url {
            Some(url) => (PgConnectOptions::from_str(url.expose())?, StopOnDrop(None)),
            None => {
                let dir = settings.data.dir.join("postgres");
                let cluster = PrivateCluster::start(&dir)?;
                let url = cluster.url();
                let cluster = if cluster.started() {
                    tracing::info!(port = cluster.port(), dir = %dir.display(),
                        "started a private PostgreSQL cluster (DATABASE_URL is not set)");
                    StopOnDrop(Some(cluster))
                } else {
                    // Another process's (e.g. `run`'s, while this is `token issue`): it stops it.
                    tracing::info!(port = cluster.port(), dir = %dir.display(),
                        "using the private PostgreSQL cluster already running (DATABASE_URL is not set)");
                    StopOnDrop(None)
                };
                (PgConnectOptions::from_str(&url)?, cluster)
            }
        };
        // The process shows in `pg_stat_activity` (docs/connections.md counts connections so).
        let options = options.application_name(&format!("trx-energy pid {}", std::process::id()));
        // No ping before every acquire (a round trip in front of every query): sqlx already
        // pings a connection when it is returned, and a connection that died while idle fails
        // its query, which the callers retry (process managers retry their batch).
        //
        // Connections opened in a burst are closed after a minute idle, so a quiet process
        // holds few (docs/connections.md).
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .min_connections(0)
            .idle_timeout(IDLE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let applied = engine::store::migrate(&pool).await?;
        if applied > 0 {
            tracing::info!(applied, "applied migrations");
        }
        Ok(Self { pool, cluster })
    }

    /// Closes the pool and stops the private cluster if this process started it.
    pub async fn close(mut self) -> Result<(), engine::Error> {
        self.pool.close().await;
        self.cluster.stop()
    }
}
