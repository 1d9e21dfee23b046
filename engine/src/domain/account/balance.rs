//! One asset's balance on an account: what is available, what is reserved for orders, and the
//! running totals that explain them. Every change is checked: nothing goes below zero or above
//! `MAX_AMOUNT`, and a failure is a typed error, never a wrap or a panic.

use serde::{Deserialize, Serialize};

use super::error::AccountError;
use crate::domain::money::{Asset, MAX_AMOUNT};

/// Invariant: `deposited + adjusted_in − adjusted_out − spent = available + reserved`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Free to spend.
    pub available: u64,
    /// Held for orders that are neither captured nor released.
    pub reserved: u64,
    /// Total credited from deposits.
    pub deposited: u64,
    /// Total captured by delivered orders.
    pub spent: u64,
    /// Total released back from reservations (refunds).
    pub refunded: u64,
    /// Total added by admin adjustments.
    pub adjusted_in: u64,
    /// Total removed by admin adjustments.
    pub adjusted_out: u64,
}

/// `a + b`, refused above `MAX_AMOUNT`.
pub(super) fn add(asset: Asset, a: u64, b: u64) -> Result<u64, AccountError> {
    a.checked_add(b)
        .filter(|sum| *sum <= MAX_AMOUNT)
        .ok_or(AccountError::BalanceOverflow { asset })
}

/// `a − b`, refused below zero.
pub(super) fn sub(asset: Asset, a: u64, b: u64) -> Result<u64, AccountError> {
    a.checked_sub(b).ok_or(AccountError::InsufficientFunds {
        asset,
        available: a,
        requested: b,
    })
}

impl Balance {
    pub(super) fn credit(self, asset: Asset, amount: u64) -> Result<Self, AccountError> {
        Ok(Balance {
            available: add(asset, self.available, amount)?,
            deposited: add(asset, self.deposited, amount)?,
            ..self
        })
    }

    pub(super) fn reserve(self, asset: Asset, amount: u64) -> Result<Self, AccountError> {
        Ok(Balance {
            available: sub(asset, self.available, amount)?,
            reserved: add(asset, self.reserved, amount)?,
            ..self
        })
    }

    pub(super) fn capture(self, asset: Asset, amount: u64) -> Result<Self, AccountError> {
        Ok(Balance {
            reserved: sub(asset, self.reserved, amount)?,
            spent: add(asset, self.spent, amount)?,
            ..self
        })
    }

    pub(super) fn release(self, asset: Asset, amount: u64) -> Result<Self, AccountError> {
        Ok(Balance {
            reserved: sub(asset, self.reserved, amount)?,
            available: add(asset, self.available, amount)?,
            refunded: add(asset, self.refunded, amount)?,
            ..self
        })
    }

    pub(super) fn adjust(self, asset: Asset, delta: i64) -> Result<Self, AccountError> {
        let magnitude = delta.unsigned_abs();
        if delta >= 0 {
            Ok(Balance {
                available: add(asset, self.available, magnitude)?,
                adjusted_in: add(asset, self.adjusted_in, magnitude)?,
                ..self
            })
        } else {
            let available =
                self.available
                    .checked_sub(magnitude)
                    .ok_or(AccountError::AdjustmentBelowZero {
                        asset,
                        available: self.available,
                        delta,
                    })?;
            Ok(Balance {
                available,
                adjusted_out: add(asset, self.adjusted_out, magnitude)?,
                ..self
            })
        }
    }

    /// Whether the totals explain the balance (computed in i128, so it cannot overflow).
    pub fn is_consistent(&self) -> bool {
        let explained = i128::from(self.deposited) + i128::from(self.adjusted_in)
            - i128::from(self.adjusted_out)
            - i128::from(self.spent);
        explained == i128::from(self.available) + i128::from(self.reserved)
    }
}
