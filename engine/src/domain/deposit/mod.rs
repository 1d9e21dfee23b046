//! The `Deposit` aggregate: one incoming transfer to a customer's deposit address, keyed by its
//! txid (and log index for TRC20). Detected → confirmed (solidified) → credited, or rejected
//! before credit; a re-scanned block finds the deposit already there, so nothing is credited twice.

mod command;
mod decide;
mod event;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use command::{DepositCommand, DepositRejection};
pub use event::DepositEvent;

use super::decide::decide_into_sink;
mod error;
use super::ids::{AccountId, DepositId, TxId};
use super::money::{Amount, Asset};
use super::TronAddress;
pub use error::DepositError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepositStatus {
    #[default]
    New,
    Detected,
    Confirmed,
    Credited,
    Rejected,
}

impl DepositStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DepositStatus::New => "New",
            DepositStatus::Detected => "Detected",
            DepositStatus::Confirmed => "Confirmed",
            DepositStatus::Credited => "Credited",
            DepositStatus::Rejected => "Rejected",
        }
    }
}

/// The transfer as the scanner saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub deposit_id: DepositId,
    pub account_id: AccountId,
    pub asset: Asset,
    pub amount: Amount,
    pub txid: TxId,
    pub log_index: Option<u32>,
    pub from: TronAddress,
    pub to: TronAddress,
    pub block_number: u64,
    pub detected_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    status: DepositStatus,
    transfer: Option<Transfer>,
    confirmed_block: Option<u64>,
    rejection: Option<DepositRejection>,
    settled_at: Option<DateTime<Utc>>,
}

impl Deposit {
    pub fn status(&self) -> DepositStatus {
        self.status
    }

    pub fn transfer(&self) -> Option<&Transfer> {
        self.transfer.as_ref()
    }

    pub fn confirmed_block(&self) -> Option<u64> {
        self.confirmed_block
    }

    pub fn rejection(&self) -> Option<DepositRejection> {
        self.rejection
    }
}

impl Aggregate for Deposit {
    const TYPE: &'static str = "deposit";
    type Command = DepositCommand;
    type Event = DepositEvent;
    type Error = DepositError;
    type Services = ();

    async fn handle(
        &mut self,
        command: DepositCommand,
        services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), DepositError> {
        decide_into_sink(self, command, services, sink).await
    }

    fn apply(&mut self, event: DepositEvent) {
        match event {
            DepositEvent::DepositDetected {
                deposit_id,
                account_id,
                asset,
                amount,
                txid,
                log_index,
                from,
                to,
                block_number,
                at,
            } => {
                self.status = DepositStatus::Detected;
                self.transfer = Some(Transfer {
                    deposit_id,
                    account_id,
                    asset,
                    amount,
                    txid,
                    log_index,
                    from,
                    to,
                    block_number,
                    detected_at: at,
                });
            }
            DepositEvent::DepositConfirmed { block_number, .. } => {
                self.status = DepositStatus::Confirmed;
                self.confirmed_block = Some(block_number);
            }
            DepositEvent::DepositCredited { at, .. } => {
                self.status = DepositStatus::Credited;
                self.settled_at = Some(at);
            }
            DepositEvent::DepositRejected { reason, at, .. } => {
                self.status = DepositStatus::Rejected;
                self.rejection = Some(reason);
                self.settled_at = Some(at);
            }
        }
    }
}
