//! `api_tokens`: one row per issued bearer token (its id, subject, role, times; never the
//! token). A revocation is announced on [`CHANNEL`] in the transaction that makes it, so every
//! API process forgets the token.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// The notification channel of revocations (payload: the token's id).
pub const CHANNEL: &str = "api_token_revoked";

/// A recorded token (the token itself is never stored).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TokenRecord {
    pub jti: String,
    pub subject: String,
    pub role: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Records an issued token.
pub async fn record(
    pool: &PgPool,
    jti: &str,
    subject: &str,
    role: &str,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_tokens (jti, subject, role, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(jti)
    .bind(subject)
    .bind(role)
    .bind(issued_at)
    .bind(expires_at)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Revokes a token and announces it; false if there is no such token.
pub async fn revoke(pool: &PgPool, jti: &str) -> Result<bool, sqlx::Error> {
    let done: Option<(String, Option<String>)> = sqlx::query_as(
        "WITH revoked AS (UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) \
         WHERE jti = $1 RETURNING jti) \
         SELECT jti, pg_notify($2, jti)::text FROM revoked",
    )
    .bind(jti)
    .bind(CHANNEL)
    .fetch_optional(pool)
    .await?;
    Ok(done.is_some())
}

/// Every recorded token, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<TokenRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT jti, subject, role, issued_at, expires_at, revoked_at FROM api_tokens ORDER BY issued_at DESC",
    )
    .fetch_all(pool)
    .await
}

/// A token's `(subject, role, revoked_at)`; `None` when it was never issued here.
pub async fn find(
    pool: &PgPool,
    jti: &str,
) -> Result<Option<(String, String, Option<DateTime<Utc>>)>, sqlx::Error> {
    sqlx::query_as("SELECT subject, role, revoked_at FROM api_tokens WHERE jti = $1")
        .bind(jti)
        .fetch_optional(pool)
        .await
}
