//! `Idempotency-Key` on commands: the first request with a key runs and its answer is stored in
//! `idempotency_keys` (migration 0050); a retry with the same key and the same body gets the
//! same answer (waiting, bounded, while the first is still running); the same key with another
//! body is a 422. Keys are per subject. Failures of ours (500) are not stored, so a retry runs
//! again — safe, because the command id is derived from the key and the bus runs a command id once.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::error::ApiError;

pub const HEADER: &str = "Idempotency-Key";

/// How long a retry waits for the first request with its key to be answered.
const WAIT: Duration = Duration::from_secs(10);

/// The request's key, checked: 1 to 255 printable ASCII characters.
pub fn key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get(HEADER).ok_or_else(|| {
        ApiError::bad_request(
            "idempotency_key_required",
            "this command needs an Idempotency-Key header",
        )
        .field(HEADER)
    })?;
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "an Idempotency-Key is 1 to 255 printable ASCII characters",
            )
            .field(HEADER)
        })
}

/// The hash of a request, over its canonical JSON (object keys sorted).
pub fn request_hash(route: &str, body: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(body.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// What to do with a request.
#[derive(Debug)]
pub enum Claim {
    /// Ours to run; then [`finish`] or [`abandon`].
    Run,
    /// Answered before: send this again.
    Replay(StatusCode, serde_json::Value),
}

pub async fn begin(pool: &PgPool, subject: &str, key: &str, hash: &str) -> Result<Claim, ApiError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (subject, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(subject)
        .bind(key)
        .bind(hash)
        .execute(pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Run);
        }
        let row: Option<(String, Option<i32>, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE subject = $1 AND key = $2",
        )
        .bind(subject)
        .bind(key)
        .fetch_optional(pool)
        .await?;
        if let Some((stored, status, body)) = row {
            if stored != hash {
                return Err(ApiError::unprocessable(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                )
                .field(HEADER));
            }
            if let (Some(status), Some(body)) = (status, body) {
                let status = u16::try_from(status)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .ok_or_else(|| ApiError::internal("bad stored idempotent status"))?;
                return Ok(Claim::Replay(status, body));
            }
        }
        if Instant::now() >= deadline {
            return Err(ApiError::conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still running; retry later",
            )
            .field(HEADER));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// Stores the answer every retry will get.
pub async fn finish(
    pool: &PgPool,
    subject: &str,
    key: &str,
    status: StatusCode,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE subject = $1 AND key = $2",
    )
    .bind(subject)
    .bind(key)
    .bind(i32::from(status.as_u16()))
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets a claim whose request failed on our side, so a retry runs again.
pub async fn abandon(pool: &PgPool, subject: &str, key: &str) {
    let result = sqlx::query(
        "DELETE FROM idempotency_keys WHERE subject = $1 AND key = $2 AND response_status IS NULL",
    )
    .bind(subject)
    .bind(key)
    .execute(pool)
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not release an idempotency key");
    }
}
