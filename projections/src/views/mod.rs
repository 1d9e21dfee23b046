//! The read models, one folder each: `project.rs` folds its events into rows loaded for the
//! batch and writes them back in one statement per table (see `rows.rs`); none holds business
//! logic beyond copying and adding up what the events carry. `query.rs` holds every query
//! against its tables, so a change to a view's tables touches its folder (and a migration)
//! only.

pub mod balances;
pub mod daily;
pub mod deposits;
pub mod orders;
pub mod wallets;

use chrono::{DateTime, Utc};
use engine::domain::Asset;

use crate::error::Error;
use crate::log::Event;

/// One page of a query: at most the asked-for rows, and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub more: bool,
}

impl<T> Page<T> {
    /// The page of `limit` rows from `rows`, fetched with one more than the limit to tell
    /// whether another page follows.
    pub(crate) fn of(mut rows: Vec<T>, limit: i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        Self { rows, more }
    }

    /// The last row, when another page follows (its key is the next page's cursor).
    pub fn last_if_more(&self) -> Option<&T> {
        if self.more {
            self.rows.last()
        } else {
            None
        }
    }
}

/// The filters of a time-ordered view (orders by placement, deposits by detection).
#[derive(Debug, Clone, Default)]
pub struct TimeFilter {
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    pub state: Option<String>,
    pub account: Option<String>,
    pub asset: Option<Asset>,
}

/// One page of a time-ordered view: `sql` takes `filter`'s `from`, `to`, `state`, `account`
/// and `asset`, then the `(time, id)` key to start after (null for the first page) and the row
/// limit, in that order.
pub(crate) async fn time_page<T>(
    pool: &sqlx::PgPool,
    sql: &'static str,
    filter: &TimeFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Page<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let (after_at, after_id) = match after {
        Some((at, id)) => (Some(at), id),
        None => (None, String::new()),
    };
    let rows = sqlx::query_as(sql)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.state.as_deref())
        .bind(filter.account.as_deref())
        .bind(filter.asset.map(Asset::code))
        .bind(after_at)
        .bind(after_id)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    Ok(Page::of(rows, limit))
}

/// An `Apply` error naming the projection and the event.
pub(crate) fn apply_error(
    projection: &'static str,
    event: &Event,
    reason: impl Into<String>,
) -> Error {
    Error::Apply {
        projection,
        position: event.position,
        reason: format!(
            "{} {} #{} ({}): {}",
            event.aggregate_type,
            event.aggregate_id,
            event.sequence,
            event.event_type,
            reason.into()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn a_page_keeps_the_limit_and_says_whether_more_follow() {
        let more = Page::of(vec![1, 2, 3], 2);
        assert_eq!(more.rows, vec![1, 2]);
        assert_eq!(more.last_if_more(), Some(&2));
        let last = Page::of(vec![1, 2], 2);
        assert_eq!(last.rows, vec![1, 2]);
        assert_eq!(last.last_if_more(), None);
        assert_eq!(Page::<i32>::of(vec![], 5).last_if_more(), None);
    }
}
