//! Read your writes. A command's answer comes from its aggregate, so it always shows its effect;
//! the routes that read the projections (an account's order list, the finance and audit pages)
//! could show older state for a few milliseconds. So:
//!
//! - every successful command's answer carries `X-Log-Position: <transaction id>:<position>`,
//!   where its last event sits in the global log, and this process remembers it per token
//!   subject;
//! - before a read-model route answers, it waits (up to [`MAX_WAIT`]) until the projections it
//!   reads have applied the caller's last write here, or the position the request names in its
//!   own `X-Log-Position` header (for a client whose next request may reach another instance).
//!   If they do not catch up in time, it answers anyway with `X-Read-Model-Behind: true`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::domain::DomainAggregate;
use engine::log::LogPosition;
use engine::store::{Committed, Outcome};

use super::error::{ApiError, Refusal};
use super::{AppState, Caller};

pub static LOG_POSITION: HeaderName = HeaderName::from_static("x-log-position");
pub static BEHIND: HeaderName = HeaderName::from_static("x-read-model-behind");

/// The longest a read waits for the projections.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);
/// Subjects remembered per process (a handful of bots and people in practice).
const MAX_SUBJECTS: usize = 10_000;

/// The last write of each subject through this process.
#[derive(Debug, Default)]
pub struct Writes {
    last: Mutex<HashMap<String, LogPosition>>,
}

impl Writes {
    pub fn record(&self, subject: &str, position: LogPosition) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.len() >= MAX_SUBJECTS && !last.contains_key(subject) {
            last.clear();
        }
        let entry = last.entry(subject.to_string()).or_insert(position);
        *entry = (*entry).max(position);
    }

    pub fn last(&self, subject: &str) -> Option<LogPosition> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(subject)
            .copied()
    }
}

pub fn format(p: LogPosition) -> String {
    format!("{}:{}", p.transaction_id, p.global_position)
}

pub fn parse(text: &str) -> Option<LogPosition> {
    let (tx, pos) = text.trim().split_once(':')?;
    Some(LogPosition {
        transaction_id: tx.parse().ok()?,
        global_position: pos.parse().ok().filter(|p: &i64| *p >= 0)?,
    })
}

/// Where a command handler leaves the position of its last event, for [`stamp`] to put on the
/// response.
#[derive(Debug, Clone, Default)]
pub struct Written(Arc<Mutex<Option<LogPosition>>>);

impl Written {
    /// A command's decision: a refusal becomes the API's error; an acceptance is recorded (its
    /// last event's position) for the response header and the caller's next reads.
    pub fn accept<A>(
        &self,
        state: &AppState,
        caller: &Caller,
        outcome: Outcome<A>,
    ) -> Result<Committed<A::Event>, ApiError>
    where
        A: DomainAggregate,
        A::Error: Refusal,
    {
        let committed = outcome.result.map_err(|e| ApiError::domain(&e))?;
        if let Some(p) = committed.last_position() {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            state.writes.record(&caller.subject, p);
        }
        Ok(committed)
    }
}

/// Middleware: gives each request a [`Written`] slot and turns it into `X-Log-Position`.
pub async fn stamp(mut request: Request, next: Next) -> Response {
    let written = Written::default();
    request.extensions_mut().insert(written.clone());
    let mut response = next.run(request).await;
    let position = *written.0.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = position {
        if let Ok(v) = HeaderValue::from_str(&format(p)) {
            response.headers_mut().insert(LOG_POSITION.clone(), v);
        }
    }
    response
}

/// Waits until every reader in `readers` has passed the position this read must see; returns
/// false if they did not within [`MAX_WAIT`]. 400 on an unreadable `X-Log-Position`.
pub async fn wait_for(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    readers: &[String],
) -> Result<bool, ApiError> {
    let asked = match headers.get(&LOG_POSITION) {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(parse).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_log_position",
                "X-Log-Position is <transaction id>:<position>, as a command's answer gave it",
            )
            .field("X-Log-Position")
        })?),
    };
    let Some(target) = asked.max(state.writes.last(&caller.subject)) else {
        return Ok(true);
    };
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    loop {
        if projections::progress::all_passed(&state.pool, readers, target).await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(subject = %caller.subject, position = %format(target), "read models still behind the caller's write; answering anyway");
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The checkpoint name of a live projection.
pub fn projection(name: &str) -> String {
    projections::projection::Target::Live.reader(name)
}

/// Marks a response whose read models had not caught up.
pub fn mark(response: &mut Response, caught_up: bool) {
    if !caught_up {
        response
            .headers_mut()
            .insert(BEHIND.clone(), HeaderValue::from_static("true"));
    }
}

/// A JSON answer from the read models, marked if they had not caught up.
pub fn fresh<T: serde::Serialize>(value: T, caught_up: bool) -> Response {
    let mut response = axum::Json(value).into_response();
    mark(&mut response, caught_up);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_as_written_and_garbage_is_refused() {
        let p = LogPosition {
            transaction_id: 7_123,
            global_position: 42,
        };
        assert_eq!(parse(&format(p)), Some(p));
        for bad in ["", "1", "a:2", "1:b", "1:-2", "1:2:3"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_subject_is_remembered_at_its_latest_write() {
        let w = Writes::default();
        let at = |tx, pos| LogPosition {
            transaction_id: tx,
            global_position: pos,
        };
        w.record("bot-1", at(10, 5));
        w.record("bot-1", at(9, 8));
        assert_eq!(
            w.last("bot-1"),
            Some(at(10, 5)),
            "log order is (transaction, position)"
        );
        w.record("bot-1", at(11, 1));
        assert_eq!(w.last("bot-1"), Some(at(11, 1)));
        assert_eq!(w.last("bot-2"), None);
    }
}
