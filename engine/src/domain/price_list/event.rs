//! What happened to the price list. A price change carries the price it replaced (`None`: the
//! configured one applied), so the history reads on its own.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::domain::money::Asset;
use crate::domain::pricing::DurationTier;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriceListEvent {
    TierPriceSet {
        asset: Asset,
        tier: DurationTier,
        unit_price: u64,
        /// The price an admin had set before, if any.
        previous: Option<u64>,
        actor: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PriceListEvent {
    fn event_type(&self) -> String {
        match self {
            PriceListEvent::TierPriceSet { .. } => "TierPriceSet",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
