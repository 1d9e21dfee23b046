//! What happened to a deposit. Every event names the deposit, the account, the asset and the
//! amount, so the deposits view and the daily totals copy figures.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::command::DepositRejection;
use crate::domain::ids::{AccountId, DepositId, TxId};
use crate::domain::money::{Amount, Asset};
use crate::domain::TronAddress;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepositEvent {
    DepositDetected {
        deposit_id: DepositId,
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        txid: TxId,
        log_index: Option<u32>,
        from: TronAddress,
        to: TronAddress,
        block_number: u64,
        at: DateTime<Utc>,
    },
    DepositConfirmed {
        deposit_id: DepositId,
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        block_number: u64,
        at: DateTime<Utc>,
    },
    DepositCredited {
        deposit_id: DepositId,
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        at: DateTime<Utc>,
    },
    DepositRejected {
        deposit_id: DepositId,
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        reason: DepositRejection,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for DepositEvent {
    fn event_type(&self) -> String {
        match self {
            DepositEvent::DepositDetected { .. } => "DepositDetected",
            DepositEvent::DepositConfirmed { .. } => "DepositConfirmed",
            DepositEvent::DepositCredited { .. } => "DepositCredited",
            DepositEvent::DepositRejected { .. } => "DepositRejected",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
