//! The network's energy totals (`TotalEnergyLimit`, `TotalEnergyWeight`), read from the node and
//! kept for a short while: they decide how much stake to lend for an order's energy.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use engine::domain::TronAddress;

use crate::node::{stake_for_energy, Finality, NodeClient, NodeError};

/// A short-lived cache of the energy totals.
pub struct ChainParams {
    node: NodeClient,
    probe: TronAddress,
    ttl: Duration,
    cached: Mutex<Option<(Instant, i64, i64)>>,
}

impl ChainParams {
    /// `probe` is any activated account (a pool wallet): `getaccountresource` carries the totals.
    pub fn new(node: NodeClient, probe: TronAddress, ttl: Duration) -> Self {
        Self {
            node,
            probe,
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// `(TotalEnergyLimit, TotalEnergyWeight)`.
    pub async fn totals(&self) -> Result<(i64, i64), NodeError> {
        if let Some((at, limit, weight)) = *self.cached.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < self.ttl {
                return Ok((limit, weight));
            }
        }
        let resource = self
            .node
            .account_resource(&self.probe, Finality::Head)
            .await?
            .unwrap_or_default();
        let totals = (resource.total_energy_limit, resource.total_energy_weight);
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), totals.0, totals.1));
        Ok(totals)
    }

    /// The sun of stake to delegate so the receiver gets at least `energy`, rounded up to whole
    /// TRX as the node counts it.
    pub async fn sun_for_energy(&self, energy: u64) -> Result<u64, NodeError> {
        let (limit, weight) = self.totals().await?;
        let energy = i64::try_from(energy).unwrap_or(i64::MAX);
        Ok(stake_for_energy(energy, limit, weight).max(0) as u64)
    }
}
