//! The `Order` aggregate: one customer's rental of energy, from placement and payment through
//! the delegation of staked TRX to the receiver (write-ahead: signed bytes are recorded before
//! they are broadcast), the active period, and the reclaim, to completion. Exits: rejected,
//! cancelled (funds released if paid) and refunded after a failed delivery.

mod chain;
mod command;
mod decide;
mod event;
mod policy;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use command::{CancelledBy, OrderCommand, RejectionReason};
pub use event::OrderEvent;
pub use policy::OrderPolicy;

use super::decide::decide_into_sink;
mod error;
use super::ids::{AccountId, TxId};
use super::pricing::{DurationTier, Quote};
use super::TronAddress;
pub use error::OrderError;

/// Where an order stands. `New` is an order id nothing has happened to yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    #[default]
    New,
    Placed,
    Paid,
    Rejected,
    Cancelled,
    DelegationRequested,
    DelegationSigned,
    /// Passed through on the way to `Active` (both events come from one command).
    DelegationConfirmed,
    DelegationFailed,
    Active,
    ReclaimRequested,
    ReclaimSigned,
    Reclaimed,
    Completed,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        use OrderStatus::*;
        match self {
            New => "New",
            Placed => "Placed",
            Paid => "Paid",
            Rejected => "Rejected",
            Cancelled => "Cancelled",
            DelegationRequested => "DelegationRequested",
            DelegationSigned => "DelegationSigned",
            DelegationConfirmed => "DelegationConfirmed",
            DelegationFailed => "DelegationFailed",
            Active => "Active",
            ReclaimRequested => "ReclaimRequested",
            ReclaimSigned => "ReclaimSigned",
            Reclaimed => "Reclaimed",
            Completed => "Completed",
            Refunded => "Refunded",
        }
    }

    /// Nothing more can happen to the order.
    pub fn is_final(self) -> bool {
        use OrderStatus::*;
        matches!(self, Rejected | Cancelled | Completed | Refunded)
    }
}

/// What the customer ordered and was quoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub account_id: AccountId,
    pub receiver: TronAddress,
    pub energy: u64,
    pub duration: DurationTier,
    pub quote: Quote,
    pub pay_by: DateTime<Utc>,
    pub placed_at: DateTime<Utc>,
}

/// A signed transaction recorded before broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    pub txid: TxId,
    pub signed_tx_hex: String,
    pub expiration_ms: i64,
}

/// A transaction the chain confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub txid: TxId,
    pub block_number: u64,
    pub at: DateTime<Utc>,
}

/// The current delegation attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub wallet: TronAddress,
    pub attempt: u32,
    pub delegate_sun: u64,
    pub signed: Option<SignedTx>,
    pub confirmed: Option<Confirmation>,
}

/// The reclaim of a confirmed delegation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reclaim {
    pub attempt: u32,
    pub signed: Option<SignedTx>,
    pub confirmed: Option<Confirmation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    status: OrderStatus,
    placement: Option<Placement>,
    paid_at: Option<DateTime<Utc>>,
    delegation: Option<Delegation>,
    /// Delegation attempts made so far (each on a different wallet).
    attempts: u32,
    /// Wallets whose delegation failed for this order: never tried again.
    failed_wallets: BTreeSet<TronAddress>,
    last_failure_retryable: bool,
    active_from: Option<DateTime<Utc>>,
    active_until: Option<DateTime<Utc>>,
    reclaim: Option<Reclaim>,
    closed_at: Option<DateTime<Utc>>,
}

impl Order {
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    pub fn placement(&self) -> Option<&Placement> {
        self.placement.as_ref()
    }

    pub fn delegation(&self) -> Option<&Delegation> {
        self.delegation.as_ref()
    }

    pub fn reclaim(&self) -> Option<&Reclaim> {
        self.reclaim.as_ref()
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn failed_wallets(&self) -> &BTreeSet<TronAddress> {
        &self.failed_wallets
    }

    pub fn active_until(&self) -> Option<DateTime<Utc>> {
        self.active_until
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = OrderPolicy;

    async fn handle(
        &mut self,
        command: OrderCommand,
        policy: &OrderPolicy,
        sink: &EventSink<Self>,
    ) -> Result<(), OrderError> {
        decide_into_sink(self, command, policy, sink).await
    }

    fn apply(&mut self, event: OrderEvent) {
        use OrderEvent::*;
        match event {
            OrderPlaced {
                account_id,
                receiver,
                energy,
                duration,
                quote,
                pay_by,
                placed_at,
            } => {
                self.status = OrderStatus::Placed;
                self.placement = Some(Placement {
                    account_id,
                    receiver,
                    energy,
                    duration,
                    quote,
                    pay_by,
                    placed_at,
                });
            }
            OrderPaid { paid_at, .. } => {
                self.status = OrderStatus::Paid;
                self.paid_at = Some(paid_at);
            }
            OrderRejected { at, .. } => self.close(OrderStatus::Rejected, at),
            OrderCancelled { at, .. } => self.close(OrderStatus::Cancelled, at),
            DelegationRequested {
                wallet,
                attempt,
                delegate_sun,
                ..
            } => {
                self.status = OrderStatus::DelegationRequested;
                self.attempts = attempt;
                self.delegation = Some(Delegation {
                    wallet,
                    attempt,
                    delegate_sun,
                    signed: None,
                    confirmed: None,
                });
            }
            DelegationSigned {
                txid,
                signed_tx_hex,
                expiration_ms,
                ..
            } => {
                self.status = OrderStatus::DelegationSigned;
                if let Some(d) = &mut self.delegation {
                    d.signed = Some(SignedTx {
                        txid,
                        signed_tx_hex,
                        expiration_ms,
                    });
                }
            }
            DelegationExpired { .. } => {
                self.status = OrderStatus::DelegationRequested;
                if let Some(d) = &mut self.delegation {
                    d.signed = None;
                }
            }
            DelegationConfirmed {
                txid,
                block_number,
                at,
                ..
            } => {
                self.status = OrderStatus::DelegationConfirmed;
                if let Some(d) = &mut self.delegation {
                    d.confirmed = Some(Confirmation {
                        txid,
                        block_number,
                        at,
                    });
                }
            }
            OrderActivated {
                active_from,
                active_until,
                ..
            } => {
                self.status = OrderStatus::Active;
                self.active_from = Some(active_from);
                self.active_until = Some(active_until);
            }
            DelegationFailed {
                wallet, retryable, ..
            } => {
                self.status = OrderStatus::DelegationFailed;
                self.failed_wallets.insert(wallet);
                self.last_failure_retryable = retryable;
                self.delegation = None;
            }
            OrderRefunded { at, .. } => self.close(OrderStatus::Refunded, at),
            ReclaimRequested { attempt, .. } => {
                self.status = OrderStatus::ReclaimRequested;
                self.reclaim = Some(Reclaim {
                    attempt,
                    signed: None,
                    confirmed: None,
                });
            }
            ReclaimSigned {
                txid,
                signed_tx_hex,
                expiration_ms,
                ..
            } => {
                self.status = OrderStatus::ReclaimSigned;
                if let Some(r) = &mut self.reclaim {
                    r.signed = Some(SignedTx {
                        txid,
                        signed_tx_hex,
                        expiration_ms,
                    });
                }
            }
            ReclaimExpired { .. } => {
                self.status = OrderStatus::ReclaimRequested;
                if let Some(r) = &mut self.reclaim {
                    r.signed = None;
                }
            }
            ReclaimFailed { attempt, .. } => {
                self.status = OrderStatus::ReclaimRequested;
                if let Some(r) = &mut self.reclaim {
                    r.signed = None;
                    r.attempt = attempt.saturating_add(1);
                }
            }
            Reclaimed {
                txid,
                block_number,
                at,
                ..
            } => {
                self.status = OrderStatus::Reclaimed;
                if let Some(r) = &mut self.reclaim {
                    r.confirmed = Some(Confirmation {
                        txid,
                        block_number,
                        at,
                    });
                }
            }
            OrderCompleted { at, .. } => self.close(OrderStatus::Completed, at),
        }
    }
}

impl Order {
    fn close(&mut self, status: OrderStatus, at: DateTime<Utc>) {
        self.status = status;
        self.closed_at = Some(at);
    }
}
