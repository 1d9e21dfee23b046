//! The `Account` aggregate: a customer's prepaid balances, one per asset. It guards that no
//! balance goes below zero, that a deposit is credited once, and that an order is reserved once
//! and then either captured (delivered) or released (refunded), exactly once.
//!
//! Its state is bounded by what is in flight, not by its history: it holds the reservations
//! still open, and remembers settled orders and credited deposits only for the last
//! [`SETTLED_IDS_KEPT`] of each (see `domain::recent`). Within that window a repeat is refused
//! by name (`order_already_reserved`, `reservation_settled`, `deposit_already_credited`); beyond
//! it, the Order and Deposit aggregates and the command log stop repeats
//! (docs/adr/0007-bounded-aggregate-state.md).

mod balance;
mod command;
mod decide;
mod event;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use balance::Balance;
pub use command::AccountCommand;
pub use event::AccountEvent;

use super::decide::decide_into_sink;
mod error;
use super::ids::{AccountId, DepositId, OrderId};
use super::money::{Amount, Asset};
use super::recent::{RecentMap, RecentSet, SETTLED_IDS_KEPT};
pub use error::{AccountError, Settlement};

/// Funds held for one order, from `FundsReserved` until they are captured or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub asset: Asset,
    pub amount: Amount,
}

/// A customer account. Not open until `AccountOpened`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    id: Option<AccountId>,
    opened_at: Option<DateTime<Utc>>,
    balances: BTreeMap<Asset, Balance>,
    /// The reservations still held, by order: as many as the account's orders in flight.
    reservations: BTreeMap<OrderId, Reservation>,
    /// How each of the most recently settled orders was settled (the last `SETTLED_IDS_KEPT`).
    settled: RecentMap<OrderId, Settlement, SETTLED_IDS_KEPT>,
    /// The most recently credited deposits (the last `SETTLED_IDS_KEPT`).
    credited_deposits: RecentSet<DepositId, SETTLED_IDS_KEPT>,
}

impl Account {
    pub fn id(&self) -> Option<&AccountId> {
        self.id.as_ref()
    }

    pub fn is_open(&self) -> bool {
        self.id.is_some()
    }

    pub fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.opened_at
    }

    /// The balance in `asset` (all zero if never used).
    pub fn balance(&self, asset: Asset) -> Balance {
        self.balances.get(&asset).copied().unwrap_or_default()
    }

    /// The order's reservation, while it is held.
    pub fn reservation(&self, order_id: &OrderId) -> Option<&Reservation> {
        self.reservations.get(order_id)
    }

    /// How the order's reservation was settled, if it is one of the last `SETTLED_IDS_KEPT`
    /// settled.
    pub fn settlement(&self, order_id: &OrderId) -> Option<Settlement> {
        self.settled.get(order_id).copied()
    }

    /// Whether the deposit is one of the last `SETTLED_IDS_KEPT` credited.
    pub fn has_credited(&self, deposit_id: &DepositId) -> bool {
        self.credited_deposits.contains(deposit_id)
    }

    fn set_balance(
        &mut self,
        asset: Asset,
        available: u64,
        reserved: u64,
        totals: impl FnOnce(&mut Balance),
    ) {
        let balance = self.balances.entry(asset).or_default();
        balance.available = available;
        balance.reserved = reserved;
        totals(balance);
    }

    fn settle(&mut self, order_id: OrderId, settlement: Settlement) {
        self.reservations.remove(&order_id);
        self.settled.record(order_id, settlement);
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccountCommand,
        services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        decide_into_sink(self, command, services, sink).await
    }

    /// Balances are taken from the event (`available_after`, `reserved_after`); the running
    /// totals are added up here. Events are facts: applying never fails.
    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountOpened {
                account_id,
                opened_at,
            } => {
                self.id = Some(account_id);
                self.opened_at = Some(opened_at);
            }
            AccountEvent::FundsCredited {
                deposit_id,
                asset,
                amount,
                available_after,
                reserved_after,
            } => {
                self.credited_deposits.record(deposit_id);
                self.set_balance(asset, available_after, reserved_after, |b| {
                    b.deposited = b.deposited.saturating_add(amount.units());
                });
            }
            AccountEvent::FundsReserved {
                order_id,
                asset,
                amount,
                available_after,
                reserved_after,
            } => {
                self.reservations
                    .insert(order_id, Reservation { asset, amount });
                self.set_balance(asset, available_after, reserved_after, |_| {});
            }
            AccountEvent::FundsCaptured {
                order_id,
                asset,
                amount,
                available_after,
                reserved_after,
            } => {
                self.settle(order_id, Settlement::Captured);
                self.set_balance(asset, available_after, reserved_after, |b| {
                    b.spent = b.spent.saturating_add(amount.units());
                });
            }
            AccountEvent::FundsReleased {
                order_id,
                asset,
                amount,
                available_after,
                reserved_after,
                ..
            } => {
                self.settle(order_id, Settlement::Released);
                self.set_balance(asset, available_after, reserved_after, |b| {
                    b.refunded = b.refunded.saturating_add(amount.units());
                });
            }
            AccountEvent::BalanceAdjusted {
                asset,
                delta,
                available_after,
                reserved_after,
                ..
            } => {
                self.set_balance(asset, available_after, reserved_after, |b| {
                    if delta >= 0 {
                        b.adjusted_in = b.adjusted_in.saturating_add(delta.unsigned_abs());
                    } else {
                        b.adjusted_out = b.adjusted_out.saturating_add(delta.unsigned_abs());
                    }
                });
            }
        }
    }
}
