//! What can be asked of the price list: set the unit price of one tier in one asset.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::money::Asset;
use crate::domain::pricing::DurationTier;
use crate::domain::DomainCommand;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriceListCommand {
    /// Sells `tier` in `asset` at `unit_price` (smallest units per energy per day) from now on.
    SetTierPrice {
        asset: Asset,
        tier: DurationTier,
        unit_price: u64,
        actor: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl DomainCommand for PriceListCommand {
    fn command_type(&self) -> &'static str {
        match self {
            PriceListCommand::SetTierPrice { .. } => "SetTierPrice",
        }
    }
}
