//! Given/when/then for every wallet command.

use crate::domain::{FieldError, TransitionError, WalletError};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};

use super::*;
use crate::domain::money::MAX_AMOUNT;
use crate::domain::{DomainAggregate, DomainCommand};

type WalletTest = TestFramework<Wallet>;

/// 6,000 TRX staked.
const STAKED: u64 = 6_000_000_000;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn address() -> TronAddress {
    TronAddress::from_evm_bytes([0xa1; 20])
}

fn order(n: u32) -> OrderId {
    OrderId::parse(format!("ord-{n}")).unwrap()
}

fn registered() -> WalletEvent {
    WalletEvent::WalletRegistered {
        address: address(),
        key_ref: KeyRef::new("vault:pool-1"),
        at: t(0),
    }
}

fn observed(staked_sun: u64, reserved_sun: u64) -> WalletEvent {
    WalletEvent::ResourcesObserved {
        staked_sun,
        delegatable_sun: staked_sun,
        energy_limit: 66_000,
        reserved_sun,
        free_sun: staked_sun.saturating_sub(reserved_sun),
        at: t(1),
    }
}

fn reserved(n: u32, sun: u64, reserved_after: u64) -> WalletEvent {
    WalletEvent::CapacityReserved {
        order_id: order(n),
        sun,
        reserved_after,
        free_after: STAKED - reserved_after,
    }
}

fn disabled() -> WalletEvent {
    WalletEvent::WalletDisabled {
        reason: "key rotation".into(),
        actor: "admin:alice".into(),
        at: t(5),
    }
}

/// Registered, 6,000 TRX staked and observed.
fn staked() -> Vec<WalletEvent> {
    vec![registered(), observed(STAKED, 0)]
}

fn with(more: impl IntoIterator<Item = WalletEvent>) -> Vec<WalletEvent> {
    let mut h = staked();
    h.extend(more);
    h
}

fn reserve(n: u32, sun: u64) -> WalletCommand {
    WalletCommand::ReserveCapacity {
        order_id: order(n),
        sun,
    }
}

fn wrong_state(state: &str, command: &str) -> WalletError {
    WalletError::from(TransitionError::InvalidTransition {
        state: state.into(),
        command: command.into(),
    })
}

// ---- RegisterWallet -------------------------------------------------------------------------

#[test]
fn a_pool_wallet_is_registered_with_a_key_reference() {
    let cmd = WalletCommand::RegisterWallet {
        address: address(),
        key_ref: KeyRef::new("vault:pool-1"),
        at: t(0),
    };
    WalletTest::with(())
        .given_no_previous_events()
        .when(cmd)
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_a_wallet_with_its_private_key_is_refused() {
    let key = "8e".repeat(32);
    let cmd = WalletCommand::RegisterWallet {
        address: address(),
        key_ref: KeyRef::new(key),
        at: t(0),
    };
    WalletTest::with(())
        .given_no_previous_events()
        .when(cmd)
        .then_expect_error(WalletError::KeyMaterialNotAllowed { length: 64 });
}

#[test]
fn registering_with_an_overlong_or_empty_key_reference_is_refused() {
    let long = WalletCommand::RegisterWallet {
        address: address(),
        key_ref: KeyRef::new("v".repeat(129)),
        at: t(0),
    };
    WalletTest::with(())
        .given_no_previous_events()
        .when(long)
        .then_expect_error(WalletError::KeyMaterialNotAllowed { length: 129 });
    let empty = WalletCommand::RegisterWallet {
        address: address(),
        key_ref: KeyRef::new(""),
        at: t(0),
    };
    WalletTest::with(())
        .given_no_previous_events()
        .when(empty)
        .then_expect_error(WalletError::from(FieldError::TextRequired {
            field: "key_ref".into(),
        }));
}

#[test]
fn registering_a_wallet_twice_is_refused() {
    let cmd = WalletCommand::RegisterWallet {
        address: address(),
        key_ref: KeyRef::new("vault:pool-2"),
        at: t(0),
    };
    WalletTest::with(())
        .given(vec![registered()])
        .when(cmd)
        .then_expect_error(WalletError::WalletAlreadyRegistered);
}

#[test]
fn every_other_command_needs_a_registered_wallet() {
    let commands = [
        WalletCommand::ObserveResources {
            staked_sun: 1,
            delegatable_sun: 1,
            energy_limit: 1,
            at: t(1),
        },
        reserve(1, 1),
        WalletCommand::ReleaseCapacity { order_id: order(1) },
        WalletCommand::DisableWallet {
            reason: "r".into(),
            actor: "a".into(),
            at: t(1),
        },
        WalletCommand::EnableWallet {
            actor: "a".into(),
            at: t(1),
        },
    ];
    for cmd in commands {
        WalletTest::with(())
            .given_no_previous_events()
            .when(cmd)
            .then_expect_error(WalletError::WalletNotRegistered);
    }
}

// ---- ObserveResources -----------------------------------------------------------------------

#[test]
fn observed_resources_report_the_free_capacity() {
    WalletTest::with(())
        .given(with([reserved(1, 1_000_000_000, 1_000_000_000)]))
        .when(WalletCommand::ObserveResources {
            staked_sun: 7_000_000_000,
            delegatable_sun: 6_000_000_000,
            energy_limit: 77_000,
            at: t(2),
        })
        .then_expect_events(vec![WalletEvent::ResourcesObserved {
            staked_sun: 7_000_000_000,
            delegatable_sun: 6_000_000_000,
            energy_limit: 77_000,
            reserved_sun: 1_000_000_000,
            free_sun: 6_000_000_000,
            at: t(2),
        }]);
}

#[test]
fn a_stake_that_shrank_below_the_reservations_leaves_no_free_capacity_rather_than_a_negative_one() {
    WalletTest::with(())
        .given(with([reserved(1, 5_000_000_000, 5_000_000_000)]))
        .when(WalletCommand::ObserveResources {
            staked_sun: 1_000_000_000,
            delegatable_sun: 0,
            energy_limit: 1,
            at: t(2),
        })
        .then_expect_events(vec![WalletEvent::ResourcesObserved {
            staked_sun: 1_000_000_000,
            delegatable_sun: 0,
            energy_limit: 1,
            reserved_sun: 5_000_000_000,
            free_sun: 0,
            at: t(2),
        }]);
}

#[test]
fn more_delegatable_than_staked_or_an_unstorable_stake_is_refused() {
    WalletTest::with(())
        .given(staked())
        .when(WalletCommand::ObserveResources {
            staked_sun: 10,
            delegatable_sun: 11,
            energy_limit: 0,
            at: t(2),
        })
        .then_expect_error(WalletError::InconsistentResources {
            staked_sun: 10,
            delegatable_sun: 11,
        });
    WalletTest::with(())
        .given(staked())
        .when(WalletCommand::ObserveResources {
            staked_sun: MAX_AMOUNT + 1,
            delegatable_sun: 0,
            energy_limit: 0,
            at: t(2),
        })
        .then_expect_error(WalletError::from(FieldError::QuantityTooLarge {
            field: "staked_sun".into(),
            max: MAX_AMOUNT,
        }));
}

// ---- ReserveCapacity ------------------------------------------------------------------------

#[test]
fn reserving_capacity_for_an_order_reduces_what_is_free() {
    WalletTest::with(())
        .given(with([reserved(1, 1_000_000_000, 1_000_000_000)]))
        .when(reserve(2, 5_000_000_000))
        .then_expect_events(vec![reserved(2, 5_000_000_000, 6_000_000_000)]);
}

#[test]
fn reserving_more_than_is_free_is_refused() {
    WalletTest::with(())
        .given(with([reserved(1, 1_000_000_000, 1_000_000_000)]))
        .when(reserve(2, 5_000_000_001))
        .then_expect_error(WalletError::InsufficientCapacity {
            free: 5_000_000_000,
            requested: 5_000_000_001,
        });
}

#[test]
fn reserving_on_a_disabled_wallet_is_refused() {
    WalletTest::with(())
        .given(with([disabled()]))
        .when(reserve(1, 1))
        .then_expect_error(WalletError::WalletDisabled);
}

#[test]
fn reserving_zero_sun_is_refused() {
    WalletTest::with(())
        .given(staked())
        .when(reserve(1, 0))
        .then_expect_error(WalletError::from(FieldError::ZeroQuantity {
            field: "sun".into(),
        }));
}

#[test]
fn an_order_reserves_capacity_on_a_wallet_once() {
    WalletTest::with(())
        .given(with([reserved(1, 10, 10)]))
        .when(reserve(1, 10))
        .then_expect_error(WalletError::CapacityAlreadyReserved { order_id: order(1) });
    let released = WalletEvent::CapacityReleased {
        order_id: order(1),
        sun: 10,
        reserved_after: 0,
        free_after: STAKED,
    };
    WalletTest::with(())
        .given(with([reserved(1, 10, 10), released]))
        .when(reserve(1, 10))
        .then_expect_error(WalletError::CapacityAlreadyReserved { order_id: order(1) });
}

/// Orders 1..=count each reserved for 10 sun and released.
fn released_orders(count: usize) -> Vec<WalletEvent> {
    let mut events = staked();
    for n in 1..=count as u32 {
        events.push(reserved(n, 10, 10));
        events.push(WalletEvent::CapacityReleased {
            order_id: order(n),
            sun: 10,
            reserved_after: 0,
            free_after: STAKED,
        });
    }
    events
}

#[test]
fn an_order_released_within_the_window_cannot_reserve_again() {
    // Exactly SETTLED_IDS_KEPT released: order 1 is the oldest the wallet remembers.
    WalletTest::with(())
        .given(released_orders(SETTLED_IDS_KEPT))
        .when(reserve(1, 10))
        .then_expect_error(WalletError::CapacityAlreadyReserved { order_id: order(1) });
}

#[test]
fn after_n_plus_k_releases_the_wallet_remembers_exactly_the_last_n() {
    let (n, k) = (SETTLED_IDS_KEPT, 4);
    let wallet = crate::domain::replay::<Wallet>(released_orders(n + k));
    assert_eq!(wallet.released.len(), n);
    assert_eq!(wallet.released.iter().next(), Some(&order(k as u32 + 1)));
    assert!(wallet.reservations.is_empty());
    // The oldest four are forgotten: the order's own state machine stops a second reservation
    // on a wallet it left (ADR 0007); the next one is still refused here.
    WalletTest::with(())
        .given(released_orders(n + k))
        .when(reserve(1, 10))
        .then_expect_events(vec![reserved(1, 10, 10)]);
    WalletTest::with(())
        .given(released_orders(n + k))
        .when(reserve(k as u32 + 1, 10))
        .then_expect_error(WalletError::CapacityAlreadyReserved {
            order_id: order(k as u32 + 1),
        });
    let restored: Wallet = serde_json::from_value(serde_json::to_value(&wallet).unwrap()).unwrap();
    assert_eq!(restored, wallet);
}

// ---- ReleaseCapacity ------------------------------------------------------------------------

#[test]
fn releasing_an_orders_capacity_frees_it() {
    WalletTest::with(())
        .given(with([reserved(1, 1_000, 1_000), reserved(2, 2_000, 3_000)]))
        .when(WalletCommand::ReleaseCapacity { order_id: order(1) })
        .then_expect_events(vec![WalletEvent::CapacityReleased {
            order_id: order(1),
            sun: 1_000,
            reserved_after: 2_000,
            free_after: STAKED - 2_000,
        }]);
}

#[test]
fn a_disabled_wallet_still_releases_capacity() {
    WalletTest::with(())
        .given(with([reserved(1, 1_000, 1_000), disabled()]))
        .when(WalletCommand::ReleaseCapacity { order_id: order(1) })
        .then_expect_events(vec![WalletEvent::CapacityReleased {
            order_id: order(1),
            sun: 1_000,
            reserved_after: 0,
            free_after: STAKED,
        }]);
}

#[test]
fn releasing_capacity_that_is_not_held_is_refused() {
    let released = WalletEvent::CapacityReleased {
        order_id: order(1),
        sun: 10,
        reserved_after: 0,
        free_after: STAKED,
    };
    WalletTest::with(())
        .given(staked())
        .when(WalletCommand::ReleaseCapacity { order_id: order(1) })
        .then_expect_error(WalletError::NoCapacityReservation { order_id: order(1) });
    WalletTest::with(())
        .given(with([reserved(1, 10, 10), released]))
        .when(WalletCommand::ReleaseCapacity { order_id: order(1) })
        .then_expect_error(WalletError::NoCapacityReservation { order_id: order(1) });
}

// ---- DisableWallet / EnableWallet -----------------------------------------------------------

#[test]
fn an_admin_disables_a_wallet_with_a_reason() {
    WalletTest::with(())
        .given(staked())
        .when(WalletCommand::DisableWallet {
            reason: "key rotation".into(),
            actor: "admin:alice".into(),
            at: t(5),
        })
        .then_expect_events(vec![disabled()]);
}

#[test]
fn disabling_needs_a_reason_and_an_actor_and_happens_once() {
    WalletTest::with(())
        .given(staked())
        .when(WalletCommand::DisableWallet {
            reason: "".into(),
            actor: "admin:alice".into(),
            at: t(5),
        })
        .then_expect_error(WalletError::from(FieldError::TextRequired {
            field: "reason".into(),
        }));
    WalletTest::with(())
        .given(staked())
        .when(WalletCommand::DisableWallet {
            reason: "x".into(),
            actor: "".into(),
            at: t(5),
        })
        .then_expect_error(WalletError::from(FieldError::TextRequired {
            field: "actor".into(),
        }));
    WalletTest::with(())
        .given(with([disabled()]))
        .when(WalletCommand::DisableWallet {
            reason: "again".into(),
            actor: "admin:alice".into(),
            at: t(6),
        })
        .then_expect_error(wrong_state("Disabled", "DisableWallet"));
}

#[test]
fn an_admin_enables_a_disabled_wallet() {
    WalletTest::with(())
        .given(with([disabled()]))
        .when(WalletCommand::EnableWallet {
            actor: "admin:bob".into(),
            at: t(6),
        })
        .then_expect_events(vec![WalletEvent::WalletEnabled {
            actor: "admin:bob".into(),
            at: t(6),
        }]);
}

#[test]
fn enabling_an_enabled_wallet_or_without_an_actor_is_refused() {
    WalletTest::with(())
        .given(staked())
        .when(WalletCommand::EnableWallet {
            actor: "admin:bob".into(),
            at: t(6),
        })
        .then_expect_error(wrong_state("Enabled", "EnableWallet"));
    WalletTest::with(())
        .given(with([disabled()]))
        .when(WalletCommand::EnableWallet {
            actor: " ".into(),
            at: t(6),
        })
        .then_expect_error(WalletError::from(FieldError::TextRequired {
            field: "actor".into(),
        }));
}

// ---- plumbing -------------------------------------------------------------------------------

#[test]
fn wallet_names_are_stable_and_the_key_reference_is_stored_as_given() {
    assert_eq!(reserve(1, 1).command_type(), "ReserveCapacity");
    assert_eq!(disabled().event_type(), "WalletDisabled");
    assert_eq!(disabled().event_version(), "1.0");
    assert_eq!(Wallet::TYPE, "wallet");
    assert_eq!(<Wallet as DomainAggregate>::STATE_SCHEMA, "wallet/2");
    let json = serde_json::to_value(registered()).unwrap();
    assert_eq!(json["WalletRegistered"]["key_ref"], "vault:pool-1");
    assert_eq!(json["WalletRegistered"]["address"], address().to_base58());
}
