//! The wallet's decisions.

use super::error::WalletError;
use super::{Wallet, WalletCommand, WalletEvent};
use crate::domain::field::FieldError;
use crate::domain::money::MAX_AMOUNT;
use crate::domain::text::{require_actor, require_reason};
use crate::domain::transition::TransitionError;
use crate::domain::{DomainAggregate, DomainCommand};

impl DomainAggregate for Wallet {
    /// `wallet/2`: released orders kept in a bounded window.
    const STATE_SCHEMA: &'static str = "wallet/2";

    fn decide(
        &self,
        command: WalletCommand,
        _services: &(),
    ) -> Result<Vec<WalletEvent>, WalletError> {
        use WalletCommand::*;
        let name = command.command_type();
        let event = match command {
            RegisterWallet {
                address,
                key_ref,
                at,
            } => {
                if self.is_registered() {
                    return Err(WalletError::WalletAlreadyRegistered);
                }
                key_ref.validate()?;
                WalletEvent::WalletRegistered {
                    address,
                    key_ref,
                    at,
                }
            }
            _ if !self.is_registered() => return Err(WalletError::WalletNotRegistered),
            ObserveResources {
                staked_sun,
                delegatable_sun,
                energy_limit,
                at,
            } => {
                if staked_sun > MAX_AMOUNT {
                    return Err(FieldError::too_large("staked_sun", MAX_AMOUNT).into());
                }
                if delegatable_sun > staked_sun {
                    return Err(WalletError::InconsistentResources {
                        staked_sun,
                        delegatable_sun,
                    });
                }
                let reserved_sun = self.reserved_sun();
                WalletEvent::ResourcesObserved {
                    staked_sun,
                    delegatable_sun,
                    energy_limit,
                    reserved_sun,
                    free_sun: staked_sun.saturating_sub(reserved_sun),
                    at,
                }
            }
            ReserveCapacity { order_id, sun } => {
                if self.disabled {
                    return Err(WalletError::WalletDisabled);
                }
                if sun == 0 {
                    return Err(FieldError::zero("sun").into());
                }
                if self.reservations.contains_key(&order_id) || self.released.contains(&order_id) {
                    return Err(WalletError::CapacityAlreadyReserved { order_id });
                }
                let free = self.free_sun();
                if sun > free {
                    return Err(WalletError::InsufficientCapacity {
                        free,
                        requested: sun,
                    });
                }
                WalletEvent::CapacityReserved {
                    order_id,
                    sun,
                    reserved_after: self.reserved_sun().saturating_add(sun),
                    free_after: free - sun,
                }
            }
            ReleaseCapacity { order_id } => {
                let sun = self.reservation(&order_id).ok_or_else(|| {
                    WalletError::NoCapacityReservation {
                        order_id: order_id.clone(),
                    }
                })?;
                let reserved_after = self.reserved_sun().saturating_sub(sun);
                WalletEvent::CapacityReleased {
                    order_id,
                    sun,
                    reserved_after,
                    free_after: self.staked_sun.saturating_sub(reserved_after),
                }
            }
            DisableWallet { reason, actor, at } => {
                if self.disabled {
                    return Err(TransitionError::new("Disabled", name).into());
                }
                require_reason(&reason)?;
                require_actor(&actor)?;
                WalletEvent::WalletDisabled { reason, actor, at }
            }
            EnableWallet { actor, at } => {
                if !self.disabled {
                    return Err(TransitionError::new("Enabled", name).into());
                }
                require_actor(&actor)?;
                WalletEvent::WalletEnabled { actor, at }
            }
        };
        Ok(vec![event])
    }
}
