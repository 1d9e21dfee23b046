//! The `Wallet` aggregate: one pool wallet that lends its staked TRX. It holds a reference to
//! its key (never the key), the stake last observed on chain, and the capacity reserved per
//! order. Free capacity = staked − Σ reserved (never below zero); a disabled wallet takes no
//! new reservations but can always release them.
//!
//! Its state is bounded by the orders it lends to now, not by its history: it holds the open
//! reservations and remembers only the last [`SETTLED_IDS_KEPT`] released orders (see
//! `domain::recent`), so a pool wallet loads as fast after a million orders as after a hundred.

mod command;
mod decide;
mod event;
mod key_ref;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use command::WalletCommand;
pub use event::WalletEvent;
pub use key_ref::{KeyRef, MAX_KEY_REF_LEN};

use super::decide::decide_into_sink;
mod error;
use super::ids::OrderId;
use super::recent::{RecentSet, SETTLED_IDS_KEPT};
use super::TronAddress;
pub use error::WalletError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    address: Option<TronAddress>,
    key_ref: Option<KeyRef>,
    disabled: bool,
    staked_sun: u64,
    delegatable_sun: u64,
    energy_limit: u64,
    observed_at: Option<DateTime<Utc>>,
    /// Sun held per order, from delegation request until reclaim or release.
    reservations: BTreeMap<OrderId, u64>,
    /// The last `SETTLED_IDS_KEPT` orders whose reservation was released: an order reserves on
    /// a wallet once (older ones are stopped by the order's own state machine).
    released: RecentSet<OrderId, SETTLED_IDS_KEPT>,
}

impl Wallet {
    pub fn address(&self) -> Option<TronAddress> {
        self.address
    }

    pub fn key_ref(&self) -> Option<&KeyRef> {
        self.key_ref.as_ref()
    }

    pub fn is_registered(&self) -> bool {
        self.address.is_some()
    }

    pub fn is_enabled(&self) -> bool {
        self.is_registered() && !self.disabled
    }

    pub fn staked_sun(&self) -> u64 {
        self.staked_sun
    }

    pub fn delegatable_sun(&self) -> u64 {
        self.delegatable_sun
    }

    pub fn energy_limit(&self) -> u64 {
        self.energy_limit
    }

    /// Sun reserved for orders, in total.
    pub fn reserved_sun(&self) -> u64 {
        self.reservations
            .values()
            .fold(0u64, |sum, sun| sum.saturating_add(*sun))
    }

    /// Sun that may still be reserved: staked − reserved, never below zero.
    pub fn free_sun(&self) -> u64 {
        self.staked_sun.saturating_sub(self.reserved_sun())
    }

    pub fn reservation(&self, order_id: &OrderId) -> Option<u64> {
        self.reservations.get(order_id).copied()
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = ();

    async fn handle(
        &mut self,
        command: WalletCommand,
        services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), WalletError> {
        decide_into_sink(self, command, services, sink).await
    }

    fn apply(&mut self, event: WalletEvent) {
        match event {
            WalletEvent::WalletRegistered {
                address, key_ref, ..
            } => {
                self.address = Some(address);
                self.key_ref = Some(key_ref);
            }
            WalletEvent::ResourcesObserved {
                staked_sun,
                delegatable_sun,
                energy_limit,
                at,
                ..
            } => {
                self.staked_sun = staked_sun;
                self.delegatable_sun = delegatable_sun;
                self.energy_limit = energy_limit;
                self.observed_at = Some(at);
            }
            WalletEvent::CapacityReserved { order_id, sun, .. } => {
                self.reservations.insert(order_id, sun);
            }
            WalletEvent::CapacityReleased { order_id, .. } => {
                self.reservations.remove(&order_id);
                self.released.record(order_id);
            }
            WalletEvent::WalletDisabled { .. } => self.disabled = true,
            WalletEvent::WalletEnabled { .. } => self.disabled = false,
        }
    }
}
