//! Finance: every account's balances from the `account_balances` read model, filtered by asset
//! and account, with cursor pagination.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use engine::domain::Asset;
use serde::Serialize;

use projections::views::balances::query::{Balance, BalanceFilter};
use projections::views::deposits::query::FinanceDeposit;
use projections::views::orders::query::FinanceOrder;
use projections::views::wallets::query::Utilisation;
use projections::views::{balances, deposits, orders, wallets, TimeFilter};

use super::audit::limit;
use crate::http::consistency::{fresh, projection, wait_for};
use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Finance, Role::Auditor, Role::Admin];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalancePage {
    pub balances: Vec<Balance>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/finance/balances?asset=TRX&account=ID&cursor=C&limit=N`, by account then asset.
#[utoipa::path(
    get,
    path = "/v1/finance/balances",
    tag = "finance",
    params(("asset" = Option<String>, Query, description = "TRX or USDT"), ("account" = Option<String>, Query, description = "Account id"), ("limit" = Option<i64>, Query, description = "Page size"), ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, description = "A page of balances", body = BalancePage))
)]
pub async fn balances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(ROLES)?;
    let caught_up = wait_for(&state, &caller, &headers, &[projection("account_balances")]).await?;
    let limit = limit(&query, 1_000)?;
    let asset = asset_filter(&query)?;
    let bad_cursor = || {
        ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave")
            .field("cursor")
    };
    let after = match query.get("cursor") {
        None => None,
        Some(c) => {
            let raw = hex::decode(c).map_err(|_| bad_cursor())?;
            let raw = String::from_utf8(raw).map_err(|_| bad_cursor())?;
            let (account, asset) = raw.split_once('\u{0}').ok_or_else(bad_cursor)?;
            Some((account.to_string(), asset.to_string()))
        }
    };
    let filter = BalanceFilter {
        asset,
        account: query.get("account").cloned(),
    };
    let page = balances::query::page(&state.pool, &filter, after, limit).await?;
    let next_cursor = page
        .last_if_more()
        .map(|r| hex::encode(format!("{}\u{0}{}", r.account_id, r.asset)));
    Ok(fresh(
        BalancePage {
            balances: page.rows,
            next_cursor,
        },
        caught_up,
    ))
}

/// A `(time, id)` cursor, opaque to clients.
fn encode_cursor(at: DateTime<Utc>, id: &str) -> String {
    hex::encode(format!("{}\u{0}{id}", at.timestamp_micros()))
}

fn decode_cursor(text: Option<&String>) -> Result<Option<(DateTime<Utc>, String)>, ApiError> {
    let bad = || {
        ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave")
            .field("cursor")
    };
    let Some(text) = text else {
        return Ok(None);
    };
    let raw = String::from_utf8(hex::decode(text).map_err(|_| bad())?).map_err(|_| bad())?;
    let (micros, id) = raw.split_once('\u{0}').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok(Some((at, id.to_string())))
}

fn time(
    query: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    query
        .get(name)
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request("invalid_time", format!("{name} is an RFC 3339 time"))
                        .field(name)
                })
        })
        .transpose()
}

pub(crate) fn asset_filter(query: &HashMap<String, String>) -> Result<Option<Asset>, ApiError> {
    query
        .get("asset")
        .map(|a| {
            a.parse::<Asset>()
                .map_err(|e| ApiError::bad_request("unknown_asset", e.to_string()).field("asset"))
        })
        .transpose()
}

/// The filters of a time-ordered finance list (`from`, `to`, `state`, `account`, `asset`), the
/// cursor's key and the page size.
type TimeQuery = (TimeFilter, Option<(DateTime<Utc>, String)>, i64);

fn time_query(query: &HashMap<String, String>) -> Result<TimeQuery, ApiError> {
    let limit = limit(query, 1_000)?;
    let after = decode_cursor(query.get("cursor"))?;
    let filter = TimeFilter {
        from: time(query, "from")?,
        to: time(query, "to")?,
        state: query.get("state").cloned(),
        account: query.get("account").cloned(),
        asset: asset_filter(query)?,
    };
    Ok((filter, after, limit))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FinanceOrderPage {
    pub orders: Vec<FinanceOrder>,
    pub next_cursor: Option<String>,
}

/// `GET /v1/finance/orders?from=&to=&state=&account=&asset=&limit=&cursor=`, by placement time.
#[utoipa::path(
    get,
    path = "/v1/finance/orders",
    tag = "finance",
    params(("from" = Option<String>, Query, description = "RFC 3339, placed at or after"), ("to" = Option<String>, Query, description = "RFC 3339, placed before"), ("state" = Option<String>, Query, description = "Order status"), ("account" = Option<String>, Query, description = "Account id"), ("asset" = Option<String>, Query, description = "TRX or USDT"), ("limit" = Option<i64>, Query, description = "Page size"), ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, description = "A page of orders", body = FinanceOrderPage))
)]
pub async fn orders(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(ROLES)?;
    let caught_up = wait_for(&state, &caller, &headers, &[projection("orders")]).await?;
    let (filter, after, limit) = time_query(&query)?;
    let page = orders::query::page(&state.pool, &filter, after, limit).await?;
    let next_cursor = page
        .last_if_more()
        .map(|r| encode_cursor(r.placed_at, &r.order_id));
    Ok(fresh(
        FinanceOrderPage {
            orders: page.rows,
            next_cursor,
        },
        caught_up,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FinanceDepositPage {
    pub deposits: Vec<FinanceDeposit>,
    pub next_cursor: Option<String>,
}

/// `GET /v1/finance/deposits?from=&to=&state=&account=&asset=&limit=&cursor=`, by detection time.
#[utoipa::path(
    get,
    path = "/v1/finance/deposits",
    tag = "finance",
    params(("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339"), ("state" = Option<String>, Query, description = "Deposit status"), ("account" = Option<String>, Query, description = "Account id"), ("asset" = Option<String>, Query, description = "TRX or USDT"), ("limit" = Option<i64>, Query, description = "Page size"), ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")),
    responses((status = 200, description = "A page of deposits", body = FinanceDepositPage))
)]
pub async fn deposits(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(ROLES)?;
    let caught_up = wait_for(&state, &caller, &headers, &[projection("deposits")]).await?;
    let (filter, after, limit) = time_query(&query)?;
    let page = deposits::query::page(&state.pool, &filter, after, limit).await?;
    let next_cursor = page
        .last_if_more()
        .map(|r| encode_cursor(r.detected_at, &r.deposit_id));
    Ok(fresh(
        FinanceDepositPage {
            deposits: page.rows,
            next_cursor,
        },
        caught_up,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Wallets {
    pub wallets: Vec<Utilisation>,
}

/// `GET /v1/finance/wallets`: each pool wallet's stake, reserved, delegated and free capacity.
#[utoipa::path(
    get,
    path = "/v1/finance/wallets",
    tag = "finance",
    responses((status = 200, description = "Pool-wallet utilisation", body = Wallets))
)]
pub async fn wallets(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(ROLES)?;
    let caught_up = wait_for(
        &state,
        &caller,
        &headers,
        &[projection("wallet_utilisation")],
    )
    .await?;
    let wallets = wallets::query::all(&state.pool).await?;
    Ok(fresh(Wallets { wallets }, caught_up))
}
