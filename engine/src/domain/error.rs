//! `DomainError`: the one error type of every aggregate. Each variant names what was wrong with
//! the fields an operator (or the API's error body) needs, and has a stable snake_case `code()`
//! that is also its serialised `code` tag. Codes never change once published.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{DepositId, OrderId, TxId};
use super::money::{AmountError, Asset, UnknownAsset, MAX_AMOUNT};
use super::pricing::{DurationTier, Quote};
use super::{AddressError, TronAddress};

/// Why a number is not an [`Amount`](super::Amount), in a serialisable form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountProblem {
    Zero,
    Negative,
    TooLarge,
}

/// Which kind of identifier failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    Account,
    Order,
    Txid,
    Deposit,
}

/// How an account reservation was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    Captured,
    Released,
}

/// Everything a domain command can be refused for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DomainError {
    // ---- input that does not parse --------------------------------------------------------
    #[error("invalid amount: {problem:?} (amounts are whole units, 1..={MAX_AMOUNT})")]
    InvalidAmount { problem: AmountProblem },
    #[error("unknown asset {asset:?}; expected TRX or USDT")]
    UnknownAsset { asset: String },
    #[error("invalid TRON address: {problem}")]
    InvalidAddress { problem: AddressError },
    #[error("invalid {kind:?} id: {problem}")]
    InvalidId { kind: IdKind, problem: String },
    #[error("{field} must be greater than zero")]
    ZeroQuantity { field: String },
    #[error("{field} must be at most {max}")]
    QuantityTooLarge { field: String, max: u64 },
    #[error("{field} must not be empty")]
    TextRequired { field: String },
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TextTooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("{field} is out of the representable time range")]
    TimeOutOfRange { field: String },

    // ---- pricing ----------------------------------------------------------------------------
    #[error("{energy} energy is below the minimum order of {min}")]
    EnergyBelowMinimum { energy: u64, min: u64 },
    #[error("{energy} energy is above the maximum order of {max}")]
    EnergyAboveMaximum { energy: u64, max: u64 },
    #[error("duration {duration:?} is not offered (1h, 1d, 3d, 7d, 14d or 30d)")]
    DurationNotOffered { duration: String },
    #[error("{asset} is not accepted")]
    AssetNotAccepted { asset: Asset },
    #[error("the price of {energy} energy for {duration} at {unit_price} is too large")]
    PriceOverflow {
        energy: u64,
        unit_price: u64,
        duration: DurationTier,
    },
    #[error("the price {} {} is above the customer's limit of {max_price}", quote.price, quote.asset)]
    PriceAboveLimit { quote: Quote, max_price: u64 },
    #[error("invalid price table: {problem}")]
    InvalidPriceTable { problem: String },

    // ---- any aggregate ------------------------------------------------------------------
    #[error("{command} is not allowed while {state}")]
    InvalidTransition { state: String, command: String },
    #[error("not allowed before {not_before} (now {at})")]
    TooEarly {
        at: DateTime<Utc>,
        not_before: DateTime<Utc>,
    },

    // ---- account ----------------------------------------------------------------------------
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

    // ---- order ------------------------------------------------------------------------------
    #[error("the order was already placed")]
    OrderAlreadyPlaced,
    #[error("the receiver {receiver} is one of our pool wallets")]
    ReceiverIsPoolWallet { receiver: TronAddress },
    #[error("{wallet} is not a pool wallet")]
    WalletNotInPool { wallet: TronAddress },
    #[error("a delegation from {wallet} already failed for this order")]
    WalletAlreadyTried { wallet: TronAddress },
    #[error("all {max} delegation attempts are used ({attempts} made)")]
    AttemptsExhausted { attempts: u32, max: u32 },
    #[error("the last delegation failure was not retryable")]
    FailureNotRetryable,
    #[error("transaction {actual} is not the current one ({expected})")]
    TxidMismatch { expected: TxId, actual: TxId },
    #[error("invalid signed transaction: {problem}")]
    InvalidSignedTransaction { problem: String },

    // ---- deposit ----------------------------------------------------------------------------
    #[error("deposit {deposit_id} was already detected")]
    DepositAlreadyDetected { deposit_id: DepositId },
    #[error("a {asset} deposit {} a log index", if *asset == Asset::Usdt { "needs" } else { "has no" })]
    LogIndexMismatch {
        asset: Asset,
        log_index: Option<u32>,
    },

    // ---- wallet -----------------------------------------------------------------------------
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
}

impl DomainError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        use DomainError::*;
        match self {
            InvalidAmount { .. } => "invalid_amount",
            UnknownAsset { .. } => "unknown_asset",
            InvalidAddress { .. } => "invalid_address",
            InvalidId { .. } => "invalid_id",
            ZeroQuantity { .. } => "zero_quantity",
            QuantityTooLarge { .. } => "quantity_too_large",
            TextRequired { .. } => "text_required",
            TextTooLong { .. } => "text_too_long",
            TimeOutOfRange { .. } => "time_out_of_range",
            EnergyBelowMinimum { .. } => "energy_below_minimum",
            EnergyAboveMaximum { .. } => "energy_above_maximum",
            DurationNotOffered { .. } => "duration_not_offered",
            AssetNotAccepted { .. } => "asset_not_accepted",
            PriceOverflow { .. } => "price_overflow",
            PriceAboveLimit { .. } => "price_above_limit",
            InvalidPriceTable { .. } => "invalid_price_table",
            InvalidTransition { .. } => "invalid_transition",
            TooEarly { .. } => "too_early",
            AccountNotOpen => "account_not_open",
            AccountAlreadyOpen => "account_already_open",
            DepositAlreadyCredited { .. } => "deposit_already_credited",
            OrderAlreadyReserved { .. } => "order_already_reserved",
            InsufficientFunds { .. } => "insufficient_funds",
            NoReservation { .. } => "no_reservation",
            ReservationSettled { .. } => "reservation_settled",
            AdjustmentBelowZero { .. } => "adjustment_below_zero",
            BalanceOverflow { .. } => "balance_overflow",
            OrderAlreadyPlaced => "order_already_placed",
            ReceiverIsPoolWallet { .. } => "receiver_is_pool_wallet",
            WalletNotInPool { .. } => "wallet_not_in_pool",
            WalletAlreadyTried { .. } => "wallet_already_tried",
            AttemptsExhausted { .. } => "attempts_exhausted",
            FailureNotRetryable => "failure_not_retryable",
            TxidMismatch { .. } => "txid_mismatch",
            InvalidSignedTransaction { .. } => "invalid_signed_transaction",
            DepositAlreadyDetected { .. } => "deposit_already_detected",
            LogIndexMismatch { .. } => "log_index_mismatch",
            WalletNotRegistered => "wallet_not_registered",
            WalletAlreadyRegistered => "wallet_already_registered",
            KeyMaterialNotAllowed { .. } => "key_material_not_allowed",
            WalletDisabled => "wallet_disabled",
            InsufficientCapacity { .. } => "insufficient_capacity",
            CapacityAlreadyReserved { .. } => "capacity_already_reserved",
            NoCapacityReservation { .. } => "no_capacity_reservation",
            InconsistentResources { .. } => "inconsistent_resources",
        }
    }

    /// A wrong-state command.
    pub(crate) fn transition(state: &str, command: &str) -> Self {
        DomainError::InvalidTransition {
            state: state.to_string(),
            command: command.to_string(),
        }
    }
}

impl From<AmountError> for DomainError {
    fn from(e: AmountError) -> Self {
        let problem = match e {
            AmountError::Zero => AmountProblem::Zero,
            AmountError::Negative => AmountProblem::Negative,
            AmountError::TooLarge => AmountProblem::TooLarge,
        };
        DomainError::InvalidAmount { problem }
    }
}

impl From<UnknownAsset> for DomainError {
    fn from(e: UnknownAsset) -> Self {
        DomainError::UnknownAsset { asset: e.0 }
    }
}

impl From<AddressError> for DomainError {
    fn from(problem: AddressError) -> Self {
        DomainError::InvalidAddress { problem }
    }
}

#[cfg(test)]
mod tests;
