//! `OrderError`: why an order refuses a command, from its placement (the quote, the receiver,
//! the customer's limit) through delegation and reclaim. Each variant has a stable snake_case
//! `code()`, which is also its serialised `code` tag; codes never change once published.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::address::TronAddress;
use crate::domain::field::FieldError;
use crate::domain::ids::TxId;
use crate::domain::pricing::{Quote, QuoteError};
use crate::domain::transition::TransitionError;

/// Everything an order refuses a command for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum OrderError {
    #[error("the order was already placed")]
    OrderAlreadyPlaced,
    #[error("the receiver {receiver} is one of our pool wallets")]
    ReceiverIsPoolWallet { receiver: TronAddress },
    #[error("the price {} {} is above the customer's limit of {max_price}", quote.price, quote.asset)]
    PriceAboveLimit { quote: Quote, max_price: u64 },
    #[error("not allowed before {not_before} (now {at})")]
    TooEarly {
        at: DateTime<Utc>,
        not_before: DateTime<Utc>,
    },
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
    #[error(transparent)]
    #[serde(untagged)]
    Transition(#[from] TransitionError),
    /// Zero or oversized quantities, missing reasons, times out of range.
    #[error(transparent)]
    #[serde(untagged)]
    Field(#[from] FieldError),
    /// No quote for what was asked (size, asset, tier). A quote's `zero_quantity` is a
    /// [`Field`](Self::Field) refusal here, as it reads back from its stored form.
    #[error(transparent)]
    #[serde(untagged)]
    Quote(QuoteError),
}

impl From<QuoteError> for OrderError {
    fn from(e: QuoteError) -> Self {
        match e {
            QuoteError::Field(e) => OrderError::Field(e),
            e => OrderError::Quote(e),
        }
    }
}

impl OrderError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        use OrderError::*;
        match self {
            OrderAlreadyPlaced => "order_already_placed",
            ReceiverIsPoolWallet { .. } => "receiver_is_pool_wallet",
            PriceAboveLimit { .. } => "price_above_limit",
            TooEarly { .. } => "too_early",
            WalletNotInPool { .. } => "wallet_not_in_pool",
            WalletAlreadyTried { .. } => "wallet_already_tried",
            AttemptsExhausted { .. } => "attempts_exhausted",
            FailureNotRetryable => "failure_not_retryable",
            TxidMismatch { .. } => "txid_mismatch",
            InvalidSignedTransaction { .. } => "invalid_signed_transaction",
            Transition(e) => e.code(),
            Field(e) => e.code(),
            Quote(e) => e.code(),
        }
    }
}
