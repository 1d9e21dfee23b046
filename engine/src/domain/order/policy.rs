//! `OrderPolicy`: what an order's decisions depend on beyond its own history — the prices on
//! offer, our pool wallets (never a receiver, the only senders), how long an unpaid order may
//! wait, and how many delegation attempts an order gets. Plain data, loaded by the caller.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use crate::domain::pricing::PriceTable;
use crate::domain::TronAddress;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPolicy {
    pub prices: PriceTable,
    pub pool_wallets: BTreeSet<TronAddress>,
    /// How long after placement an unpaid order may be cancelled by the timeout.
    pub unpaid_timeout: TimeDelta,
    /// Delegation attempts per order (each on a different wallet) before only a refund is left.
    pub max_delegation_attempts: u32,
}

/// 15 minutes to pay, 3 delegation attempts; no prices and no pool wallets until configured.
impl Default for OrderPolicy {
    fn default() -> Self {
        OrderPolicy {
            prices: PriceTable::default(),
            pool_wallets: BTreeSet::new(),
            unpaid_timeout: TimeDelta::minutes(15),
            max_delegation_attempts: 3,
        }
    }
}
