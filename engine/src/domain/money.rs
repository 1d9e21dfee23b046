//! Money: the assets customers pay with and integer amounts in each asset's smallest unit
//! (TRX in sun, 1 TRX = 1,000,000 sun; USDT in 10^-6 units). No floats anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The largest amount we accept: it must fit a Postgres `bigint` so that every figure can be
/// stored and summed in typed SQL columns.
pub const MAX_AMOUNT: u64 = i64::MAX as u64;

/// An asset a balance is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Asset {
    /// TRX, counted in sun.
    #[serde(rename = "TRX")]
    Trx,
    /// USDT (TRC20), counted in 10^-6 units.
    #[serde(rename = "USDT")]
    Usdt,
}

impl Asset {
    pub const ALL: [Asset; 2] = [Asset::Trx, Asset::Usdt];

    pub fn code(self) -> &'static str {
        match self {
            Asset::Trx => "TRX",
            Asset::Usdt => "USDT",
        }
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An asset code that we do not keep balances in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown asset {0:?}; expected TRX or USDT")]
pub struct UnknownAsset(pub String);

impl FromStr for Asset {
    type Err = UnknownAsset;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TRX" | "trx" => Ok(Asset::Trx),
            "USDT" | "usdt" => Ok(Asset::Usdt),
            other => Err(UnknownAsset(other.to_string())),
        }
    }
}

/// A strictly positive amount in an asset's smallest unit, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Amount(u64);

/// Why a number is not a valid amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be greater than zero")]
    Zero,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount exceeds the maximum of {MAX_AMOUNT}")]
    TooLarge,
}

impl Amount {
    pub fn new(units: u64) -> Result<Self, AmountError> {
        match units {
            0 => Err(AmountError::Zero),
            u if u > MAX_AMOUNT => Err(AmountError::TooLarge),
            u => Ok(Amount(u)),
        }
    }

    /// From a signed number, as it may arrive from JSON or SQL.
    pub fn from_i128(units: i128) -> Result<Self, AmountError> {
        if units < 0 {
            return Err(AmountError::Negative);
        }
        let u = u64::try_from(units).map_err(|_| AmountError::TooLarge)?;
        Self::new(u)
    }

    pub fn units(self) -> u64 {
        self.0
    }
}

/// Reads any integer (a negative or oversized one is refused with its reason). Implemented as a
/// visitor over u64 and i64, so it also works inside internally tagged or flattened types, whose
/// buffered values carry no 128-bit integers.
impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl serde::de::Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of the asset's smallest unit")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Amount, E> {
                Amount::new(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Amount, E> {
                Amount::from_i128(v.into()).map_err(E::custom)
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Amount, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(AmountError::TooLarge))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Amount, E> {
                Amount::from_i128(v).map_err(E::custom)
            }
        }
        d.deserialize_any(AmountVisitor)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_negative_and_overflowing_amounts_are_refused() {
        assert_eq!(Amount::new(0), Err(AmountError::Zero));
        assert_eq!(Amount::from_i128(-1), Err(AmountError::Negative));
        assert_eq!(Amount::new(MAX_AMOUNT + 1), Err(AmountError::TooLarge));
        assert_eq!(Amount::from_i128(i128::MAX), Err(AmountError::TooLarge));
        assert_eq!(Amount::new(MAX_AMOUNT).unwrap().units(), MAX_AMOUNT);
    }

    #[test]
    fn amounts_deserialise_only_when_valid() {
        assert_eq!(serde_json::from_str::<Amount>("5").unwrap().units(), 5);
        assert!(serde_json::from_str::<Amount>("0").is_err());
        assert!(serde_json::from_str::<Amount>("-3").is_err());
        assert!(serde_json::from_str::<Amount>("1.5").is_err());
        assert!(serde_json::from_str::<Amount>("99999999999999999999").is_err());
        assert!(serde_json::from_str::<Amount>("\"5\"").is_err());
    }

    #[test]
    fn amounts_deserialise_inside_internally_tagged_types() {
        #[derive(Deserialize, Debug)]
        #[serde(tag = "kind")]
        enum Tagged {
            Pay { amount: Amount },
        }
        let ok: Tagged = serde_json::from_str(r#"{"kind":"Pay","amount":7}"#).unwrap();
        assert!(matches!(ok, Tagged::Pay { amount } if amount.units() == 7));
        assert!(serde_json::from_str::<Tagged>(r#"{"kind":"Pay","amount":0}"#).is_err());
        assert!(serde_json::from_str::<Tagged>(r#"{"kind":"Pay","amount":-2}"#).is_err());
    }

    #[test]
    fn unknown_assets_are_named() {
        assert_eq!("TRX".parse::<Asset>().unwrap(), Asset::Trx);
        assert_eq!("BTC".parse::<Asset>(), Err(UnknownAsset("BTC".into())));
        assert!(serde_json::from_str::<Asset>("\"BTC\"").is_err());
        assert_eq!(serde_json::to_string(&Asset::Usdt).unwrap(), "\"USDT\"");
    }
}
