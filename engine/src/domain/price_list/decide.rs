//! The price list's decisions.

use super::error::PriceListError;
use super::{PriceList, PriceListCommand, PriceListEvent};
use crate::domain::pricing::check_unit_price;
use crate::domain::text::{require_actor, require_reason};
use crate::domain::DomainAggregate;

impl DomainAggregate for PriceList {
    const STATE_SCHEMA: &'static str = "price_list/1";

    fn decide(
        &self,
        command: PriceListCommand,
        _services: &(),
    ) -> Result<Vec<PriceListEvent>, PriceListError> {
        match command {
            PriceListCommand::SetTierPrice {
                asset,
                tier,
                unit_price,
                actor,
                reason,
                at,
            } => {
                check_unit_price(asset, tier, unit_price)?;
                require_actor(&actor)?;
                require_reason(&reason)?;
                Ok(vec![PriceListEvent::TierPriceSet {
                    asset,
                    tier,
                    unit_price,
                    previous: self.unit_price(asset, tier),
                    actor,
                    reason,
                    at,
                }])
            }
        }
    }
}
