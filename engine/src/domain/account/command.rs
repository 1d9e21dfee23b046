//! What can be asked of a customer account: open it, credit a confirmed deposit, reserve funds
//! for an order, capture or release that reservation, and (admin only) adjust a balance.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ids::{AccountId, DepositId, OrderId};
use crate::domain::money::{Amount, Asset};
use crate::domain::DomainCommand;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountCommand {
    /// Opens the account of a new customer.
    OpenAccount {
        account_id: AccountId,
        at: DateTime<Utc>,
    },
    /// Credits a confirmed deposit to the available balance, once per deposit id.
    CreditDeposit {
        deposit_id: DepositId,
        asset: Asset,
        amount: Amount,
    },
    /// Moves `amount` from available to reserved for an order, once per order.
    ReserveFunds {
        order_id: OrderId,
        asset: Asset,
        amount: Amount,
    },
    /// Spends an order's reservation: the order was delivered.
    CaptureFunds { order_id: OrderId },
    /// Returns an order's reservation to the available balance (a refund).
    ReleaseFunds { order_id: OrderId, reason: String },
    /// A manual correction by an admin, always with a reason; never below zero.
    AdjustBalance {
        asset: Asset,
        delta: i64,
        reason: String,
        actor: String,
    },
}

impl DomainCommand for AccountCommand {
    fn names_aggregate(&self) -> Option<String> {
        match self {
            AccountCommand::OpenAccount { account_id, .. } => Some(account_id.to_string()),
            _ => None,
        }
    }

    fn command_type(&self) -> &'static str {
        match self {
            AccountCommand::OpenAccount { .. } => "OpenAccount",
            AccountCommand::CreditDeposit { .. } => "CreditDeposit",
            AccountCommand::ReserveFunds { .. } => "ReserveFunds",
            AccountCommand::CaptureFunds { .. } => "CaptureFunds",
            AccountCommand::ReleaseFunds { .. } => "ReleaseFunds",
            AccountCommand::AdjustBalance { .. } => "AdjustBalance",
        }
    }
}
