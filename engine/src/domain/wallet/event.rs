//! What happened to a pool wallet. Capacity events carry the reserved and free sun after them,
//! so the utilisation view copies figures.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::key_ref::KeyRef;
use crate::domain::ids::OrderId;
use crate::domain::TronAddress;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletEvent {
    WalletRegistered {
        address: TronAddress,
        key_ref: KeyRef,
        at: DateTime<Utc>,
    },
    ResourcesObserved {
        staked_sun: u64,
        delegatable_sun: u64,
        energy_limit: u64,
        reserved_sun: u64,
        free_sun: u64,
        at: DateTime<Utc>,
    },
    CapacityReserved {
        order_id: OrderId,
        sun: u64,
        reserved_after: u64,
        free_after: u64,
    },
    CapacityReleased {
        order_id: OrderId,
        sun: u64,
        reserved_after: u64,
        free_after: u64,
    },
    WalletDisabled {
        reason: String,
        actor: String,
        at: DateTime<Utc>,
    },
    WalletEnabled {
        actor: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        match self {
            WalletEvent::WalletRegistered { .. } => "WalletRegistered",
            WalletEvent::ResourcesObserved { .. } => "ResourcesObserved",
            WalletEvent::CapacityReserved { .. } => "CapacityReserved",
            WalletEvent::CapacityReleased { .. } => "CapacityReleased",
            WalletEvent::WalletDisabled { .. } => "WalletDisabled",
            WalletEvent::WalletEnabled { .. } => "WalletEnabled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
