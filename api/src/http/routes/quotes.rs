//! Quotes: the price of an amount of energy for a period, and whether the receiver is activated
//! (an unactivated address cannot receive a delegation).

use axum::extract::State;
use axum::Json;
use engine::domain::{Asset, DurationTier, TronAddress};
use serde::{Deserialize, Serialize};
use tron_adapter::node::Finality;

use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::{AppState, Caller, Role};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub energy: u64,
    /// `1h`, `1d`, `3d`, `7d`, `14d` or `30d`.
    pub duration: String,
    /// The TRON address that receives the energy.
    pub receiver: String,
    /// `TRX` (default) or `USDT`.
    #[serde(default)]
    pub asset: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuoteView {
    pub energy: u64,
    #[schema(value_type = String, example = "1d")]
    pub duration: DurationTier,
    #[schema(value_type = String, example = "TRX")]
    pub asset: Asset,
    /// Smallest units of the asset per energy per day.
    pub unit_price: u64,
    /// Smallest units of the asset (sun for TRX).
    pub price: u64,
    pub receiver: String,
    /// `null` when the node could not be asked.
    pub receiver_activated: Option<bool>,
}

pub(crate) fn receiver(text: &str) -> Result<TronAddress, ApiError> {
    TronAddress::parse(text).map_err(|e| {
        ApiError::unprocessable("invalid_address", format!("invalid TRON address: {e}"))
            .field("receiver")
    })
}

pub(crate) fn duration(text: &str) -> Result<DurationTier, ApiError> {
    text.parse::<DurationTier>()
        .map_err(|e| ApiError::domain(&e).field("duration"))
}

pub(crate) fn asset(text: Option<&str>) -> Result<Asset, ApiError> {
    match text {
        None => Ok(Asset::Trx),
        Some(t) => t
            .parse::<Asset>()
            .map_err(|e| ApiError::unprocessable("unknown_asset", e.to_string()).field("asset")),
    }
}

pub const ROLES: &[Role] = &[Role::Bot, Role::Admin];

/// `POST /v1/quotes`.
#[utoipa::path(
    post,
    path = "/v1/quotes",
    tag = "orders",
    request_body = QuoteRequest,
    responses((status = 200, description = "The price", body = QuoteView))
)]
pub async fn quote(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<QuoteRequest>,
) -> Result<Json<QuoteView>, ApiError> {
    caller.require(ROLES)?;
    let receiver_address = receiver(&body.receiver)?;
    let tier = duration(&body.duration)?;
    let asset = asset(body.asset.as_deref())?;
    let quote = state
        .buses
        .order
        .services()
        .prices
        .quote(asset, tier, body.energy)
        .map_err(|e| ApiError::domain(&e))?;
    let receiver_activated = match &state.node {
        None => None,
        Some(node) => match node.account(&receiver_address, Finality::Head).await {
            Ok(info) => Some(info.is_some()),
            Err(e) => {
                tracing::warn!(error = %e, "could not ask the node whether the receiver is activated");
                None
            }
        },
    };
    Ok(Json(QuoteView {
        energy: quote.energy,
        duration: quote.duration,
        asset: quote.asset,
        unit_price: quote.unit_price,
        price: quote.price.units(),
        receiver: receiver_address.to_base58(),
        receiver_activated,
    }))
}
