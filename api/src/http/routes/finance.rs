//! Finance: every account's balances from the `account_balances` read model, filtered by asset
//! and account, with cursor pagination.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use engine::domain::Asset;
use serde::Serialize;

use super::audit::limit;
use crate::http::consistency::{fresh, projection, wait_for};
use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Finance, Role::Auditor, Role::Admin];

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BalanceRow {
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalancePage {
    pub balances: Vec<BalanceRow>,
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
    let asset = query
        .get("asset")
        .map(|a| {
            a.parse::<Asset>()
                .map_err(|e| ApiError::bad_request("unknown_asset", e.to_string()).field("asset"))
        })
        .transpose()?;
    let bad_cursor = || {
        ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave")
            .field("cursor")
    };
    let (after_account, after_asset) = match query.get("cursor") {
        None => (None, String::new()),
        Some(c) => {
            let raw = hex::decode(c).map_err(|_| bad_cursor())?;
            let raw = String::from_utf8(raw).map_err(|_| bad_cursor())?;
            let (account, asset) = raw.split_once('\u{0}').ok_or_else(bad_cursor)?;
            (Some(account.to_string()), asset.to_string())
        }
    };
    let mut rows: Vec<BalanceRow> = sqlx::query_as(
        "SELECT account_id, asset, available, reserved, deposited, spent, refunded, \
                adjusted_in, adjusted_out, updated_at \
         FROM account_balances \
         WHERE ($1::text IS NULL OR asset = $1) AND ($2::text IS NULL OR account_id = $2) \
           AND ($3::text IS NULL OR (account_id, asset) > ($3, $4)) \
         ORDER BY account_id, asset LIMIT $5",
    )
    .bind(asset.map(Asset::code))
    .bind(query.get("account"))
    .bind(after_account)
    .bind(after_asset)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| hex::encode(format!("{}\u{0}{}", r.account_id, r.asset)))
    } else {
        None
    };
    Ok(fresh(
        BalancePage {
            balances: rows,
            next_cursor,
        },
        caught_up,
    ))
}

/// A `(time, id)` cursor, opaque to clients.
fn encode_cursor(at: DateTime<Utc>, id: &str) -> String {
    hex::encode(format!("{}\u{0}{id}", at.timestamp_micros()))
}

fn decode_cursor(text: Option<&String>) -> Result<(Option<DateTime<Utc>>, String), ApiError> {
    let bad = || {
        ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave")
            .field("cursor")
    };
    let Some(text) = text else {
        return Ok((None, String::new()));
    };
    let raw = String::from_utf8(hex::decode(text).map_err(|_| bad())?).map_err(|_| bad())?;
    let (micros, id) = raw.split_once('\u{0}').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((Some(at), id.to_string()))
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

pub(crate) fn asset_filter(
    query: &HashMap<String, String>,
) -> Result<Option<&'static str>, ApiError> {
    query
        .get("asset")
        .map(|a| {
            a.parse::<Asset>()
                .map(Asset::code)
                .map_err(|e| ApiError::bad_request("unknown_asset", e.to_string()).field("asset"))
        })
        .transpose()
}

/// One page of a time-ordered read model and the cursor of the next. `sql` takes the filters
/// `from`, `to`, `state`, `account`, `asset`, then the cursor's time and id and the row limit
/// (one more than the page, to tell whether another page follows); `key` is a row's (time, id).
async fn time_page<T>(
    state: &AppState,
    query: &HashMap<String, String>,
    sql: &'static str,
    key: impl Fn(&T) -> (DateTime<Utc>, &str),
) -> Result<(Vec<T>, Option<String>), ApiError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let limit = limit(query, 1_000)?;
    let (after_at, after_id) = decode_cursor(query.get("cursor"))?;
    let mut rows: Vec<T> = sqlx::query_as(sql)
        .bind(time(query, "from")?)
        .bind(time(query, "to")?)
        .bind(query.get("state"))
        .bind(query.get("account"))
        .bind(asset_filter(query)?)
        .bind(after_at)
        .bind(after_id)
        .bind(limit + 1)
        .fetch_all(&state.pool)
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            let (at, id) = key(r);
            encode_cursor(at, id)
        })
    } else {
        None
    };
    Ok((rows, next_cursor))
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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
    let (rows, next_cursor) = time_page(
        &state,
        &query,
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
        |r: &FinanceOrder| (r.placed_at, r.order_id.as_str()),
    )
    .await?;
    Ok(fresh(
        FinanceOrderPage {
            orders: rows,
            next_cursor,
        },
        caught_up,
    ))
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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
    let (rows, next_cursor) = time_page(
        &state,
        &query,
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
        |r: &FinanceDeposit| (r.detected_at, r.deposit_id.as_str()),
    )
    .await?;
    Ok(fresh(
        FinanceDepositPage {
            deposits: rows,
            next_cursor,
        },
        caught_up,
    ))
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WalletRow {
    pub wallet: String,
    pub enabled: bool,
    pub staked_sun: i64,
    pub delegatable_sun: i64,
    pub reserved_sun: i64,
    pub free_sun: i64,
    pub delegated_sun: i64,
    pub active_delegations: i32,
    pub delegations_total: i64,
    pub alerts: Vec<String>,
    pub observed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Wallets {
    pub wallets: Vec<WalletRow>,
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
    let wallets = sqlx::query_as(
        "SELECT wallet, enabled, staked_sun, delegatable_sun, reserved_sun, free_sun, \
                delegated_sun, active_delegations, delegations_total, alerts, observed_at \
         FROM wallet_utilisation ORDER BY wallet",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(fresh(Wallets { wallets }, caught_up))
}
