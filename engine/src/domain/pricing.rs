//! Pricing: the duration tiers we sell, the price table, and quotes. A unit price is in the
//! asset's smallest unit (sun, or 10^-6 USDT) per unit of energy per day; a tier has its own unit
//! price per asset, so short rentals can cost more per day. A quote is
//! `ceil(energy × unit_price × hours / 24)`, in integers (u128), never below the exact price.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::money::{Amount, Asset, MAX_AMOUNT};

/// A rental period we sell. Durations between tiers are not sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DurationTier {
    OneHour,
    OneDay,
    ThreeDays,
    SevenDays,
    FourteenDays,
    ThirtyDays,
}

impl DurationTier {
    pub const ALL: [DurationTier; 6] = [
        DurationTier::OneHour,
        DurationTier::OneDay,
        DurationTier::ThreeDays,
        DurationTier::SevenDays,
        DurationTier::FourteenDays,
        DurationTier::ThirtyDays,
    ];

    /// The tier's length in hours.
    pub fn hours(self) -> u32 {
        match self {
            DurationTier::OneHour => 1,
            DurationTier::OneDay => 24,
            DurationTier::ThreeDays => 72,
            DurationTier::SevenDays => 168,
            DurationTier::FourteenDays => 336,
            DurationTier::ThirtyDays => 720,
        }
    }

    /// The stable name: `1h`, `1d`, `3d`, `7d`, `14d` or `30d`.
    pub fn as_str(self) -> &'static str {
        match self {
            DurationTier::OneHour => "1h",
            DurationTier::OneDay => "1d",
            DurationTier::ThreeDays => "3d",
            DurationTier::SevenDays => "7d",
            DurationTier::FourteenDays => "14d",
            DurationTier::ThirtyDays => "30d",
        }
    }

    /// The tier of exactly this many hours.
    pub fn from_hours(hours: u64) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|t| u64::from(t.hours()) == hours)
            .ok_or_else(|| DomainError::DurationNotOffered {
                duration: format!("{hours}h"),
            })
    }

    /// The rental period as a time span.
    pub fn period(self) -> TimeDelta {
        TimeDelta::hours(i64::from(self.hours()))
    }
}

impl fmt::Display for DurationTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a tier name (`1h` … `30d`) or a number of hours (`24`).
impl FromStr for DurationTier {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(tier) = Self::ALL.into_iter().find(|t| t.as_str() == s) {
            return Ok(tier);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(hours) = s.parse::<u64>() {
                return Self::from_hours(hours);
            }
        }
        Err(DomainError::DurationNotOffered {
            duration: s.chars().take(32).collect(),
        })
    }
}

/// Written as the tier name; read from a name or a whole number of hours.
impl Serialize for DurationTier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DurationTier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationTier;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration tier (1h, 1d, 3d, 7d, 14d, 30d) or its hours")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationTier, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationTier, E> {
                DurationTier::from_hours(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationTier, E> {
                let hours = u64::try_from(v).map_err(|_| {
                    E::custom(DomainError::DurationNotOffered {
                        duration: format!("{v}h"),
                    })
                })?;
                self.visit_u64(hours)
            }
        }
        d.deserialize_any(Visitor)
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
/// (inside the internally tagged `DomainError`), which cannot hold the i128 that `Amount` reads.
fn amount_from_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
    let units = u64::deserialize(d)?;
    Amount::new(units).map_err(serde::de::Error::custom)
}

/// `ceil(energy × unit_price × hours / 24)`, or `PriceOverflow` if that exceeds [`MAX_AMOUNT`].
pub fn price_for(
    energy: u64,
    unit_price: u64,
    duration: DurationTier,
) -> Result<Amount, DomainError> {
    let overflow = || DomainError::PriceOverflow {
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
    Amount::new(price).map_err(DomainError::from)
}

/// A unit price must be at least 1 and at most [`MAX_AMOUNT`] smallest units.
pub(crate) fn check_unit_price(
    asset: Asset,
    tier: DurationTier,
    unit_price: u64,
) -> Result<(), DomainError> {
    if unit_price == 0 || unit_price > MAX_AMOUNT {
        return Err(DomainError::InvalidPriceTable {
            problem: format!("unit price {unit_price} for {asset} {tier} must be 1..={MAX_AMOUNT}"),
        });
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
    type Error = DomainError;
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
    pub fn new(min_energy: u64, max_energy: u64) -> Result<Self, DomainError> {
        if min_energy == 0 || min_energy > max_energy {
            return Err(DomainError::InvalidPriceTable {
                problem: format!(
                    "energy bounds {min_energy}..={max_energy} are empty or start at 0"
                ),
            });
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
    ) -> Result<Self, DomainError> {
        self.set_price(asset, tier, unit_price)?;
        Ok(self)
    }

    /// Sets the unit price of `tier` in `asset` in place (checked as in [`Self::with_price`]).
    pub fn set_price(
        &mut self,
        asset: Asset,
        tier: DurationTier,
        unit_price: u64,
    ) -> Result<(), DomainError> {
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
    ) -> Result<Quote, DomainError> {
        if energy == 0 {
            return Err(DomainError::ZeroQuantity {
                field: "energy".into(),
            });
        }
        if energy < self.min_energy {
            return Err(DomainError::EnergyBelowMinimum {
                energy,
                min: self.min_energy,
            });
        }
        if energy > self.max_energy {
            return Err(DomainError::EnergyAboveMaximum {
                energy,
                max: self.max_energy,
            });
        }
        let tiers = self
            .prices
            .get(&asset)
            .filter(|t| !t.is_empty())
            .ok_or(DomainError::AssetNotAccepted { asset })?;
        let unit_price = *tiers
            .get(&duration)
            .ok_or_else(|| DomainError::DurationNotOffered {
                duration: duration.as_str().to_string(),
            })?;
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
