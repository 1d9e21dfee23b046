//! The SQL the API needs that belongs to no read model: the bearer tokens' table
//! ([`tokens`]), who opened an account ([`accounts`]), and a liveness probe. The HTTP handlers
//! call these and the views' queries (`projections::views::*::query`); they hold no SQL.

pub mod accounts;
pub mod tokens;

use sqlx::PgPool;

/// A round trip to the database.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
