//! `Idempotency-Key` on commands: the header, checked, and the hash of a request. A route names
//! its command by the key (per subject) and passes the hash as the command's fingerprint, so the
//! command log answers a retry with the first outcome and refuses the key with another body
//! (docs/api.md, "Idempotency"). Failures of ours (500) write nothing, so a retry runs again.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::error::ApiError;

pub const HEADER: &str = "Idempotency-Key";

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
