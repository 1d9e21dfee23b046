//! Pricing: the price table and quotes (the tiers themselves are in `duration`). A unit price is in the
//! asset's smallest unit (sun, or 10^-6 USDT) per unit of energy per day; a tier has its own unit
//! price per asset, so short rentals can cost more per day. A quote is
//! `ceil(energy × unit_price × hours / 24)`, in integers (u128), never below the exact price.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::duration::{DurationError, DurationTier};
use super::field::FieldError;
use super::money::{Amount, Asset, MAX_AMOUNT};

/// Why there is no quote: the order's size, asset or tier is not on offer, or its price does not
/// fit an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum QuoteError {
    #[error("{energy} energy is below the minimum order of {min}")]
    EnergyBelowMinimum { energy: u64, min: u64 },
    #[error("{energy} energy is above the maximum order of {max}")]
    EnergyAboveMaximum { energy: u64, max: u64 },
    #[error("{asset} is not accepted")]
    AssetNotAccepted { asset: Asset },
    #[error("the price of {energy} energy for {duration} at {unit_price} is too large")]
    PriceOverflow {
        energy: u64,
        unit_price: u64,
        duration: DurationTier,
    },
    /// No energy asked for (`zero_quantity` of `energy`).
    #[error(transparent)]
    #[serde(untagged)]
    Field(FieldError),
    /// An accepted asset with no price for the tier.
    #[error(transparent)]
    #[serde(untagged)]
    Duration(DurationError),
}

impl QuoteError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            QuoteError::EnergyBelowMinimum { .. } => "energy_below_minimum",
            QuoteError::EnergyAboveMaximum { .. } => "energy_above_maximum",
            QuoteError::AssetNotAccepted { .. } => "asset_not_accepted",
            QuoteError::PriceOverflow { .. } => "price_overflow",
            QuoteError::Field(e) => e.code(),
            QuoteError::Duration(e) => e.code(),
        }
    }
}

/// A price table that cannot be: empty energy bounds, or a unit price of 0 or above
/// [`MAX_AMOUNT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PriceTableError {
    #[error("invalid price table: {problem}")]
    InvalidPriceTable { problem: String },
}

impl PriceTableError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            PriceTableError::InvalidPriceTable { .. } => "invalid_price_table",
        }
    }

    fn new(problem: String) -> Self {
        PriceTableError::InvalidPriceTable { problem }
    }
}

/// What a customer is asked to pay, fixed on the order when it is placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub energy: u64,
    pub duration: DurationTier,
    pub asset: Asset,
    /// Smallest units of `asset` per energy per day, from the price table at the time.
    pub unit_price: u64,
    #[serde(deserialize_with = "amount_from_u64")]
    pub price: Amount,
}

/// Reads an [`Amount`] through `u64`, so a quote also deserialises where serde buffers its input
/// (inside an internally tagged refusal such as `OrderError`), which cannot hold the i128 that
/// `Amount` reads.
fn amount_from_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
    let units = u64::deserialize(d)?;
    Amount::new(units).map_err(serde::de::Error::custom)
}

/// `ceil(energy × unit_price × hours / 24)`, or `PriceOverflow` if that exceeds [`MAX_AMOUNT`]
/// (`zero_quantity` if the energy or the unit price is 0).
pub fn price_for(
    energy: u64,
    unit_price: u64,
    duration: DurationTier,
) -> Result<Amount, QuoteError> {
    for (field, value) in [("energy", energy), ("unit_price", unit_price)] {
        if value == 0 {
            return Err(QuoteError::Field(FieldError::zero(field)));
        }
    }
    let overflow = || QuoteError::PriceOverflow {
        energy,
        unit_price,
        duration,
    };
    let numerator = u128::from(energy)
        .checked_mul(u128::from(unit_price))
        .and_then(|n| n.checked_mul(u128::from(duration.hours())))
        .ok_or_else(overflow)?;
    let price = numerator.div_ceil(24);
    if price > u128::from(MAX_AMOUNT) {
        return Err(overflow());
    }
    let price = u64::try_from(price).map_err(|_| overflow())?;
    Amount::new(price).map_err(|_| overflow())
}

/// A unit price must be at least 1 and at most [`MAX_AMOUNT`] smallest units.
pub(crate) fn check_unit_price(
    asset: Asset,
    tier: DurationTier,
    unit_price: u64,
) -> Result<(), PriceTableError> {
    if unit_price == 0 || unit_price > MAX_AMOUNT {
        return Err(PriceTableError::new(format!(
            "unit price {unit_price} for {asset} {tier} must be 1..={MAX_AMOUNT}"
        )));
    }
    Ok(())
}

/// The prices on offer: order size bounds and a unit price per (asset, tier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PriceTableSpec")]
pub struct PriceTable {
    min_energy: u64,
    max_energy: u64,
    prices: BTreeMap<Asset, BTreeMap<DurationTier, u64>>,
}

/// The unchecked shape of a price table, as read from configuration.
#[derive(Deserialize)]
struct PriceTableSpec {
    min_energy: u64,
    max_energy: u64,
    #[serde(default)]
    prices: BTreeMap<Asset, BTreeMap<DurationTier, u64>>,
}

impl TryFrom<PriceTableSpec> for PriceTable {
    type Error = PriceTableError;
    fn try_from(spec: PriceTableSpec) -> Result<Self, Self::Error> {
        let mut table = PriceTable::new(spec.min_energy, spec.max_energy)?;
        for (asset, tiers) in spec.prices {
            for (tier, unit_price) in tiers {
                table = table.with_price(asset, tier, unit_price)?;
            }
        }
        Ok(table)
    }
}

/// Bounds that suit the market (one USDT transfer needs 65,000 energy); no prices, so nothing
/// is sold until an operator sets them.
impl Default for PriceTable {
    fn default() -> Self {
        PriceTable {
            min_energy: 32_000,
            max_energy: 10_000_000,
            prices: BTreeMap::new(),
        }
    }
}

impl PriceTable {
    /// A table selling between `min_energy` and `max_energy` (inclusive), with no prices yet.
    pub fn new(min_energy: u64, max_energy: u64) -> Result<Self, PriceTableError> {
        if min_energy == 0 || min_energy > max_energy {
            return Err(PriceTableError::new(format!(
                "energy bounds {min_energy}..={max_energy} are empty or start at 0"
            )));
        }
        Ok(PriceTable {
            min_energy,
            max_energy,
            prices: BTreeMap::new(),
        })
    }

    /// Sets the unit price of `tier` in `asset` (smallest units per energy per day, > 0).
    pub fn with_price(
        mut self,
        asset: Asset,
        tier: DurationTier,
        unit_price: u64,
    ) -> Result<Self, PriceTableError> {
        self.set_price(asset, tier, unit_price)?;
        Ok(self)
    }

    /// Sets the unit price of `tier` in `asset` in place (checked as in [`Self::with_price`]).
    pub fn set_price(
        &mut self,
        asset: Asset,
        tier: DurationTier,
        unit_price: u64,
    ) -> Result<(), PriceTableError> {
        check_unit_price(asset, tier, unit_price)?;
        self.prices
            .entry(asset)
            .or_default()
            .insert(tier, unit_price);
        Ok(())
    }

    /// Demonstration prices near today's market (about 90 sun per energy for one hour, 100 for
    /// a day, cheaper per day for longer rentals; USDT at about 0.30 per TRX).
    pub fn sample() -> Self {
        use DurationTier::*;
        let trx = [
            (OneHour, 2_160),
            (OneDay, 100),
            (ThreeDays, 75),
            (SevenDays, 65),
            (FourteenDays, 60),
            (ThirtyDays, 55),
        ];
        let usdt = [
            (OneHour, 648),
            (OneDay, 30),
            (ThreeDays, 23),
            (SevenDays, 20),
            (FourteenDays, 18),
            (ThirtyDays, 17),
        ];
        let mut table = PriceTable::default();
        for (tier, p) in trx {
            table.prices.entry(Asset::Trx).or_default().insert(tier, p);
        }
        for (tier, p) in usdt {
            table.prices.entry(Asset::Usdt).or_default().insert(tier, p);
        }
        table
    }

    pub fn min_energy(&self) -> u64 {
        self.min_energy
    }

    pub fn max_energy(&self) -> u64 {
        self.max_energy
    }

    /// The unit price of `tier` in `asset`, if offered.
    pub fn unit_price(&self, asset: Asset, tier: DurationTier) -> Option<u64> {
        self.prices.get(&asset)?.get(&tier).copied()
    }

    /// The price of `energy` for `duration`, paid in `asset`.
    pub fn quote(
        &self,
        asset: Asset,
        duration: DurationTier,
        energy: u64,
    ) -> Result<Quote, QuoteError> {
        if energy == 0 {
            return Err(QuoteError::Field(FieldError::zero("energy")));
        }
        if energy < self.min_energy {
            return Err(QuoteError::EnergyBelowMinimum {
                energy,
                min: self.min_energy,
            });
        }
        if energy > self.max_energy {
            return Err(QuoteError::EnergyAboveMaximum {
                energy,
                max: self.max_energy,
            });
        }
        let tiers = self
            .prices
            .get(&asset)
            .filter(|t| !t.is_empty())
            .ok_or(QuoteError::AssetNotAccepted { asset })?;
        let unit_price = *tiers
            .get(&duration)
            .ok_or_else(|| QuoteError::Duration(DurationError::not_offered(duration.as_str())))?;
        Ok(Quote {
            energy,
            duration,
            asset,
            unit_price,
            price: price_for(energy, unit_price, duration)?,
        })
    }
}

#[cfg(test)]
mod tests;
