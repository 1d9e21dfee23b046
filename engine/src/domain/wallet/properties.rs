//! Properties of a pool wallet over random command sequences: reservations never exceed the
//! stake they were made against, free capacity is never negative, and replay reproduces state.

use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::recent::SETTLED_IDS_KEPT;
use crate::domain::{replay, DomainAggregate};

#[derive(Debug, Clone)]
enum Op {
    Observe { staked: u64, delegatable: u64 },
    Reserve { order: u8, sun: u64 },
    Release { order: u8 },
    Disable,
    Enable,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u64..10_000, 0u64..10_000).prop_map(|(staked, delegatable)| Op::Observe { staked, delegatable }),
        5 => (0u8..10, 0u64..4_000).prop_map(|(order, sun)| Op::Reserve { order, sun }),
        3 => (0u8..10).prop_map(|order| Op::Release { order }),
        1 => Just(Op::Disable),
        1 => Just(Op::Enable),
    ]
}

fn command(op: &Op, minute: i64) -> WalletCommand {
    let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(minute);
    let order_id = |n: u8| OrderId::parse(format!("ord-{n}")).unwrap();
    match *op {
        Op::Observe {
            staked,
            delegatable,
        } => WalletCommand::ObserveResources {
            staked_sun: staked,
            delegatable_sun: delegatable,
            energy_limit: staked / 100,
            at,
        },
        Op::Reserve { order, sun } => WalletCommand::ReserveCapacity {
            order_id: order_id(order),
            sun,
        },
        Op::Release { order } => WalletCommand::ReleaseCapacity {
            order_id: order_id(order),
        },
        Op::Disable => WalletCommand::DisableWallet {
            reason: "maintenance".into(),
            actor: "admin:prop".into(),
            at,
        },
        Op::Enable => WalletCommand::EnableWallet {
            actor: "admin:prop".into(),
            at,
        },
    }
}

proptest! {
    #[test]
    fn capacity_is_never_overbooked_and_replay_reproduces_the_wallet(ops in prop::collection::vec(op(), 0..60)) {
        let register = WalletCommand::RegisterWallet {
            address: TronAddress::from_evm_bytes([7; 20]),
            key_ref: KeyRef::new("vault:prop"),
            at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        };
        let mut live = Wallet::default();
        let mut history = Vec::new();
        let commands = std::iter::once(register).chain(ops.iter().enumerate().map(|(i, op)| command(op, i as i64)));
        for cmd in commands {
            let was_disabled = !live.is_enabled();
            let free_before = live.free_sun();
            let is_reserve = matches!(cmd, WalletCommand::ReserveCapacity { .. });
            if let Ok(events) = live.decide(cmd, &()) {
                prop_assert!(!(is_reserve && was_disabled), "reserved on a disabled wallet");
                for event in events {
                    if let WalletEvent::CapacityReserved { sun, free_after, .. } = &event {
                        prop_assert!(*sun <= free_before);
                        prop_assert_eq!(*free_after, free_before - sun);
                    }
                    live.apply(event.clone());
                    history.push(event);
                }
            }
            prop_assert_eq!(live.free_sun(), live.staked_sun().saturating_sub(live.reserved_sun()));
        }
        prop_assert_eq!(&replay::<Wallet>(history.clone()), &live);
        let restored: Wallet = serde_json::from_value(serde_json::to_value(&live).unwrap()).unwrap();
        prop_assert_eq!(&restored, &live);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn a_long_history_keeps_a_bounded_memory_and_replay_still_reproduces_the_wallet(
        steps in prop::collection::vec((0u8..6, 1u16..2_500), SETTLED_IDS_KEPT..SETTLED_IDS_KEPT * 2)
    ) {
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let mut live = Wallet::default();
        let mut history = Vec::new();
        let mut run = |live: &mut Wallet, cmd: WalletCommand| {
            if let Ok(events) = live.decide(cmd, &()) {
                for event in events {
                    live.apply(event.clone());
                    history.push(event);
                }
            }
        };
        run(&mut live, WalletCommand::RegisterWallet {
            address: TronAddress::from_evm_bytes([7; 20]),
            key_ref: KeyRef::new("vault:prop"),
            at,
        });
        run(&mut live, WalletCommand::ObserveResources {
            staked_sun: 1_000_000,
            delegatable_sun: 1_000_000,
            energy_limit: 10_000,
            at,
        });
        let order_id = |n: usize| OrderId::parse(format!("ord-{n}")).unwrap();
        let mut orders = 0usize;
        for &(kind, back) in &steps {
            match kind {
                // A fresh order that is released again at once (4 in 6), or kept (1 in 6).
                0..=4 => {
                    orders += 1;
                    run(&mut live, WalletCommand::ReserveCapacity { order_id: order_id(orders), sun: 10 });
                    if kind > 0 {
                        run(&mut live, WalletCommand::ReleaseCapacity { order_id: order_id(orders) });
                    }
                }
                // An older order tries to reserve again.
                _ => {
                    let n = orders.saturating_sub(usize::from(back)).max(1);
                    run(&mut live, WalletCommand::ReserveCapacity { order_id: order_id(n), sun: 10 });
                }
            }
        }
        prop_assert!(live.released.len() <= SETTLED_IDS_KEPT);
        prop_assert_eq!(live.free_sun(), live.staked_sun().saturating_sub(live.reserved_sun()));
        prop_assert_eq!(&replay::<Wallet>(history.clone()), &live);
        let restored: Wallet = serde_json::from_value(serde_json::to_value(&live).unwrap()).unwrap();
        prop_assert_eq!(&restored, &live);
    }
}
