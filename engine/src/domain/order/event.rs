//! What happened to an order. Each event carries the context its projections need (account,
//! receiver, wallet, energy, duration, price, txids, times), so views never look elsewhere.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::command::{CancelledBy, RejectionReason};
use crate::domain::ids::{AccountId, TxId};
use crate::domain::money::{Amount, Asset};
use crate::domain::pricing::{DurationTier, Quote};
use crate::domain::TronAddress;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced {
        account_id: AccountId,
        receiver: TronAddress,
        energy: u64,
        duration: DurationTier,
        quote: Quote,
        pay_by: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    },
    OrderPaid {
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        paid_at: DateTime<Utc>,
    },
    OrderRejected {
        account_id: AccountId,
        reason: RejectionReason,
        at: DateTime<Utc>,
    },
    /// When `release_funds` is true the order was paid: `amount` of `asset` must be released.
    OrderCancelled {
        account_id: AccountId,
        by: CancelledBy,
        release_funds: bool,
        asset: Asset,
        amount: Amount,
        at: DateTime<Utc>,
    },
    DelegationRequested {
        account_id: AccountId,
        receiver: TronAddress,
        wallet: TronAddress,
        attempt: u32,
        delegate_sun: u64,
        energy: u64,
        duration: DurationTier,
        at: DateTime<Utc>,
    },
    DelegationSigned {
        wallet: TronAddress,
        attempt: u32,
        txid: TxId,
        signed_tx_hex: String,
        expiration_ms: i64,
        at: DateTime<Utc>,
    },
    DelegationExpired {
        wallet: TronAddress,
        attempt: u32,
        txid: TxId,
        at: DateTime<Utc>,
    },
    DelegationConfirmed {
        wallet: TronAddress,
        receiver: TronAddress,
        attempt: u32,
        txid: TxId,
        block_number: u64,
        delegate_sun: u64,
        at: DateTime<Utc>,
    },
    OrderActivated {
        account_id: AccountId,
        receiver: TronAddress,
        wallet: TronAddress,
        energy: u64,
        duration: DurationTier,
        active_from: DateTime<Utc>,
        active_until: DateTime<Utc>,
    },
    DelegationFailed {
        wallet: TronAddress,
        attempt: u32,
        /// The signed transaction, if one was recorded.
        txid: Option<TxId>,
        reason: String,
        retryable: bool,
        attempts_left: u32,
        at: DateTime<Utc>,
    },
    /// Delivery failed: `amount` of `asset` must be released to the account.
    OrderRefunded {
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        reason: String,
        at: DateTime<Utc>,
    },
    ReclaimRequested {
        wallet: TronAddress,
        receiver: TronAddress,
        delegate_sun: u64,
        attempt: u32,
        at: DateTime<Utc>,
    },
    ReclaimSigned {
        wallet: TronAddress,
        attempt: u32,
        txid: TxId,
        signed_tx_hex: String,
        expiration_ms: i64,
        at: DateTime<Utc>,
    },
    ReclaimExpired {
        wallet: TronAddress,
        attempt: u32,
        txid: TxId,
        at: DateTime<Utc>,
    },
    /// The attempt failed; the order is back to `ReclaimRequested` for attempt + 1.
    ReclaimFailed {
        wallet: TronAddress,
        attempt: u32,
        txid: Option<TxId>,
        reason: String,
        at: DateTime<Utc>,
    },
    Reclaimed {
        wallet: TronAddress,
        receiver: TronAddress,
        txid: TxId,
        block_number: u64,
        delegate_sun: u64,
        at: DateTime<Utc>,
    },
    /// The order is done: `amount` of `asset` is the price to capture.
    OrderCompleted {
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        energy: u64,
        duration: DurationTier,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        use OrderEvent::*;
        match self {
            OrderPlaced { .. } => "OrderPlaced",
            OrderPaid { .. } => "OrderPaid",
            OrderRejected { .. } => "OrderRejected",
            OrderCancelled { .. } => "OrderCancelled",
            DelegationRequested { .. } => "DelegationRequested",
            DelegationSigned { .. } => "DelegationSigned",
            DelegationExpired { .. } => "DelegationExpired",
            DelegationConfirmed { .. } => "DelegationConfirmed",
            OrderActivated { .. } => "OrderActivated",
            DelegationFailed { .. } => "DelegationFailed",
            OrderRefunded { .. } => "OrderRefunded",
            ReclaimRequested { .. } => "ReclaimRequested",
            ReclaimSigned { .. } => "ReclaimSigned",
            ReclaimExpired { .. } => "ReclaimExpired",
            ReclaimFailed { .. } => "ReclaimFailed",
            Reclaimed { .. } => "Reclaimed",
            OrderCompleted { .. } => "OrderCompleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
