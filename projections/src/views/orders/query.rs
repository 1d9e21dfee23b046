//! Reading `orders`: the finance team's pages of every order, an account's own orders, and the
//! count of orders in each state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::views::{Page, TimeFilter};

/// One order, as the finance team reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FinanceOrder {
    pub order_id: String,
    pub account_id: String,
    pub status: String,
    pub receiver: String,
    pub energy: i64,
    pub duration: String,
    pub asset: String,
    pub price: i64,
    pub amount_captured: Option<i64>,
    pub amount_refunded: Option<i64>,
    pub wallet: Option<String>,
    pub delegation_txid: Option<String>,
    pub reclaim_txid: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One order in an account's list, as its bot reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderSummary {
    pub order_id: String,
    pub status: String,
    pub receiver: String,
    pub energy: i64,
    pub duration: String,
    pub asset: String,
    pub price: i64,
    pub placed_at: DateTime<Utc>,
    pub delegation_txid: Option<String>,
    pub reclaim_txid: Option<String>,
}

/// Orders matching `filter` (on their placement time) after the `(placed_at, order_id)` key
/// `after`, oldest first.
pub async fn page(
    pool: &PgPool,
    filter: &TimeFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Page<FinanceOrder>, sqlx::Error> {
    crate::views::time_page(
        pool,
        "SELECT order_id, account_id, status, receiver, energy, duration, asset, price, \
                amount_captured, amount_refunded, wallet, delegation_txid, reclaim_txid, \
                placed_at, closed_at \
         FROM orders \
         WHERE ($1::timestamptz IS NULL OR placed_at >= $1) \
           AND ($2::timestamptz IS NULL OR placed_at < $2) \
           AND ($3::text IS NULL OR status = $3) \
           AND ($4::text IS NULL OR account_id = $4) \
           AND ($5::text IS NULL OR asset = $5) \
           AND ($6::timestamptz IS NULL OR (placed_at, order_id) > ($6, $7)) \
         ORDER BY placed_at, order_id LIMIT $8",
        filter,
        after,
        limit,
    )
    .await
}

/// `account_id`'s orders after the `(placed_at, order_id)` key `after`, oldest first.
pub async fn for_account(
    pool: &PgPool,
    account_id: &str,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Page<OrderSummary>, sqlx::Error> {
    let (after_at, after_id) = match after {
        Some((at, id)) => (Some(at), id),
        None => (None, String::new()),
    };
    let rows = sqlx::query_as(
        "SELECT order_id, status, receiver, energy, duration, asset, price, placed_at, \
                delegation_txid, reclaim_txid \
         FROM orders WHERE account_id = $1 \
           AND ($2::timestamptz IS NULL OR (placed_at, order_id) > ($2, $3)) \
         ORDER BY placed_at, order_id LIMIT $4",
    )
    .bind(account_id)
    .bind(after_at)
    .bind(after_id)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit))
}

/// How many orders are in each state, by state.
pub async fn count_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
        .fetch_all(pool)
        .await
}
