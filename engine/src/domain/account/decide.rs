//! The account's decisions: which events a command causes, or why it is refused.

use super::error::AccountError;
use super::{Account, AccountCommand, AccountEvent};
use crate::domain::field::FieldError;
use crate::domain::ids::OrderId;
use crate::domain::text::{require_actor, require_reason};
use crate::domain::DomainAggregate;

impl DomainAggregate for Account {
    /// `account/2`: settled orders and credited deposits kept in bounded windows.
    const STATE_SCHEMA: &'static str = "account/2";

    fn decide(
        &self,
        command: AccountCommand,
        _services: &(),
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand::*;
        let event = match command {
            OpenAccount { account_id, at } => {
                if self.is_open() {
                    return Err(AccountError::AccountAlreadyOpen);
                }
                AccountEvent::AccountOpened {
                    account_id,
                    opened_at: at,
                }
            }
            _ if !self.is_open() => return Err(AccountError::AccountNotOpen),
            CreditDeposit {
                deposit_id,
                asset,
                amount,
            } => {
                if self.has_credited(&deposit_id) {
                    return Err(AccountError::DepositAlreadyCredited { deposit_id });
                }
                let after = self.balance(asset).credit(asset, amount.units())?;
                AccountEvent::FundsCredited {
                    deposit_id,
                    asset,
                    amount,
                    available_after: after.available,
                    reserved_after: after.reserved,
                }
            }
            ReserveFunds {
                order_id,
                asset,
                amount,
            } => {
                if self.reservations.contains_key(&order_id) || self.settled.contains(&order_id) {
                    return Err(AccountError::OrderAlreadyReserved { order_id });
                }
                let after = self.balance(asset).reserve(asset, amount.units())?;
                AccountEvent::FundsReserved {
                    order_id,
                    asset,
                    amount,
                    available_after: after.available,
                    reserved_after: after.reserved,
                }
            }
            CaptureFunds { order_id } => {
                let (asset, amount) = self.held(&order_id)?;
                let after = self.balance(asset).capture(asset, amount.units())?;
                AccountEvent::FundsCaptured {
                    order_id,
                    asset,
                    amount,
                    available_after: after.available,
                    reserved_after: after.reserved,
                }
            }
            ReleaseFunds { order_id, reason } => {
                require_reason(&reason)?;
                let (asset, amount) = self.held(&order_id)?;
                let after = self.balance(asset).release(asset, amount.units())?;
                AccountEvent::FundsReleased {
                    order_id,
                    asset,
                    amount,
                    reason,
                    available_after: after.available,
                    reserved_after: after.reserved,
                }
            }
            AdjustBalance {
                asset,
                delta,
                reason,
                actor,
            } => {
                if delta == 0 {
                    return Err(FieldError::zero("delta").into());
                }
                require_reason(&reason)?;
                require_actor(&actor)?;
                let after = self.balance(asset).adjust(asset, delta)?;
                AccountEvent::BalanceAdjusted {
                    asset,
                    delta,
                    reason,
                    actor,
                    available_after: after.available,
                    reserved_after: after.reserved,
                }
            }
        };
        Ok(vec![event])
    }
}

impl Account {
    /// The asset and amount of an order's reservation that is still held.
    fn held(
        &self,
        order_id: &OrderId,
    ) -> Result<(crate::domain::Asset, crate::domain::Amount), AccountError> {
        if let Some(r) = self.reservation(order_id) {
            return Ok((r.asset, r.amount));
        }
        Err(match self.settlement(order_id) {
            Some(settlement) => AccountError::ReservationSettled {
                order_id: order_id.clone(),
                settlement,
            },
            None => AccountError::NoReservation {
                order_id: order_id.clone(),
            },
        })
    }
}
