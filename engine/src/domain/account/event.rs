//! What happened to a customer account. Every money event carries the asset, the amount and the
//! balance after it (available and reserved), so the balance views copy figures, never compute.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{AccountId, DepositId, OrderId};
use crate::domain::money::{Amount, Asset};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountOpened {
        account_id: AccountId,
        opened_at: DateTime<Utc>,
    },
    FundsCredited {
        deposit_id: DepositId,
        asset: Asset,
        amount: Amount,
        available_after: u64,
        reserved_after: u64,
    },
    FundsReserved {
        order_id: OrderId,
        asset: Asset,
        amount: Amount,
        available_after: u64,
        reserved_after: u64,
    },
    FundsCaptured {
        order_id: OrderId,
        asset: Asset,
        amount: Amount,
        available_after: u64,
        reserved_after: u64,
    },
    FundsReleased {
        order_id: OrderId,
        asset: Asset,
        amount: Amount,
        reason: String,
        available_after: u64,
        reserved_after: u64,
    },
    BalanceAdjusted {
        asset: Asset,
        delta: i64,
        reason: String,
        actor: String,
        available_after: u64,
        reserved_after: u64,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::FundsCredited { .. } => "FundsCredited",
            AccountEvent::FundsReserved { .. } => "FundsReserved",
            AccountEvent::FundsCaptured { .. } => "FundsCaptured",
            AccountEvent::FundsReleased { .. } => "FundsReleased",
            AccountEvent::BalanceAdjusted { .. } => "BalanceAdjusted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
