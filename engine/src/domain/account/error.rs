//! `AccountError`: why the account refuses a command. Each variant has a stable snake_case
//! `code()`, which is also its serialised `code` tag (stored in the command log, answered by
//! the API); codes never change once published.

use serde::{Deserialize, Serialize};

use crate::domain::field::FieldError;
use crate::domain::ids::{DepositId, OrderId};
use crate::domain::money::{Asset, MAX_AMOUNT};

/// How a reservation was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    Captured,
    Released,
}

/// Everything the account refuses a command for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AccountError {
    #[error("the account is not open")]
    AccountNotOpen,
    #[error("the account is already open")]
    AccountAlreadyOpen,
    #[error("deposit {deposit_id} was already credited")]
    DepositAlreadyCredited { deposit_id: DepositId },
    #[error("funds were already reserved for order {order_id}")]
    OrderAlreadyReserved { order_id: OrderId },
    #[error("insufficient {asset}: {available} available, {requested} requested")]
    InsufficientFunds {
        asset: Asset,
        available: u64,
        requested: u64,
    },
    #[error("no funds are reserved for order {order_id}")]
    NoReservation { order_id: OrderId },
    #[error("the reservation for order {order_id} was already {settlement:?}")]
    ReservationSettled {
        order_id: OrderId,
        settlement: Settlement,
    },
    #[error("adjusting {asset} by {delta} would take the available {available} below zero")]
    AdjustmentBelowZero {
        asset: Asset,
        available: u64,
        delta: i64,
    },
    #[error("the {asset} balance would exceed {MAX_AMOUNT}")]
    BalanceOverflow { asset: Asset },
    /// A zero adjustment, a missing or overlong reason or actor.
    #[error(transparent)]
    #[serde(untagged)]
    Field(#[from] FieldError),
}

impl AccountError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        use AccountError::*;
        match self {
            AccountNotOpen => "account_not_open",
            AccountAlreadyOpen => "account_already_open",
            DepositAlreadyCredited { .. } => "deposit_already_credited",
            OrderAlreadyReserved { .. } => "order_already_reserved",
            InsufficientFunds { .. } => "insufficient_funds",
            NoReservation { .. } => "no_reservation",
            ReservationSettled { .. } => "reservation_settled",
            AdjustmentBelowZero { .. } => "adjustment_below_zero",
            BalanceOverflow { .. } => "balance_overflow",
            Field(e) => e.code(),
        }
    }
}
