//! What can be asked of a pool wallet: register it (with a key reference), record what the chain
//! says it has staked, reserve and release capacity for orders, and disable or enable it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::key_ref::KeyRef;
use crate::domain::ids::OrderId;
use crate::domain::{DomainCommand, TronAddress};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletCommand {
    RegisterWallet {
        address: TronAddress,
        key_ref: KeyRef,
        at: DateTime<Utc>,
    },
    /// What the chain reports: sun staked for energy (including what is delegated out), what
    /// can still be delegated, and the wallet's own energy limit.
    ObserveResources {
        staked_sun: u64,
        delegatable_sun: u64,
        energy_limit: u64,
        at: DateTime<Utc>,
    },
    /// Holds `sun` of stake for an order from its delegation request until reclaim or release.
    ReserveCapacity {
        order_id: OrderId,
        sun: u64,
    },
    ReleaseCapacity {
        order_id: OrderId,
    },
    DisableWallet {
        reason: String,
        actor: String,
        at: DateTime<Utc>,
    },
    EnableWallet {
        actor: String,
        at: DateTime<Utc>,
    },
}

impl DomainCommand for WalletCommand {
    /// A wallet's aggregate id is its base58 address.
    fn names_aggregate(&self) -> Option<String> {
        match self {
            WalletCommand::RegisterWallet { address, .. } => Some(address.to_base58()),
            _ => None,
        }
    }

    fn command_type(&self) -> &'static str {
        match self {
            WalletCommand::RegisterWallet { .. } => "RegisterWallet",
            WalletCommand::ObserveResources { .. } => "ObserveResources",
            WalletCommand::ReserveCapacity { .. } => "ReserveCapacity",
            WalletCommand::ReleaseCapacity { .. } => "ReleaseCapacity",
            WalletCommand::DisableWallet { .. } => "DisableWallet",
            WalletCommand::EnableWallet { .. } => "EnableWallet",
        }
    }
}
