//! The live feed for monitoring screens: `GET /v1/feed`, Server-Sent Events of order, deposit
//! and wallet events as the audit sequencer numbers them. The audit order is contiguous and final
//! (an event is numbered only once nothing before it can still commit), so a client that
//! reconnects with `Last-Event-ID` (or `?after=`) misses nothing and sees nothing twice.
//!
//! Filtered by the token: finance, auditor and admin see every order, deposit and wallet event;
//! a bot sees the order and deposit events of the accounts it may use (`super::may_use`), never
//! wallet events. Streams end when the server shuts down.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use projections::audit::pages;
pub use projections::audit::pages::FeedEvent;

use super::may_use;
use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin];

/// How often the feed looks for new numbered events while it is idle.
const POLL: Duration = Duration::from_millis(200);
const PAGE: i64 = 500;

struct Feed {
    state: AppState,
    caller: Caller,
    after: i64,
    ready: VecDeque<FeedEvent>,
    /// Bots: whether each account seen so far may be shown.
    allowed: HashMap<String, bool>,
}

impl Feed {
    /// The next page of numbered events after the cursor, filtered for the caller. The cursor
    /// moves past every row read, shown or not.
    async fn fill(&mut self) -> Result<(), ApiError> {
        let rows = pages::feed_page(&self.state.pool, self.after, PAGE).await?;
        for event in rows {
            self.after = event.audit_seq;
            if !self
                .shows(&event.aggregate_type, event.account_id.as_deref())
                .await?
            {
                continue;
            }
            self.ready.push_back(event);
        }
        Ok(())
    }

    async fn shows(
        &mut self,
        aggregate_type: &str,
        account: Option<&str>,
    ) -> Result<bool, ApiError> {
        if !["order", "deposit", "wallet"].contains(&aggregate_type) {
            return Ok(false);
        }
        if self.caller.role != Role::Bot {
            return Ok(true);
        }
        let Some(account) = account.filter(|_| aggregate_type != "wallet") else {
            return Ok(false);
        };
        if let Some(known) = self.allowed.get(account) {
            return Ok(*known);
        }
        let ok = may_use(&self.state, &self.caller, account).await?;
        self.allowed.insert(account.to_string(), ok);
        Ok(ok)
    }
}

/// Where a stream starts: `Last-Event-ID` (a reconnect), else `?after=`, else the newest
/// numbered event (only what happens from now on).
async fn start_after(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<i64, ApiError> {
    let given = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| (v.to_string(), "Last-Event-ID"))
        .or_else(|| query.get("after").map(|v| (v.clone(), "after")));
    match given {
        Some((text, field)) => text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "the cursor is an audit sequence number")
                    .field(field)
            }),
        None => Ok(pages::newest_number(&state.pool).await?),
    }
}

/// `GET /v1/feed?after=SEQ` (or `Last-Event-ID: SEQ`): `text/event-stream`, one SSE event per
/// domain event: `id` is its audit number, `event` its type, `data` a JSON [`FeedEvent`].
#[utoipa::path(
    get,
    path = "/v1/feed",
    tag = "feed",
    params(("after" = Option<i64>, Query, description = "Resume after this audit number"), ("Last-Event-ID" = Option<String>, Header, description = "Resume after this audit number (EventSource reconnects)")),
    responses((status = 200, description = "Server-Sent Events; each data line is a FeedEvent", content_type = "text/event-stream", body = String))
)]
pub async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(ROLES)?;
    let after = start_after(&state, &headers, &query).await?;
    tracing::info!(subject = %caller.subject, role = %caller.role, after, "feed opened");
    let closing = state.closing.subscribe();
    let feed = Feed {
        state,
        caller,
        after,
        ready: VecDeque::new(),
        allowed: HashMap::new(),
    };
    let stream = futures::stream::unfold((feed, closing), |(mut feed, mut closing)| async move {
        loop {
            if *closing.borrow() {
                return None;
            }
            if let Some(e) = feed.ready.pop_front() {
                let event = Event::default()
                    .id(e.audit_seq.to_string())
                    .event(e.event_type.clone())
                    .json_data(&e)
                    .unwrap_or_else(|_| Event::default().comment("unencodable event"));
                return Some((Ok(event), (feed, closing)));
            }
            let before = feed.after;
            if let Err(e) = feed.fill().await {
                tracing::warn!(error = %e.body(), "feed cannot read the log; retrying");
            }
            if feed.ready.is_empty() && feed.after == before {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    changed = closing.changed() => {
                        if changed.is_err() {
                            return None; // the server is gone
                        }
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
