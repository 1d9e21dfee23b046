//! Reading `account_balances`: a page of balances by account then asset.

use chrono::{DateTime, Utc};
use engine::domain::Asset;
use serde::Serialize;
use sqlx::PgPool;

use crate::views::Page;

/// One account's balance in one asset, as the finance team reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = BalanceRow)]
pub struct Balance {
    pub account_id: String,
    pub asset: String,
    pub available: i64,
    pub reserved: i64,
    pub deposited: i64,
    pub spent: i64,
    pub refunded: i64,
    pub adjusted_in: i64,
    pub adjusted_out: i64,
    pub updated_at: DateTime<Utc>,
}

/// Which balances to read.
#[derive(Debug, Clone, Default)]
pub struct BalanceFilter {
    pub asset: Option<Asset>,
    pub account: Option<String>,
}

/// Balances matching `filter` after the `(account, asset)` key `after`, by account then asset.
pub async fn page(
    pool: &PgPool,
    filter: &BalanceFilter,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Page<Balance>, sqlx::Error> {
    let (after_account, after_asset) = match after {
        Some((account, asset)) => (Some(account), asset),
        None => (None, String::new()),
    };
    let rows = sqlx::query_as(
        "SELECT account_id, asset, available, reserved, deposited, spent, refunded, \
                adjusted_in, adjusted_out, updated_at \
         FROM account_balances \
         WHERE ($1::text IS NULL OR asset = $1) AND ($2::text IS NULL OR account_id = $2) \
           AND ($3::text IS NULL OR (account_id, asset) > ($3, $4)) \
         ORDER BY account_id, asset LIMIT $5",
    )
    .bind(filter.asset.map(Asset::code))
    .bind(filter.account.as_deref())
    .bind(after_account)
    .bind(after_asset)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit))
}
