//! Admins: a manual correction of an account's balance, always with a reason. The account
//! decides it (never below zero) and records it as `BalanceAdjusted` with the admin as actor.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::domain::{AccountCommand, Asset};
use serde::Deserialize;

use super::accounts::{balances_view, BalancesView};
use super::{metadata, open_account, reason};
use crate::http::consistency::Written;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::{AppState, Caller, RequestId, Role};

pub const ROLES: &[Role] = &[Role::Admin];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// `TRX` or `USDT`.
    pub asset: String,
    /// Signed, in the asset's smallest unit (sun, or 10^-6 USDT); never zero.
    pub delta: i64,
    /// Why (kept on the event): 1 to 500 characters.
    pub reason: String,
}

/// `POST /v1/admin/accounts/{id}/adjustments`: 201 with the account's balances after it; 422
/// `adjustment_below_zero` when it would take the available balance below zero.
#[utoipa::path(
    post,
    path = "/v1/admin/accounts/{id}/adjustments",
    tag = "admin",
    params(("id" = String, Path, description = "Account id")),
    request_body = Adjustment,
    responses((status = 201, description = "Adjusted", body = BalancesView))
)]
pub async fn adjust(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Adjustment>,
) -> Result<(StatusCode, Json<BalancesView>), ApiError> {
    caller.require(ROLES)?;
    let asset = body
        .asset
        .parse::<Asset>()
        .map_err(|e| ApiError::unprocessable("unknown_asset", e.to_string()).field("asset"))?;
    if body.delta == 0 {
        return Err(
            ApiError::unprocessable("zero_amount", "delta must not be zero").field("delta"),
        );
    }
    let reason = reason(&body.reason)?;
    let (account_id, _) = open_account(&state, &caller, &id).await?;
    let command = AccountCommand::AdjustBalance {
        asset,
        delta: body.delta,
        reason: reason.clone(),
        actor: caller.subject.clone(),
    };
    let outcome = state
        .buses
        .account
        .execute(
            account_id.as_str(),
            command,
            metadata(&caller, &rid).with_reason(reason),
        )
        .await?;
    written.accept(&state, &caller, outcome)?;
    let (account, _) = state.buses.account.load(account_id.as_str()).await?;
    tracing::info!(account_id = %account_id, %asset, delta = body.delta, actor = %caller.subject, "balance adjusted");
    Ok((
        StatusCode::CREATED,
        Json(balances_view(&account_id, &account)),
    ))
}
