//! The node's resource arithmetic (java-tron `ResourceProcessor`, `EnergyProcessor`): usage that
//! recovers linearly over a 24-hour window counted in 3-second slots, and the Stake 2.0 energy
//! share `staked_TRX × TotalEnergyLimit / TotalEnergyWeight`. The node computes some of these in
//! `double`; they are reproduced the same way here so that the simulator answers what a node
//! would, to the unit.

/// Sun per TRX (`TRX_PRECISION`).
pub const TRX: i64 = 1_000_000;
/// The node's slot length (`BLOCK_PRODUCED_INTERVAL`); resource windows count these.
pub const SLOT_MS: i64 = 3_000;
/// The resource window, in slots: 24 h (`WINDOW_SIZE_MS / BLOCK_PRODUCED_INTERVAL`).
pub const WINDOW_SLOTS: i64 = 28_800;
/// `energy_window_size` as accounts report it (slots × `WINDOW_SIZE_PRECISION`).
pub const WINDOW_SIZE_REPORTED: i64 = WINDOW_SLOTS * 1_000;
/// The node's fixed-point precision for averaged usage.
const PRECISION: i64 = 1_000_000;
/// Free bandwidth per account per day (`freeNetLimit`).
pub const FREE_NET_LIMIT: i64 = 600;
/// The default lock period of a locked delegation, in blocks (`DELEGATE_PERIOD / 3000`).
pub const DEFAULT_LOCK_PERIOD_BLOCKS: i64 = 86_400;

fn divide_ceil(numerator: i64, denominator: i64) -> i64 {
    numerator / denominator + i64::from(numerator % denominator > 0)
}

/// `ResourceProcessor.increase`: the usage after `last_usage` (at `last_slot`) has recovered to
/// `now_slot` and `usage` more was consumed.
pub fn increase(last_usage: i64, usage: i64, last_slot: i64, now_slot: i64) -> i64 {
    let window = WINDOW_SLOTS;
    let mut average_last = divide_ceil(last_usage.saturating_mul(PRECISION), window);
    let average_usage = divide_ceil(usage.saturating_mul(PRECISION), window);
    if last_slot != now_slot {
        if now_slot > last_slot && last_slot + window > now_slot {
            let delta = now_slot - last_slot;
            let decay = (window - delta) as f64 / window as f64;
            average_last = (average_last as f64 * decay).round() as i64;
        } else if now_slot > last_slot {
            average_last = 0;
        }
    }
    average_last = average_last.saturating_add(average_usage);
    average_last.saturating_mul(window) / PRECISION
}

/// What is left of `last_usage` (at `last_slot`) at `now_slot`.
pub fn recover(last_usage: i64, last_slot: i64, now_slot: i64) -> i64 {
    increase(last_usage, 0, last_slot, now_slot)
}

/// `EnergyProcessor.calculateGlobalEnergyLimit`: the energy a stake of `frozen_sun` (own plus
/// acquired) yields. `total_weight` is whole TRX staked for energy across the network.
pub fn energy_limit(frozen_sun: i64, total_limit: i64, total_weight: i64) -> i64 {
    if frozen_sun < TRX || total_weight <= 0 {
        return 0;
    }
    let weight = frozen_sun / TRX;
    (weight as f64 * (total_limit as f64 / total_weight as f64)) as i64
}

/// The bandwidth a stake yields, by the same formula over the network's bandwidth totals.
pub fn net_limit(frozen_sun: i64, total_limit: i64, total_weight: i64) -> i64 {
    energy_limit(frozen_sun, total_limit, total_weight)
}

/// Energy `usage` converted back to staked sun (`DelegateResourceActuator.validate`).
pub fn energy_usage_in_sun(usage: i64, total_limit: i64, total_weight: i64) -> i64 {
    if total_limit <= 0 {
        return 0;
    }
    (usage as f64 * TRX as f64 * (total_weight as f64 / total_limit as f64)) as i64
}

/// The slot of a block timestamp.
pub fn slot(timestamp_ms: i64, genesis_ms: i64) -> i64 {
    (timestamp_ms - genesis_ms).max(0) / SLOT_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mainnet_fixture_gives_the_energy_it_reported() {
        // LL getAccountResource fixture: 403 TRX staked, EnergyLimit 4448.
        assert_eq!(
            energy_limit(403 * TRX, 180_000_000_000, 16_307_698_552),
            4448
        );
        assert_eq!(energy_limit(TRX - 1, 180_000_000_000, 16_307_698_552), 0);
    }

    #[test]
    fn usage_recovers_linearly_and_is_gone_after_a_day() {
        let used = increase(0, 10_000, 0, 0);
        assert!((9_999..=10_000).contains(&used), "{used}");
        let half = recover(used, 0, WINDOW_SLOTS / 2);
        assert!((4_999..=5_001).contains(&half), "{half}");
        assert_eq!(recover(used, 0, WINDOW_SLOTS), 0);
        assert_eq!(recover(used, 0, WINDOW_SLOTS * 3), 0);
        // A clock that did not move changes nothing.
        assert_eq!(recover(used, 7, 7), used);
    }
}
