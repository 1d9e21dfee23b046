//! The order's decisions before and after delivery: placing (quote, guards), payment,
//! rejection, cancellation, refund and completion. Delivery on the chain is in `chain.rs`.

use crate::domain::field::FieldError;
use crate::domain::transition::TransitionError;
use chrono::{DateTime, TimeDelta, Utc};

use super::error::OrderError;
use super::{
    CancelledBy, Order, OrderCommand, OrderEvent, OrderPolicy, OrderStatus, Placement,
    RejectionReason,
};
use crate::domain::ids::AccountId;
use crate::domain::money::Asset;
use crate::domain::pricing::DurationTier;
use crate::domain::text::require_reason;
use crate::domain::{DomainAggregate, DomainCommand, TronAddress};

impl DomainAggregate for Order {
    const STATE_SCHEMA: &'static str = "order/1";

    fn decide(
        &self,
        command: OrderCommand,
        policy: &OrderPolicy,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderCommand::*;
        let name = command.command_type();
        match command {
            PlaceOrder {
                account_id,
                receiver,
                energy,
                duration,
                asset,
                max_price,
                at,
            } => {
                let order = NewOrder {
                    account_id,
                    receiver,
                    energy,
                    duration,
                    asset,
                    max_price,
                    at,
                };
                self.place(order, policy).map(|e| vec![e])
            }
            MarkPaid { at } => {
                let p = self.expect(name, &[OrderStatus::Placed])?;
                Ok(vec![OrderEvent::OrderPaid {
                    account_id: p.account_id.clone(),
                    asset: p.quote.asset,
                    amount: p.quote.price,
                    paid_at: at,
                }])
            }
            RejectOrder { reason, at } => {
                let p = self.expect(name, &[OrderStatus::Placed])?;
                if let RejectionReason::Invalid(text) = &reason {
                    require_reason(text)?;
                }
                Ok(vec![OrderEvent::OrderRejected {
                    account_id: p.account_id.clone(),
                    reason,
                    at,
                }])
            }
            CancelOrder { by, at } => self.cancel(name, by, at).map(|e| vec![e]),
            RefundOrder { reason, at } => {
                let p = self.expect(name, &[OrderStatus::Paid, OrderStatus::DelegationFailed])?;
                require_reason(&reason)?;
                Ok(vec![OrderEvent::OrderRefunded {
                    account_id: p.account_id.clone(),
                    asset: p.quote.asset,
                    amount: p.quote.price,
                    reason,
                    at,
                }])
            }
            CompleteOrder { at } => {
                let p = self.expect(name, &[OrderStatus::Reclaimed])?;
                Ok(vec![OrderEvent::OrderCompleted {
                    account_id: p.account_id.clone(),
                    asset: p.quote.asset,
                    amount: p.quote.price,
                    energy: p.energy,
                    duration: p.duration,
                    at,
                }])
            }
            chain_command => self.decide_on_chain(chain_command, policy),
        }
    }
}

/// The fields of `PlaceOrder`.
pub(super) struct NewOrder {
    account_id: AccountId,
    receiver: TronAddress,
    energy: u64,
    duration: DurationTier,
    asset: Asset,
    max_price: Option<u64>,
    at: DateTime<Utc>,
}

impl Order {
    /// The placement, if the order is in one of `allowed`; otherwise `InvalidTransition`.
    pub(super) fn expect(
        &self,
        command: &str,
        allowed: &[OrderStatus],
    ) -> Result<&Placement, OrderError> {
        match &self.placement {
            Some(p) if allowed.contains(&self.status) => Ok(p),
            _ => Err(TransitionError::new(self.status.as_str(), command).into()),
        }
    }

    fn place(&self, new: NewOrder, policy: &OrderPolicy) -> Result<OrderEvent, OrderError> {
        if self.status != OrderStatus::New {
            return Err(OrderError::OrderAlreadyPlaced);
        }
        let quote = policy.prices.quote(new.asset, new.duration, new.energy)?;
        if policy.pool_wallets.contains(&new.receiver) {
            return Err(OrderError::ReceiverIsPoolWallet {
                receiver: new.receiver,
            });
        }
        if let Some(max_price) = new.max_price {
            if quote.price.units() > max_price {
                return Err(OrderError::PriceAboveLimit { quote, max_price });
            }
        }
        let pay_by = later(new.at, policy.unpaid_timeout, "pay_by")?;
        Ok(OrderEvent::OrderPlaced {
            account_id: new.account_id,
            receiver: new.receiver,
            energy: new.energy,
            duration: new.duration,
            quote,
            pay_by,
            placed_at: new.at,
        })
    }

    fn cancel(
        &self,
        name: &str,
        by: CancelledBy,
        at: DateTime<Utc>,
    ) -> Result<OrderEvent, OrderError> {
        let p = match by {
            CancelledBy::Customer => {
                self.expect(name, &[OrderStatus::Placed, OrderStatus::Paid])?
            }
            CancelledBy::UnpaidTimeout => {
                let p = self.expect(name, &[OrderStatus::Placed])?;
                if at < p.pay_by {
                    return Err(OrderError::TooEarly {
                        at,
                        not_before: p.pay_by,
                    });
                }
                p
            }
        };
        Ok(OrderEvent::OrderCancelled {
            account_id: p.account_id.clone(),
            by,
            release_funds: self.status == OrderStatus::Paid,
            asset: p.quote.asset,
            amount: p.quote.price,
            at,
        })
    }
}

/// `at + span`, or `TimeOutOfRange` naming `field`.
pub(super) fn later(
    at: DateTime<Utc>,
    span: TimeDelta,
    field: &str,
) -> Result<DateTime<Utc>, OrderError> {
    at.checked_add_signed(span).ok_or_else(|| {
        FieldError::TimeOutOfRange {
            field: field.to_string(),
        }
        .into()
    })
}
