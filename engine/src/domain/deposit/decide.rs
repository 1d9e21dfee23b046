//! The deposit's decisions.

use super::error::DepositError;
use super::{Deposit, DepositCommand, DepositEvent, DepositStatus, Transfer};
use crate::domain::ids::DepositId;
use crate::domain::money::Asset;
use crate::domain::transition::TransitionError;
use crate::domain::{DomainAggregate, DomainCommand};

impl DomainAggregate for Deposit {
    const STATE_SCHEMA: &'static str = "deposit/1";

    fn decide(
        &self,
        command: DepositCommand,
        _services: &(),
    ) -> Result<Vec<DepositEvent>, DepositError> {
        use DepositCommand::*;
        use DepositStatus as S;
        let name = command.command_type();
        let event = match command {
            DetectDeposit {
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
                if let Some(t) = &self.transfer {
                    return Err(DepositError::DepositAlreadyDetected {
                        deposit_id: t.deposit_id.clone(),
                    });
                }
                // TRC20 transfers are told apart by their log; a TRX transfer has none.
                if (asset == Asset::Usdt) != log_index.is_some() {
                    return Err(DepositError::LogIndexMismatch { asset, log_index });
                }
                let deposit_id = DepositId::new(txid.clone(), log_index);
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
                }
            }
            ConfirmDeposit { block_number, at } => {
                let t = self.expect(name, &[S::Detected])?;
                DepositEvent::DepositConfirmed {
                    deposit_id: t.deposit_id.clone(),
                    account_id: t.account_id.clone(),
                    asset: t.asset,
                    amount: t.amount,
                    block_number,
                    at,
                }
            }
            MarkCredited { at } => {
                let t = self.expect(name, &[S::Confirmed])?;
                DepositEvent::DepositCredited {
                    deposit_id: t.deposit_id.clone(),
                    account_id: t.account_id.clone(),
                    asset: t.asset,
                    amount: t.amount,
                    at,
                }
            }
            RejectDeposit { reason, at } => {
                let t = self.expect(name, &[S::Detected, S::Confirmed])?;
                DepositEvent::DepositRejected {
                    deposit_id: t.deposit_id.clone(),
                    account_id: t.account_id.clone(),
                    asset: t.asset,
                    amount: t.amount,
                    reason,
                    at,
                }
            }
        };
        Ok(vec![event])
    }
}

impl Deposit {
    fn expect(&self, command: &str, allowed: &[DepositStatus]) -> Result<&Transfer, DepositError> {
        match &self.transfer {
            Some(t) if allowed.contains(&self.status) => Ok(t),
            _ => Err(TransitionError::new(self.status.as_str(), command).into()),
        }
    }
}
