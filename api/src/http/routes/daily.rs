//! Finance: the daily report (the `daily_finance` read model) per UTC day and asset, as JSON or,
//! with `Accept: text/csv`, as CSV with a header row. Amounts are integers in the asset's
//! smallest unit; the derived ratios (energy-days, success rate, average seconds) are exact
//! decimals written as strings, never floats.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;

use super::finance::{asset_filter, ROLES};
use crate::http::consistency::{fresh, mark, projection, wait_for};
use crate::http::error::ApiError;
use crate::http::{AppState, Caller};

/// The most days one request may cover.
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DailyRow {
    pub day: NaiveDate,
    pub asset: String,
    pub deposits_count: i64,
    pub deposits_amount: i64,
    pub captures_count: i64,
    pub revenue_captured: i64,
    pub refunds_count: i64,
    pub refunds_amount: i64,
    pub adjustments_in: i64,
    pub adjustments_out: i64,
    pub orders_placed: i64,
    pub orders_completed: i64,
    pub orders_cancelled: i64,
    pub orders_rejected: i64,
    pub orders_refunded: i64,
    pub energy_hours_sold: i64,
    pub energy_days_sold: String,
    pub delegations_confirmed: i64,
    pub delegations_failed: i64,
    /// `null` on a day without a finished delegation.
    pub delegation_success_rate: Option<String>,
    /// `null` on a day without a confirmed delegation.
    pub avg_order_to_delegation_secs: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DailyReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DailyRow>,
}

fn day(query: &HashMap<String, String>, name: &'static str) -> Result<NaiveDate, ApiError> {
    let text = query.get(name).ok_or_else(|| {
        ApiError::bad_request(
            "missing_parameter",
            format!("{name} (YYYY-MM-DD) is required"),
        )
        .field(name)
    })?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request("invalid_date", format!("{name} is a date, YYYY-MM-DD")).field(name)
    })
}

/// `GET /v1/finance/daily?from=YYYY-MM-DD&to=YYYY-MM-DD&asset=TRX`, both days included.
#[utoipa::path(
    get,
    path = "/v1/finance/daily",
    tag = "finance",
    params(("from" = String, Query, description = "First day, YYYY-MM-DD"), ("to" = String, Query, description = "Last day, YYYY-MM-DD"), ("asset" = Option<String>, Query, description = "TRX or USDT")),
    responses((status = 200, description = "The report (JSON, or CSV with Accept: text/csv)", content((DailyReport = "application/json"), (String = "text/csv"))))
)]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(ROLES)?;
    let (from, to) = (day(&query, "from")?, day(&query, "to")?);
    if to < from {
        return Err(ApiError::bad_request("invalid_range", "to is before from").field("to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::bad_request(
            "range_too_long",
            format!("at most {MAX_DAYS} days per request"),
        )
        .field("to"));
    }
    let asset = asset_filter(&query)?;
    let caught_up = wait_for(&state, &caller, &headers, &[projection("daily_finance")]).await?;
    let days: Vec<DailyRow> = sqlx::query_as(
        "SELECT day, asset, deposits_count, deposits_amount, captures_count, revenue_captured, \
                refunds_count, refunds_amount, adjustments_in, adjustments_out, orders_placed, \
                orders_completed, orders_cancelled, orders_rejected, orders_refunded, \
                energy_hours_sold, energy_days_sold::text AS energy_days_sold, \
                delegations_confirmed, delegations_failed, \
                delegation_success_rate::text AS delegation_success_rate, \
                avg_order_to_delegation_secs::text AS avg_order_to_delegation_secs \
         FROM daily_finance \
         WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR asset = $3) \
         ORDER BY day, asset",
    )
    .bind(from)
    .bind(to)
    .bind(asset)
    .fetch_all(&state.pool)
    .await?;
    let wants_csv = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|m| m.trim().starts_with("text/csv")));
    if wants_csv {
        let disposition = format!("attachment; filename=\"daily-{from}-{to}.csv\"");
        let mut response = (
            [
                (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (CONTENT_DISPOSITION, disposition),
            ],
            csv(&days),
        )
            .into_response();
        mark(&mut response, caught_up);
        return Ok(response);
    }
    Ok(fresh(DailyReport { from, to, days }, caught_up))
}

const COLUMNS: &[&str] = &[
    "day",
    "asset",
    "deposits_count",
    "deposits_amount",
    "captures_count",
    "revenue_captured",
    "refunds_count",
    "refunds_amount",
    "adjustments_in",
    "adjustments_out",
    "orders_placed",
    "orders_completed",
    "orders_cancelled",
    "orders_rejected",
    "orders_refunded",
    "energy_hours_sold",
    "energy_days_sold",
    "delegations_confirmed",
    "delegations_failed",
    "delegation_success_rate",
    "avg_order_to_delegation_secs",
];

/// RFC 4180 CSV; every value is a date, an asset code or a number, so none needs quoting.
fn csv(days: &[DailyRow]) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for d in days {
        let cells: [String; 21] = [
            d.day.to_string(),
            d.asset.clone(),
            d.deposits_count.to_string(),
            d.deposits_amount.to_string(),
            d.captures_count.to_string(),
            d.revenue_captured.to_string(),
            d.refunds_count.to_string(),
            d.refunds_amount.to_string(),
            d.adjustments_in.to_string(),
            d.adjustments_out.to_string(),
            d.orders_placed.to_string(),
            d.orders_completed.to_string(),
            d.orders_cancelled.to_string(),
            d.orders_rejected.to_string(),
            d.orders_refunded.to_string(),
            d.energy_hours_sold.to_string(),
            d.energy_days_sold.clone(),
            d.delegations_confirmed.to_string(),
            d.delegations_failed.to_string(),
            d.delegation_success_rate.clone().unwrap_or_default(),
            d.avg_order_to_delegation_secs.clone().unwrap_or_default(),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}
