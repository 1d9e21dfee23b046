//! Admins: register a pool wallet (its private key goes into the vault and is never returned or
//! logged), disable it (no new orders; active ones still reclaim from it) and enable it again.
//! Each is a `wallet` event carrying the admin as actor and the reason.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use engine::domain::wallet::{KeyRef, WalletCommand};
use engine::domain::TronAddress;
use serde::{Deserialize, Serialize};
use tron_adapter::worker::pool::refresh_pool_policy;
use tron_adapter::PrivateKey;
use zeroize::Zeroize;

use super::{metadata, reason};
use crate::http::consistency::Written;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::{AppState, Caller, RequestId, Role};

pub const ROLES: &[Role] = &[Role::Admin];

/// No `Debug`: the key must not reach a log line. Wiped when dropped.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWallet {
    /// The wallet's secp256k1 private key, 64 hex digits. Stored encrypted; never returned.
    pub private_key: String,
    /// Why the wallet joins the pool (kept on the event).
    pub reason: String,
}

impl Drop for RegisterWallet {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletView {
    pub address: String,
    pub address_hex: String,
    pub enabled: bool,
    pub staked_sun: u64,
    pub delegatable_sun: u64,
    pub reserved_sun: u64,
    pub free_sun: u64,
}

fn address(text: &str) -> Result<TronAddress, ApiError> {
    TronAddress::parse(text).map_err(|e| {
        ApiError::bad_request("invalid_address", format!("not a TRON address: {e}"))
            .field("address")
    })
}

async fn view(state: &AppState, address: &TronAddress) -> Result<WalletView, ApiError> {
    let (wallet, _) = state.buses.wallet.load(&address.to_base58()).await?;
    if !wallet.is_registered() {
        return Err(ApiError::not_found(
            "wallet_not_found",
            "no pool wallet has that address",
        ));
    }
    Ok(WalletView {
        address: address.to_base58(),
        address_hex: address.to_hex(),
        enabled: wallet.is_enabled(),
        staked_sun: wallet.staked_sun(),
        delegatable_sun: wallet.delegatable_sun(),
        reserved_sun: wallet.reserved_sun(),
        free_sun: wallet.free_sun(),
    })
}

/// `POST /v1/admin/wallets`: 201 with the wallet (its address, never its key); 409
/// `wallet_already_registered`.
#[utoipa::path(
    post,
    path = "/v1/admin/wallets",
    tag = "admin",
    request_body = RegisterWallet,
    responses((status = 201, description = "Registered", body = WalletView))
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    JsonBody(body): JsonBody<RegisterWallet>,
) -> Result<(StatusCode, Json<WalletView>), ApiError> {
    caller.require(ROLES)?;
    let reason = reason(&body.reason)?;
    let key = PrivateKey::from_hex(body.private_key.trim()).map_err(|_| {
        ApiError::unprocessable(
            "invalid_private_key",
            "the private key is 64 hex digits of a valid secp256k1 key",
        )
        .field("private_key")
    })?;
    let address = key.address();
    let (wallet, _) = state.buses.wallet.load(&address.to_base58()).await?;
    if wallet.is_registered() {
        return Err(ApiError::conflict(
            "wallet_already_registered",
            "that wallet is already in the pool",
        ));
    }
    state
        .vault
        .store_wallet_key(&key)
        .await
        .map_err(ApiError::internal)?;
    drop(key);
    let command = WalletCommand::RegisterWallet {
        address,
        key_ref: KeyRef::new(format!("vault:wallet:{}", address.to_hex())),
        at: Utc::now(),
    };
    let outcome = state
        .buses
        .wallet
        .execute(
            &address.to_base58(),
            command,
            metadata(&caller, &rid).with_reason(reason),
        )
        .await?;
    written.accept(&state, &caller, outcome)?;
    // This process's orders may use it at once; other processes add it within seconds.
    refresh_pool_policy(&state.buses)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(wallet = %address, actor = %caller.subject, "pool wallet registered");
    Ok((StatusCode::CREATED, Json(view(&state, &address).await?)))
}

/// `POST /v1/admin/wallets/{address}/disable` with `{"reason": …}`: 409 if already disabled.
#[utoipa::path(
    post,
    path = "/v1/admin/wallets/{address}/disable",
    tag = "admin",
    params(("address" = String, Path, description = "Base58 or 41… hex")),
    request_body = Reason,
    responses((status = 200, description = "Disabled", body = WalletView))
)]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    Path(text): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> Result<Json<WalletView>, ApiError> {
    switch(
        &state,
        &caller,
        &rid,
        &written,
        &text,
        &body,
        |reason, actor| WalletCommand::DisableWallet {
            reason,
            actor,
            at: Utc::now(),
        },
    )
    .await
}

/// `POST /v1/admin/wallets/{address}/enable` with `{"reason": …}`: 409 if already enabled.
#[utoipa::path(
    post,
    path = "/v1/admin/wallets/{address}/enable",
    tag = "admin",
    params(("address" = String, Path, description = "Base58 or 41… hex")),
    request_body = Reason,
    responses((status = 200, description = "Enabled", body = WalletView))
)]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Extension(rid): Extension<RequestId>,
    Extension(written): Extension<Written>,
    Path(text): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> Result<Json<WalletView>, ApiError> {
    switch(&state, &caller, &rid, &written, &text, &body, |_, actor| {
        WalletCommand::EnableWallet {
            actor,
            at: Utc::now(),
        }
    })
    .await
}

/// Disables or enables a registered wallet: `command` gets the reason and the admin's subject;
/// the reason also goes into the event's metadata (enabling has no reason field of its own).
async fn switch(
    state: &AppState,
    caller: &Caller,
    rid: &RequestId,
    written: &Written,
    text: &str,
    body: &Reason,
    command: impl FnOnce(String, String) -> WalletCommand,
) -> Result<Json<WalletView>, ApiError> {
    caller.require(ROLES)?;
    let address = address(text)?;
    let reason = reason(&body.reason)?;
    view(state, &address).await?;
    let outcome = state
        .buses
        .wallet
        .execute(
            &address.to_base58(),
            command(reason.clone(), caller.subject.clone()),
            metadata(caller, rid).with_reason(reason),
        )
        .await?;
    written.accept(state, caller, outcome)?;
    Ok(Json(view(state, &address).await?))
}
