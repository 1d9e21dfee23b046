//! The world a block leaves behind: accounts (TRX balance, Stake 2.0 resources, permissions),
//! delegation records, and USDT balances. Cloned per block so that the solidified view and a
//! reorganisation are a matter of keeping the right copy.

use std::collections::BTreeMap;

use super::resources::{self, TRX};
use crate::TronAddress;

/// The network-wide numbers the resource formulas use (committee parameters plus the stake of
/// the rest of the network, which the simulator does not model account by account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkParams {
    /// `TotalEnergyLimit` (committee parameter #19; mainnet 180,000,000,000).
    pub total_energy_limit: i64,
    /// Whole TRX staked for energy by everybody outside the simulated accounts.
    pub network_energy_weight: i64,
    /// `TotalNetLimit` (mainnet 43,200,000,000).
    pub total_net_limit: i64,
    /// Whole TRX staked for bandwidth outside the simulated accounts.
    pub network_net_weight: i64,
    /// `getEnergyFee`: sun burned per unit of energy not covered by stake.
    pub energy_fee: i64,
    /// `getTransactionFee`: sun burned per byte of bandwidth not covered.
    pub transaction_fee: i64,
    /// `getCreateNewAccountFeeInSystemContract`.
    pub create_account_fee_system: i64,
    /// `getCreateAccountFee` (bandwidth burned when a transfer creates an account).
    pub create_account_fee: i64,
    /// `getMaxDelegateLockPeriod`, in blocks.
    pub max_delegate_lock_period: i64,
}

impl Default for NetworkParams {
    fn default() -> Self {
        Self {
            total_energy_limit: 180_000_000_000,
            // Mainnet's TotalEnergyWeight in a real getaccountresource answer (LL fixture):
            // about 11.04 energy per staked TRX.
            network_energy_weight: 16_307_698_552,
            total_net_limit: 43_200_000_000,
            network_net_weight: 27_908_390_830,
            energy_fee: 100,
            transaction_fee: 1_000,
            create_account_fee_system: 1_000_000,
            create_account_fee: 100_000,
            max_delegate_lock_period: 864_000,
        }
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub balance: i64,
    pub create_time: i64,
    pub is_contract: bool,
    /// `frozenV2` ENERGY: own stake not lent out.
    pub frozen_energy: i64,
    /// `frozenV2` BANDWIDTH.
    pub frozen_bandwidth: i64,
    /// `delegated_frozenV2_balance_for_energy`: own stake lent out.
    pub delegated_energy: i64,
    /// `acquired_delegated_frozenV2_balance_for_energy`: stake lent to this account.
    pub acquired_energy: i64,
    pub delegated_bandwidth: i64,
    pub acquired_bandwidth: i64,
    pub energy_usage: i64,
    /// Slot of the last energy use.
    pub energy_slot: i64,
    pub net_usage: i64,
    pub net_slot: i64,
    pub free_net_usage: i64,
    pub free_net_slot: i64,
    /// Keys of the active permission (id 2, threshold 1). The owner permission is the owner.
    pub active_keys: Vec<TronAddress>,
}

impl Account {
    pub fn new(address: TronAddress, balance: i64, create_time: i64) -> Self {
        Self {
            balance,
            create_time,
            is_contract: false,
            frozen_energy: 0,
            frozen_bandwidth: 0,
            delegated_energy: 0,
            acquired_energy: 0,
            delegated_bandwidth: 0,
            acquired_bandwidth: 0,
            energy_usage: 0,
            energy_slot: 0,
            net_usage: 0,
            net_slot: 0,
            free_net_usage: 0,
            free_net_slot: 0,
            active_keys: vec![address],
        }
    }

    /// Stake that yields this account energy (`getAllFrozenBalanceForEnergy`).
    pub fn energy_stake(&self) -> i64 {
        self.frozen_energy + self.acquired_energy
    }

    pub fn net_stake(&self) -> i64 {
        self.frozen_bandwidth + self.acquired_bandwidth
    }
}

/// One delegation record (`DelegatedResource`), keyed by (from, to, locked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delegation {
    pub energy: i64,
    pub energy_expire: i64,
    pub bandwidth: i64,
    pub bandwidth_expire: i64,
}

/// The whole state.
#[derive(Debug, Clone)]
pub struct World {
    pub params: NetworkParams,
    pub genesis_ts: i64,
    /// Timestamp of the latest block (`latestBlockHeaderTimestamp`).
    pub latest_block_ts: i64,
    pub accounts: BTreeMap<TronAddress, Account>,
    pub delegations: BTreeMap<(TronAddress, TronAddress, bool), Delegation>,
    pub usdt_contract: TronAddress,
    pub usdt: BTreeMap<TronAddress, u128>,
}

impl World {
    pub fn new(params: NetworkParams, genesis_ts: i64, usdt_contract: TronAddress) -> Self {
        let mut world = Self {
            params,
            genesis_ts,
            latest_block_ts: genesis_ts,
            accounts: BTreeMap::new(),
            delegations: BTreeMap::new(),
            usdt_contract,
            usdt: BTreeMap::new(),
        };
        let mut contract = Account::new(usdt_contract, 0, genesis_ts);
        contract.is_contract = true;
        world.accounts.insert(usdt_contract, contract);
        world
    }

    /// The slot of the latest block: "now" for resource recovery.
    pub fn now_slot(&self) -> i64 {
        resources::slot(self.latest_block_ts, self.genesis_ts)
    }

    /// `TotalEnergyWeight`: whole TRX staked for energy, network plus simulated accounts.
    pub fn total_energy_weight(&self) -> i64 {
        self.params.network_energy_weight
            + self
                .accounts
                .values()
                .map(|a| (a.frozen_energy + a.delegated_energy) / TRX)
                .sum::<i64>()
    }

    pub fn total_net_weight(&self) -> i64 {
        self.params.network_net_weight
            + self
                .accounts
                .values()
                .map(|a| (a.frozen_bandwidth + a.delegated_bandwidth) / TRX)
                .sum::<i64>()
    }

    pub fn energy_limit(&self, account: &Account) -> i64 {
        resources::energy_limit(
            account.energy_stake(),
            self.params.total_energy_limit,
            self.total_energy_weight(),
        )
    }

    pub fn net_limit(&self, account: &Account) -> i64 {
        resources::net_limit(
            account.net_stake(),
            self.params.total_net_limit,
            self.total_net_weight(),
        )
    }

    /// Energy used, recovered to now.
    pub fn energy_used(&self, account: &Account) -> i64 {
        resources::recover(account.energy_usage, account.energy_slot, self.now_slot())
    }

    pub fn free_net_used(&self, account: &Account) -> i64 {
        resources::recover(
            account.free_net_usage,
            account.free_net_slot,
            self.now_slot(),
        )
    }

    pub fn net_used(&self, account: &Account) -> i64 {
        resources::recover(account.net_usage, account.net_slot, self.now_slot())
    }

    /// `getcandelegatedmaxsize` for ENERGY: own stake minus the part of the owner's own usage
    /// that its acquired stake does not cover (the node's `DelegateResourceActuator` rule).
    pub fn can_delegate_energy(&self, account: &Account) -> i64 {
        let usage_sun = resources::energy_usage_in_sun(
            self.energy_used(account),
            self.params.total_energy_limit,
            self.total_energy_weight(),
        );
        let remain = (usage_sun - account.acquired_energy).max(0);
        (account.frozen_energy - remain).max(0)
    }

    pub fn can_delegate_bandwidth(&self, account: &Account) -> i64 {
        let usage_sun = resources::energy_usage_in_sun(
            self.net_used(account),
            self.params.total_net_limit,
            self.total_net_weight(),
        );
        let remain = (usage_sun - account.acquired_bandwidth).max(0);
        (account.frozen_bandwidth - remain).max(0)
    }

    /// Moves locked delegations whose lock has passed into the unlocked record
    /// (`DelegatedResourceStore.unLockExpireResource`).
    pub fn unlock_expired(&mut self, from: TronAddress, to: TronAddress) {
        let now = self.latest_block_ts;
        let Some(locked) = self.delegations.get(&(from, to, true)).cloned() else {
            return;
        };
        let mut moved = Delegation::default();
        let mut kept = locked.clone();
        if locked.energy > 0 && locked.energy_expire < now {
            moved.energy = locked.energy;
            kept.energy = 0;
            kept.energy_expire = 0;
        }
        if locked.bandwidth > 0 && locked.bandwidth_expire < now {
            moved.bandwidth = locked.bandwidth;
            kept.bandwidth = 0;
            kept.bandwidth_expire = 0;
        }
        if moved.energy == 0 && moved.bandwidth == 0 {
            return;
        }
        if kept.energy == 0 && kept.bandwidth == 0 {
            self.delegations.remove(&(from, to, true));
        } else {
            self.delegations.insert((from, to, true), kept);
        }
        let unlocked = self.delegations.entry((from, to, false)).or_default();
        unlocked.energy += moved.energy;
        unlocked.bandwidth += moved.bandwidth;
    }

    /// Delegation records from `from` to `to` (unlocked first), as `getdelegatedresourcev2`
    /// lists them.
    pub fn delegation_records(&self, from: TronAddress, to: TronAddress) -> Vec<&Delegation> {
        [false, true]
            .iter()
            .filter_map(|lock| self.delegations.get(&(from, to, *lock)))
            .collect()
    }

    pub fn usdt_balance(&self, holder: &TronAddress) -> u128 {
        self.usdt.get(holder).copied().unwrap_or(0)
    }
}
