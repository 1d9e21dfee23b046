//! Finance: every account's balances from the `account_balances` read model, filtered by asset
//! and account, with cursor pagination.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use engine::domain::Asset;
use serde::Serialize;

use super::audit::limit;
use crate::http::error::ApiError;
use crate::http::{AppState, Caller, Role};

pub const ROLES: &[Role] = &[Role::Finance, Role::Auditor, Role::Admin];

#[derive(Debug, Serialize, sqlx::FromRow)]
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

#[derive(Debug, Serialize)]
pub struct BalancePage {
    pub balances: Vec<BalanceRow>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/finance/balances?asset=TRX&account=ID&cursor=C&limit=N`, by account then asset.
pub async fn balances(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<BalancePage>, ApiError> {
    caller.require(ROLES)?;
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
    Ok(Json(BalancePage {
        balances: rows,
        next_cursor,
    }))
}
