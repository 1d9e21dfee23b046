//! Reading `deposits`: a page of deposits by detection time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::views::{Page, TimeFilter};

/// One deposit, as the finance team reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FinanceDeposit {
    pub deposit_id: String,
    pub account_id: String,
    pub asset: String,
    pub amount: i64,
    pub txid: String,
    pub from_address: String,
    pub to_address: String,
    pub block_number: i64,
    pub status: String,
    pub detected_at: DateTime<Utc>,
    pub credited_at: Option<DateTime<Utc>>,
}

/// Deposits matching `filter` (on their detection time) after the `(detected_at, deposit_id)`
/// key `after`, oldest first.
pub async fn page(
    pool: &PgPool,
    filter: &TimeFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Page<FinanceDeposit>, sqlx::Error> {
    crate::views::time_page(
        pool,
        "SELECT deposit_id, account_id, asset, amount, txid, from_address, to_address, \
                block_number, status, detected_at, credited_at \
         FROM deposits \
         WHERE ($1::timestamptz IS NULL OR detected_at >= $1) \
           AND ($2::timestamptz IS NULL OR detected_at < $2) \
           AND ($3::text IS NULL OR status = $3) \
           AND ($4::text IS NULL OR account_id = $4) \
           AND ($5::text IS NULL OR asset = $5) \
           AND ($6::timestamptz IS NULL OR (detected_at, deposit_id) > ($6, $7)) \
         ORDER BY detected_at, deposit_id LIMIT $8",
        filter,
        after,
        limit,
    )
    .await
}
