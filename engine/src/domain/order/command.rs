//! What can be asked of an order, from placement through delegation and reclaim to completion.
//! Results from the chain (signed, confirmed, expired, failed) arrive as commands too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ids::{AccountId, TxId};
use crate::domain::money::Asset;
use crate::domain::pricing::DurationTier;
use crate::domain::{DomainCommand, TronAddress};

/// Why an order was refused before payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionReason {
    /// The account could not reserve the price.
    InsufficientFunds,
    /// Anything else that makes the order unusable, described for the customer.
    Invalid(String),
}

/// Who cancelled an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelledBy {
    Customer,
    UnpaidTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderCommand {
    PlaceOrder {
        account_id: AccountId,
        receiver: TronAddress,
        energy: u64,
        duration: DurationTier,
        asset: Asset,
        /// The most the customer agreed to pay, in the asset's smallest unit.
        max_price: Option<u64>,
        at: DateTime<Utc>,
    },
    /// The account reserved the price.
    MarkPaid {
        at: DateTime<Utc>,
    },
    RejectOrder {
        reason: RejectionReason,
        at: DateTime<Utc>,
    },
    CancelOrder {
        by: CancelledBy,
        at: DateTime<Utc>,
    },
    /// Lend `delegate_sun` of `wallet`'s stake to the receiver (capacity is reserved on the wallet).
    RequestDelegation {
        wallet: TronAddress,
        delegate_sun: u64,
        at: DateTime<Utc>,
    },
    /// Write-ahead: the exact signed bytes, recorded before they are broadcast.
    RecordDelegationSigned {
        txid: TxId,
        signed_tx_hex: String,
        expiration_ms: i64,
        at: DateTime<Utc>,
    },
    /// The signed transaction expired without being included; a new one may be built.
    RecordDelegationExpired {
        txid: TxId,
        at: DateTime<Utc>,
    },
    ConfirmDelegation {
        txid: TxId,
        block_number: u64,
        at: DateTime<Utc>,
    },
    FailDelegation {
        reason: String,
        retryable: bool,
        at: DateTime<Utc>,
    },
    RefundOrder {
        reason: String,
        at: DateTime<Utc>,
    },
    RequestReclaim {
        at: DateTime<Utc>,
    },
    RecordReclaimSigned {
        txid: TxId,
        signed_tx_hex: String,
        expiration_ms: i64,
        at: DateTime<Utc>,
    },
    RecordReclaimExpired {
        txid: TxId,
        at: DateTime<Utc>,
    },
    /// A reclaim attempt failed; reclaims are always retried.
    FailReclaim {
        reason: String,
        at: DateTime<Utc>,
    },
    ConfirmReclaim {
        txid: TxId,
        block_number: u64,
        at: DateTime<Utc>,
    },
    CompleteOrder {
        at: DateTime<Utc>,
    },
}

impl DomainCommand for OrderCommand {
    fn command_type(&self) -> &'static str {
        use OrderCommand::*;
        match self {
            PlaceOrder { .. } => "PlaceOrder",
            MarkPaid { .. } => "MarkPaid",
            RejectOrder { .. } => "RejectOrder",
            CancelOrder { .. } => "CancelOrder",
            RequestDelegation { .. } => "RequestDelegation",
            RecordDelegationSigned { .. } => "RecordDelegationSigned",
            RecordDelegationExpired { .. } => "RecordDelegationExpired",
            ConfirmDelegation { .. } => "ConfirmDelegation",
            FailDelegation { .. } => "FailDelegation",
            RefundOrder { .. } => "RefundOrder",
            RequestReclaim { .. } => "RequestReclaim",
            RecordReclaimSigned { .. } => "RecordReclaimSigned",
            RecordReclaimExpired { .. } => "RecordReclaimExpired",
            FailReclaim { .. } => "FailReclaim",
            ConfirmReclaim { .. } => "ConfirmReclaim",
            CompleteOrder { .. } => "CompleteOrder",
        }
    }

    fn creates_aggregate(&self) -> bool {
        matches!(self, OrderCommand::PlaceOrder { .. })
    }
}
