//! The `PriceList` aggregate: the unit prices an admin sets per asset and duration tier. There
//! is one list (id [`PRICE_LIST_ID`]); what it holds overrides the configured price table (the
//! prices file, or the sample prices) tier by tier, so an operator can change a price without a
//! restart and every change is an event with its actor and reason.

mod command;
mod decide;
mod event;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use command::PriceListCommand;
pub use event::PriceListEvent;

use super::decide::decide_into_sink;
mod error;
use super::money::Asset;
use super::pricing::{DurationTier, PriceTable};
pub use error::PriceListError;

/// The id of the one price list.
pub const PRICE_LIST_ID: &str = "default";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceList {
    /// Unit prices set by an admin (smallest units of the asset per energy per day).
    prices: BTreeMap<Asset, BTreeMap<DurationTier, u64>>,
}

impl PriceList {
    /// The unit price an admin set for `tier` in `asset`, if any.
    pub fn unit_price(&self, asset: Asset, tier: DurationTier) -> Option<u64> {
        self.prices.get(&asset)?.get(&tier).copied()
    }

    /// Every price an admin set, by asset and tier.
    pub fn prices(&self) -> impl Iterator<Item = (Asset, DurationTier, u64)> + '_ {
        self.prices
            .iter()
            .flat_map(|(asset, tiers)| tiers.iter().map(|(tier, p)| (*asset, *tier, *p)))
    }

    /// `base` with this list's prices in place of the configured ones.
    pub fn over(&self, base: &PriceTable) -> PriceTable {
        let mut table = base.clone();
        for (asset, tier, unit_price) in self.prices() {
            // Every price in the list passed this same check when it was set.
            let _ = table.set_price(asset, tier, unit_price);
        }
        table
    }
}

impl Aggregate for PriceList {
    const TYPE: &'static str = "price_list";
    type Command = PriceListCommand;
    type Event = PriceListEvent;
    type Error = PriceListError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PriceListCommand,
        services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PriceListError> {
        decide_into_sink(self, command, services, sink).await
    }

    fn apply(&mut self, event: PriceListEvent) {
        match event {
            PriceListEvent::TierPriceSet {
                asset,
                tier,
                unit_price,
                ..
            } => {
                self.prices
                    .entry(asset)
                    .or_default()
                    .insert(tier, unit_price);
            }
        }
    }
}
