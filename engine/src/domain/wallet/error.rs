//! `WalletError`: why a pool wallet refuses a command. Each variant has a stable snake_case
//! `code()`, which is also its serialised `code` tag; codes never change once published.

use serde::{Deserialize, Serialize};

use crate::domain::field::FieldError;
use crate::domain::ids::OrderId;
use crate::domain::transition::TransitionError;

/// Everything a wallet refuses a command for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum WalletError {
    #[error("the wallet is not registered")]
    WalletNotRegistered,
    #[error("the wallet is already registered")]
    WalletAlreadyRegistered,
    #[error("key_ref looks like key material ({length} characters); store a reference such as vault:<name>")]
    KeyMaterialNotAllowed { length: usize },
    #[error("the wallet is disabled")]
    WalletDisabled,
    #[error("only {free} sun of capacity is free, {requested} requested")]
    InsufficientCapacity { free: u64, requested: u64 },
    #[error("capacity was already reserved for order {order_id}")]
    CapacityAlreadyReserved { order_id: OrderId },
    #[error("no capacity is reserved for order {order_id}")]
    NoCapacityReservation { order_id: OrderId },
    #[error("observed {delegatable_sun} delegatable sun out of only {staked_sun} staked")]
    InconsistentResources {
        staked_sun: u64,
        delegatable_sun: u64,
    },
    #[error(transparent)]
    #[serde(untagged)]
    Transition(#[from] TransitionError),
    /// Zero or oversized quantities, a missing key reference, reason or actor.
    #[error(transparent)]
    #[serde(untagged)]
    Field(#[from] FieldError),
}

impl WalletError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        use WalletError::*;
        match self {
            WalletNotRegistered => "wallet_not_registered",
            WalletAlreadyRegistered => "wallet_already_registered",
            KeyMaterialNotAllowed { .. } => "key_material_not_allowed",
            WalletDisabled => "wallet_disabled",
            InsufficientCapacity { .. } => "insufficient_capacity",
            CapacityAlreadyReserved { .. } => "capacity_already_reserved",
            NoCapacityReservation { .. } => "no_capacity_reservation",
            InconsistentResources { .. } => "inconsistent_resources",
            Transition(e) => e.code(),
            Field(e) => e.code(),
        }
    }
}
