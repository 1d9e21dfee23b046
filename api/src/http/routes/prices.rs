//! Prices: everyone may read the prices in force; admins set the unit price of one duration
//! tier in one asset. A change is a `price_list` event with the admin as actor and the reason;
//! this process decides orders with it at once, every other API process within a second
//! (docs/api.md, "Prices").

use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::Utc;
use engine::domain::{Asset, DurationTier, PriceListCommand, PriceTable, PRICE_LIST_ID};
use engine::process::prices::refresh_prices;
use serde::{Deserialize, Serialize};

use super::quotes::{asset, duration};
use super::{metadata, reason};
use crate::http::consistency::Written;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::{AppState, Caller, RequestId, Role};

pub const READ_ROLES: &[Role] = &[Role::Bot, Role::Finance, Role::Auditor, Role::Admin];
pub const ROLES: &[Role] = &[Role::Admin];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPrice {
    /// Smallest units of the asset (sun, or 10^-6 USDT) per energy per day; 1 or more.
    pub unit_price: u64,
    /// Why the price changes (kept on the event).
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierPrice {
    #[schema(value_type = String, example = "TRX")]
    pub asset: Asset,
    #[schema(value_type = String, example = "1d")]
    pub tier: DurationTier,
    pub unit_price: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PricesView {
    /// The smallest and largest order, in energy.
    pub min_energy: u64,
    pub max_energy: u64,
    /// Every tier on sale, by asset then duration.
    pub prices: Vec<TierPrice>,
}

fn view(table: &PriceTable) -> PricesView {
    let prices = Asset::ALL
        .into_iter()
        .flat_map(|asset| {
            DurationTier::ALL.into_iter().filter_map(move |tier| {
                table.unit_price(asset, tier).map(|unit_price| TierPrice {
                    asset,
                    tier,
                    unit_price,
                })
            })
        })
        .collect();
    PricesView {
        min_energy: table.min_energy(),
        max_energy: table.max_energy(),
        prices,
    }
}

/// `GET /v1/prices`: the prices orders are decided with now.
#[utoipa::path(
    get,
    path = "/v1/prices",
    tag = "orders",
    responses((status = 200, description = "The prices in force", body = PricesView))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PricesView>, ApiError> {
    caller.require(READ_ROLES)?;
    Ok(Json(view(&state.buses.order.services().prices)))
}

/// `PUT /v1/admin/prices/{asset}/{tier}` with `{"unit_price": …, "reason": …}`: the prices in
/// force afterwards.
#[utoipa::path(
    put,
    path = "/v1/admin/prices/{asset}/{tier}",
    tag = "admin",
    params(
        ("asset" = String, Path, description = "`TRX` or `USDT`"),
        ("tier" = String, Path, description = "`1h`, `1d`, `3d`, `7d`, `14d` or `30d`")
    ),
    request_body = SetPrice,
    responses((status = 200, description = "The prices in force", body = PricesView))
)]
pub async fn set(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    Path((asset_text, tier_text)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetPrice>,
) -> Result<Json<PricesView>, ApiError> {
    caller.require(ROLES)?;
    let asset = asset(Some(&asset_text))?;
    let tier = duration(&tier_text).map_err(|e| e.field("tier"))?;
    let reason = reason(&body.reason)?;
    let command = PriceListCommand::SetTierPrice {
        asset,
        tier,
        unit_price: body.unit_price,
        actor: caller.subject.clone(),
        reason: reason.clone(),
        at: Utc::now(),
    };
    let outcome = state
        .buses
        .price_list
        .execute(
            PRICE_LIST_ID,
            command,
            metadata(&caller, &rid).with_reason(reason),
        )
        .await?;
    written.accept(&state, &caller, outcome)?;
    let (table, _) = refresh_prices(&state.buses, &state.configured_prices)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(%asset, %tier, unit_price = body.unit_price, actor = %caller.subject, "price set");
    Ok(Json(view(&table)))
}
