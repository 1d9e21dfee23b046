//! The database a process uses: `DATABASE_URL`'s server, or a private cluster in the data
//! directory (started now, stopped when the process ends). Migrations are applied on connect.

use std::str::FromStr;

use engine::store::cluster::PrivateCluster;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::settings::Settings;

/// A connected, migrated pool, and the private cluster behind it if we started one.
pub struct Database {
    pub pool: PgPool,
    cluster: Option<PrivateCluster>,
}

impl Database {
    pub async fn open(settings: &Settings) -> Result<Self, engine::Error> {
        let (options, cluster) = match &settings.database_url {
            Some(url) => (PgConnectOptions::from_str(url.expose())?, None),
            None => {
                let dir = settings.data_dir.join("postgres");
                let cluster = PrivateCluster::start(&dir)?;
                tracing::info!(port = cluster.port(), dir = %dir.display(),
                    "started a private PostgreSQL cluster (DATABASE_URL is not set)");
                let options = PgConnectOptions::from_str(&cluster.url())?;
                (options, Some(cluster))
            }
        };
        // No ping before every acquire (a round trip in front of every query): sqlx already
        // pings a connection when it is returned, and a connection that died while idle fails
        // its query, which the callers retry (process managers retry their batch).
        let pool = PgPoolOptions::new()
            .max_connections(settings.database_pool_size)
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
    pub async fn close(self) -> Result<(), engine::Error> {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            cluster.stop()?;
            tracing::info!("stopped the private PostgreSQL cluster");
        }
        Ok(())
    }
}
