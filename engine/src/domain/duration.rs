//! Durations we sell: the rental periods (`1h`, `1d`, `3d`, `7d`, `14d`, `30d`), parsed from a
//! tier name or a whole number of hours, and `DurationError` for any other.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// A duration that is not one of the tiers we sell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DurationError {
    #[error("duration {duration:?} is not offered (1h, 1d, 3d, 7d, 14d or 30d)")]
    DurationNotOffered { duration: String },
}

impl DurationError {
    /// The stable machine-readable code (the same string as the serialised `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            DurationError::DurationNotOffered { .. } => "duration_not_offered",
        }
    }

    pub(crate) fn not_offered(duration: impl Into<String>) -> Self {
        DurationError::DurationNotOffered {
            duration: duration.into(),
        }
    }
}

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
    pub fn from_hours(hours: u64) -> Result<Self, DurationError> {
        Self::ALL
            .into_iter()
            .find(|t| u64::from(t.hours()) == hours)
            .ok_or_else(|| DurationError::not_offered(format!("{hours}h")))
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
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(tier) = Self::ALL.into_iter().find(|t| t.as_str() == s) {
            return Ok(tier);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(hours) = s.parse::<u64>() {
                return Self::from_hours(hours);
            }
        }
        Err(DurationError::not_offered(
            s.chars().take(32).collect::<String>(),
        ))
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
                let hours = u64::try_from(v)
                    .map_err(|_| E::custom(DurationError::not_offered(format!("{v}h"))))?;
                self.visit_u64(hours)
            }
        }
        d.deserialize_any(Visitor)
    }
}
