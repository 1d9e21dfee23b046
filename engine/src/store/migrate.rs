//! The embedded migrations (`migrations/` at the workspace root), applied by `trx-energy migrate`
//! and at the start of every process. sqlx takes an advisory lock, so processes that start
//! together apply them once.

use sqlx::migrate::Migrator;
use sqlx::PgPool;

use crate::error::Error;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Applies every migration not yet applied; returns how many were applied now.
pub async fn migrate(pool: &PgPool) -> Result<usize, Error> {
    let before = applied(pool).await?;
    MIGRATOR.run(pool).await?;
    let after = applied(pool).await?;
    Ok(after.saturating_sub(before))
}

async fn applied(pool: &PgPool) -> Result<usize, Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(0);
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(n as usize)
}
