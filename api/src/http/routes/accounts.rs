//! Accounts: open one, its balances, its deposit address.
//!
//! Ownership: a bot token uses the accounts its subject opened and the house accounts an admin
//! opened, never another bot's (`super::may_use`); another bot's account answers 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use engine::domain::{Account, AccountCommand, AccountId, Asset};
use serde::{Deserialize, Serialize};

use super::{metadata, open_account};
use crate::http::consistency::Written;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::{AppState, Caller, RequestId, Role};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccount {
    /// The bot's customer id, e.g. `tg:123456`: 1–128 printable ASCII characters.
    pub account_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub account_id: String,
    pub opened_at: Option<DateTime<Utc>>,
}

pub const OPEN_ROLES: &[Role] = &[Role::Bot, Role::Admin];

/// `POST /v1/accounts`: 201, or 409 `account_already_open`.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body = OpenAccount,
    responses((status = 201, description = "Opened", body = AccountView))
)]
pub async fn open(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    JsonBody(body): JsonBody<OpenAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    caller.require(OPEN_ROLES)?;
    let account_id = AccountId::parse(body.account_id)
        .map_err(|e| ApiError::unprocessable("invalid_id", e.to_string()).field("account_id"))?;
    let command = AccountCommand::OpenAccount {
        account_id: account_id.clone(),
        at: Utc::now(),
    };
    let outcome = state
        .buses
        .account
        .execute(account_id.as_str(), command, metadata(&caller, &rid))
        .await?;
    written.accept(&state, &caller, outcome)?;
    let (account, _) = state.buses.account.load(account_id.as_str()).await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView {
            account_id: account_id.to_string(),
            opened_at: account.opened_at(),
        }),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalanceView {
    #[schema(value_type = String, example = "TRX")]
    pub asset: Asset,
    pub available: u64,
    pub reserved: u64,
    pub deposited: u64,
    pub spent: u64,
    pub refunded: u64,
    pub adjusted_in: u64,
    pub adjusted_out: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalancesView {
    pub account_id: String,
    pub balances: Vec<BalanceView>,
}

pub const READ_ROLES: &[Role] = &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin];

/// `GET /v1/accounts/{id}/balances`: from the account itself, so it includes every command
/// answered before.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balances",
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "Balances per asset", body = BalancesView))
)]
pub async fn balances(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BalancesView>, ApiError> {
    caller.require(READ_ROLES)?;
    let (account_id, account) = open_account(&state, &caller, &id).await?;
    Ok(Json(balances_view(&account_id, &account)))
}

/// Every asset's balance of `account`.
pub(crate) fn balances_view(account_id: &AccountId, account: &Account) -> BalancesView {
    let balances = Asset::ALL
        .into_iter()
        .map(|asset| {
            let b = account.balance(asset);
            BalanceView {
                asset,
                available: b.available,
                reserved: b.reserved,
                deposited: b.deposited,
                spent: b.spent,
                refunded: b.refunded,
                adjusted_in: b.adjusted_in,
                adjusted_out: b.adjusted_out,
            }
        })
        .collect();
    BalancesView {
        account_id: account_id.to_string(),
        balances,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepositAddressView {
    pub account_id: String,
    /// Base58 (`T…`); TRX and USDT sent here are credited to the account.
    pub address: String,
}

pub const DEPOSIT_ADDRESS_ROLES: &[Role] = &[Role::Bot, Role::Admin];

/// `GET /v1/accounts/{id}/deposit-address`: the same address every time.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/deposit-address",
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "The deposit address", body = DepositAddressView))
)]
pub async fn deposit_address(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DepositAddressView>, ApiError> {
    caller.require(DEPOSIT_ADDRESS_ROLES)?;
    let (account_id, _) = open_account(&state, &caller, &id).await?;
    let address = state
        .vault
        .deposit_address(account_id.as_str())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(DepositAddressView {
        account_id: account_id.to_string(),
        address: address.address.to_base58(),
    }))
}
