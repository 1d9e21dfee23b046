//! `trx-energy audit verify-api URL`: the chain checked from the HTTP API alone, as an auditor
//! outside the operator's network would: every stored signed head (`/v1/audit/heads`) and the
//! current one (`/v1/audit/head`) are checked first, then every page of `/v1/audit/log` up to
//! the current head, line by line as an export is ([`projections::audit::offline`]).

use projections::audit::offline::{
    parse_strict, record_from_value, Ending, Finding, OfflineCheck, OfflineSummary, Record,
};
use projections::audit::{AuditPublicKey, SignedHead};
use serde_json::Value;

/// Entries per page asked for (the API's maximum).
const PAGE: i64 = 1_000;

/// Why the check could not run (the API did not answer as documented), as opposed to what it
/// found.
#[derive(Debug, thiserror::Error)]
pub enum VerifyApiError {
    #[error("GET {path}: {reason}")]
    Request {
        path: String,
        status: Option<u16>,
        reason: String,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A strict parse of the answer to `GET path` (a repeated key anywhere is refused).
    async fn get(&self, path: &str) -> Result<Value, VerifyApiError> {
        let failed = |status: Option<u16>, reason: String| VerifyApiError::Request {
            path: path.to_string(),
            status,
            reason,
        };
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| failed(None, e.without_url().to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| failed(Some(status.as_u16()), e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(failed(Some(status.as_u16()), format!("{status}: {text}")));
        }
        parse_strict(&text).map_err(|e| failed(None, format!("not the documented JSON: {e}")))
    }
}

fn head_of(value: Value, what: &str) -> Result<Result<SignedHead, Finding>, VerifyApiError> {
    Ok(match record_from_value(value, what) {
        Ok(Record::Head(h)) => Ok(h),
        Ok(Record::Event(_)) => Err(Finding {
            kind: projections::audit::offline::FindingKind::Malformed,
            at: what.to_string(),
            detail: "not a signed head".into(),
        }),
        Err(f) => Err(f),
    })
}

/// Checks the chain the API at `base` serves. `Ok(Err(finding))`: the chain does not hold.
pub async fn verify_api(
    base: &str,
    token: &str,
    trusted: Option<AuditPublicKey>,
    saved: &[(String, SignedHead)],
) -> Result<Result<OfflineSummary, Finding>, VerifyApiError> {
    let client = Client {
        http: reqwest::Client::new(),
        base: base.trim_end_matches('/').to_string(),
        token: token.to_string(),
    };
    let mut check = OfflineCheck::new(trusted);
    for (origin, head) in saved {
        if let Err(f) = check.expect(origin, head) {
            return Ok(Err(f));
        }
    }
    // Stored heads first, then the current head: a head stored after that would be newer
    // than the pages read.
    let mut after = 0i64;
    loop {
        let page = client
            .get(&format!("/v1/audit/heads?after={after}&limit={PAGE}"))
            .await?;
        let heads = page["heads"].as_array().cloned().unwrap_or_default();
        for value in heads {
            let to = value["head"]["to"].as_i64().unwrap_or(-1);
            let origin = format!("the stored head of #{to}");
            let head = match head_of(value, &origin)? {
                Ok(h) => h,
                Err(f) => return Ok(Err(f)),
            };
            if let Err(f) = check.expect(&origin, &head) {
                return Ok(Err(f));
            }
        }
        match page["next_after"].as_i64() {
            Some(next) if next > after => after = next,
            _ => break,
        }
    }
    // The current head bounds the pages read. The API refuses to sign one (409) when the chain
    // disagrees with a head signed before: then every page is read, and the stored heads say
    // where the chain changed.
    let current = match client.get("/v1/audit/head").await {
        Ok(value) => match head_of(value, "/v1/audit/head")? {
            Ok(h) => Some(h),
            Err(f) => return Ok(Err(f)),
        },
        Err(VerifyApiError::Request {
            status: Some(409), ..
        }) => None,
        Err(e) => return Err(e),
    };
    let end = current.as_ref().map_or(i64::MAX, |h| h.head.to);
    if let Some(current) = &current {
        if let Err(f) = check.expect("the API's current head", current) {
            return Ok(Err(f));
        }
    }
    let mut after = 0i64;
    while after < end {
        let page = client
            .get(&format!("/v1/audit/log?after={after}&limit={PAGE}"))
            .await?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            break;
        }
        for value in entries {
            let seq = value["audit_seq"].as_i64().unwrap_or(-1);
            if seq > end {
                break;
            }
            let at = format!("audit #{seq}");
            let line = match record_from_value(value, &at) {
                Ok(Record::Event(l)) => l,
                Ok(Record::Head(_)) => {
                    return Ok(Err(Finding {
                        kind: projections::audit::offline::FindingKind::Malformed,
                        at,
                        detail: "a head among the log's entries".into(),
                    }))
                }
                Err(f) => return Ok(Err(f)),
            };
            let at = format!("audit #{seq} ({})", line.describe());
            if let Err(f) = check.event(at, &line) {
                return Ok(Err(f));
            }
            after = seq;
        }
        if page["next_after"].as_i64().is_none() {
            break;
        }
    }
    if end == 0 {
        let head = current.and_then(|c| c.check(trusted.as_ref()).ok());
        return Ok(Ok(OfflineSummary::empty(head)));
    }
    Ok(check.finish(Ending::ChainEnd))
}
