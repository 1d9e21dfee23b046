//! The order's money and timing flow: an order placed reserves its price on the account, and the
//! reservation pays the order (or the order is rejected); a cancelled or refunded order releases
//! the money; a reclaimed order is completed and its money captured; an exhausted or final
//! delegation failure refunds the order. It also schedules the unpaid timeout and the reclaim.
//! Choosing a wallet and talking to the chain is the TRON adapter's part.

use std::sync::Arc;

use crate::domain::account::{AccountCommand, AccountEvent};
use crate::domain::order::{OrderCommand, OrderEvent, RejectionReason};
use crate::domain::wallet::WalletCommand;
use crate::domain::{AccountError, OrderId};
use crate::error::Error;
use crate::log::{AnyEvent, TypedEvent};
use crate::process::cause::Cause;
use crate::process::runner::{Effects, Reactor};
use crate::process::scheduler::{ScheduledStep, RECLAIM, UNPAID_TIMEOUT};
use crate::process::Buses;

pub const NAME: &str = "order-flow";

/// Chain-task phases: a delegation to sign, broadcast and confirm; a reclaim likewise.
pub const DELEGATE: &str = "delegate";
pub const RECLAIM_PHASE: &str = "reclaim";

pub struct OrderFlow {
    buses: Arc<Buses>,
}

impl OrderFlow {
    pub fn new(buses: Arc<Buses>) -> Self {
        Self { buses }
    }
}

fn order_id(s: &str) -> Result<OrderId, Error> {
    OrderId::parse(s).map_err(|e| Error::corrupt("order id in the log", e))
}

impl Reactor for OrderFlow {
    fn name(&self) -> &'static str {
        NAME
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.buses.appended())
    }

    async fn react(&self, event: &TypedEvent, effects: &mut Effects) -> Result<(), Error> {
        let cause = Cause::new(NAME, event);
        match &event.event {
            AnyEvent::Order(e) => self.on_order(cause, e, effects).await,
            AnyEvent::Account(AccountEvent::FundsReserved { order_id, .. }) => {
                self.on_funds_reserved(cause, order_id).await
            }
            _ => Ok(()),
        }
    }
}

impl OrderFlow {
    async fn on_order(
        &self,
        cause: Cause<'_>,
        event: &OrderEvent,
        effects: &mut Effects,
    ) -> Result<(), Error> {
        let order = cause.aggregate_id();
        let correlation = cause.meta("correlation").correlation_id;
        match event {
            OrderEvent::OrderPlaced {
                account_id,
                quote,
                pay_by,
                ..
            } => {
                effects.schedule(ScheduledStep {
                    step: UNPAID_TIMEOUT.into(),
                    aggregate_id: order.into(),
                    due_at: *pay_by,
                    correlation_id: correlation,
                });
                let reserve = AccountCommand::ReserveFunds {
                    order_id: order_id(order)?,
                    asset: quote.asset,
                    amount: quote.price,
                };
                let outcome = self
                    .buses
                    .account
                    .execute(account_id.as_str(), reserve, cause.meta("reserve"))
                    .await?;
                if let Err(refusal) = outcome.result {
                    let reason = match refusal {
                        AccountError::InsufficientFunds { .. } => {
                            RejectionReason::InsufficientFunds
                        }
                        other => RejectionReason::Invalid(other.to_string()),
                    };
                    let reject = OrderCommand::RejectOrder {
                        reason,
                        at: cause.at(),
                    };
                    self.buses
                        .order
                        .execute(order, reject, cause.meta("reject"))
                        .await?;
                }
            }
            OrderEvent::OrderPaid { .. } | OrderEvent::OrderRejected { .. } => {
                effects.unschedule(UNPAID_TIMEOUT, order);
            }
            OrderEvent::OrderCancelled {
                account_id,
                release_funds,
                ..
            } => {
                effects.unschedule(UNPAID_TIMEOUT, order);
                if *release_funds {
                    self.release(cause, account_id.as_str(), "cancelled by the customer")
                        .await?;
                }
            }
            OrderEvent::DelegationRequested { wallet, .. } => {
                effects.open_chain_task(order, wallet.to_base58(), DELEGATE);
            }
            OrderEvent::ReclaimRequested { wallet, .. } => {
                effects.open_chain_task(order, wallet.to_base58(), RECLAIM_PHASE);
            }
            OrderEvent::OrderActivated { active_until, .. } => {
                effects.close_chain_task(order);
                effects.schedule(ScheduledStep {
                    step: RECLAIM.into(),
                    aggregate_id: order.into(),
                    due_at: *active_until,
                    correlation_id: correlation,
                });
            }
            OrderEvent::DelegationFailed {
                wallet,
                retryable,
                attempts_left,
                reason,
                ..
            } => {
                effects.close_chain_task(order);
                let free = WalletCommand::ReleaseCapacity {
                    order_id: order_id(order)?,
                };
                self.buses
                    .wallet
                    .execute(&wallet.to_base58(), free, cause.meta("release-capacity"))
                    .await?;
                if !*retryable || *attempts_left == 0 {
                    let refund = OrderCommand::RefundOrder {
                        reason: format!("delegation failed: {reason}"),
                        at: cause.at(),
                    };
                    self.buses
                        .order
                        .execute(order, refund, cause.meta("refund"))
                        .await?;
                }
            }
            OrderEvent::OrderRefunded {
                account_id, reason, ..
            } => {
                effects.close_chain_task(order);
                self.release(cause, account_id.as_str(), reason).await?;
            }
            OrderEvent::Reclaimed { wallet, .. } => {
                effects.unschedule(RECLAIM, order);
                effects.close_chain_task(order);
                let free = WalletCommand::ReleaseCapacity {
                    order_id: order_id(order)?,
                };
                self.buses
                    .wallet
                    .execute(&wallet.to_base58(), free, cause.meta("release-capacity"))
                    .await?;
                let complete = OrderCommand::CompleteOrder { at: cause.at() };
                self.buses
                    .order
                    .execute(order, complete, cause.meta("complete"))
                    .await?;
            }
            OrderEvent::OrderCompleted { account_id, .. } => {
                let capture = AccountCommand::CaptureFunds {
                    order_id: order_id(order)?,
                };
                self.buses
                    .account
                    .execute(account_id.as_str(), capture, cause.meta("capture"))
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The account reserved an order's price: the order is paid — unless it was cancelled or
    /// timed out in the meantime, in which case the money goes back.
    async fn on_funds_reserved(&self, cause: Cause<'_>, order: &OrderId) -> Result<(), Error> {
        let pay = OrderCommand::MarkPaid { at: cause.at() };
        let outcome = self
            .buses
            .order
            .execute(order.as_str(), pay, cause.meta("pay"))
            .await?;
        if let Err(refusal) = outcome.result {
            tracing::info!(order_id = %order, refusal = %refusal, "order closed before payment; releasing");
            let release = AccountCommand::ReleaseFunds {
                order_id: order.clone(),
                reason: "order closed before payment".into(),
            };
            self.buses
                .account
                .execute(cause.aggregate_id(), release, cause.meta("release"))
                .await?;
        }
        Ok(())
    }

    async fn release(&self, cause: Cause<'_>, account: &str, reason: &str) -> Result<(), Error> {
        let release = AccountCommand::ReleaseFunds {
            order_id: order_id(cause.aggregate_id())?,
            reason: reason.to_string(),
        };
        let outcome = self
            .buses
            .account
            .execute(account, release, cause.meta("release"))
            .await?;
        if let Err(refusal) = outcome.result {
            tracing::warn!(order_id = %cause.aggregate_id(), account_id = account, refusal = %refusal,
                "release refused");
        }
        Ok(())
    }
}
