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
use projections::views::daily;
use projections::views::daily::query::DailyReportRow;
use serde::Serialize;

use super::finance::{asset_filter, ROLES};
use crate::http::consistency::{fresh, mark, projection, wait_for};
use crate::http::error::ApiError;
use crate::http::{AppState, Caller};

/// The most days one request may cover.
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DailyReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DailyReportRow>,
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
    let days = daily::query::days(&state.pool, from, to, asset).await?;
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
fn csv(days: &[DailyReportRow]) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for row in days {
        let d = &row.figures;
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
            row.energy_days_sold.clone(),
            d.delegations_confirmed.to_string(),
            d.delegations_failed.to_string(),
            row.delegation_success_rate.clone().unwrap_or_default(),
            row.avg_order_to_delegation_secs.clone().unwrap_or_default(),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}
