//! Reading `daily_finance`: the daily report, each day's figures with the ratios derived from
//! them (exact decimals written as strings, never floats).

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

use super::DailyRow;

/// One day's figures in one asset (every stored column, so the sums behind the average are
/// there too), with the ratios the table derives from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DailyReportRow {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub figures: DailyRow,
    /// Energy-hours sold over 24, exactly.
    pub energy_days_sold: String,
    /// `null` on a day without a finished delegation.
    pub delegation_success_rate: Option<String>,
    /// `null` on a day without a confirmed delegation.
    pub avg_order_to_delegation_secs: Option<String>,
}

/// The days from `from` to `to` (both included), in `asset` or every asset, by day then asset.
pub async fn days(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    asset: Option<engine::domain::Asset>,
) -> Result<Vec<DailyReportRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day, asset, deposits_count, deposits_amount, captures_count, revenue_captured, \
                refunds_count, refunds_amount, adjustments_in, adjustments_out, orders_placed, \
                orders_completed, orders_cancelled, orders_rejected, orders_refunded, \
                energy_hours_sold, energy_days_sold::text AS energy_days_sold, \
                delegations_confirmed, delegations_failed, \
                delegation_success_rate::text AS delegation_success_rate, \
                order_to_delegation_ms_total, order_to_delegation_count, \
                avg_order_to_delegation_secs::text AS avg_order_to_delegation_secs \
         FROM daily_finance \
         WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR asset = $3) \
         ORDER BY day, asset",
    )
    .bind(from)
    .bind(to)
    .bind(asset.map(engine::domain::Asset::code))
    .fetch_all(pool)
    .await
}
