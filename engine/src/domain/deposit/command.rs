//! What can be asked of a deposit: record it when the scanner sees it, confirm it once its block
//! is solidified, mark it credited once the account has it, or reject it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ids::{AccountId, TxId};
use crate::domain::money::{Amount, Asset};
use crate::domain::{DomainCommand, TronAddress};

/// Why a deposit will never be credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepositRejection {
    /// The transaction was included but failed (e.g. a reverted TRC20 transfer).
    FailedOnChain,
    /// The transaction disappeared (its block was reorganised away and it never came back).
    Vanished,
    /// Smaller than the least amount we credit.
    BelowMinimum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepositCommand {
    DetectDeposit {
        account_id: AccountId,
        asset: Asset,
        amount: Amount,
        txid: TxId,
        /// The `Transfer` log's index for a TRC20 (USDT) deposit; none for TRX.
        log_index: Option<u32>,
        from: TronAddress,
        /// Our deposit address the customer paid to.
        to: TronAddress,
        block_number: u64,
        at: DateTime<Utc>,
    },
    /// The block holding the deposit is solidified (irreversible).
    ConfirmDeposit {
        block_number: u64,
        at: DateTime<Utc>,
    },
    /// The account credited the deposit.
    MarkCredited { at: DateTime<Utc> },
    RejectDeposit {
        reason: DepositRejection,
        at: DateTime<Utc>,
    },
}

impl DomainCommand for DepositCommand {
    /// A deposit's aggregate id is `<txid>` or `<txid>:<log_index>` (`DepositId`).
    fn names_aggregate(&self) -> Option<String> {
        match self {
            DepositCommand::DetectDeposit {
                txid, log_index, ..
            } => Some(crate::domain::DepositId::new(txid.clone(), *log_index).to_string()),
            _ => None,
        }
    }

    fn command_type(&self) -> &'static str {
        match self {
            DepositCommand::DetectDeposit { .. } => "DetectDeposit",
            DepositCommand::ConfirmDeposit { .. } => "ConfirmDeposit",
            DepositCommand::MarkCredited { .. } => "MarkCredited",
            DepositCommand::RejectDeposit { .. } => "RejectDeposit",
        }
    }
}
