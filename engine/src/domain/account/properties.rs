//! Properties of the account over random command sequences: balances never go below zero and
//! the running totals always explain them; replaying the emitted events (or a serde snapshot)
//! gives back the live state exactly.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::money::MAX_AMOUNT;
use crate::domain::recent::SETTLED_IDS_KEPT;
use crate::domain::{replay, DomainAggregate};

#[derive(Debug, Clone)]
enum Op {
    Credit {
        deposit: u8,
        usdt: bool,
        amount: u64,
    },
    Reserve {
        order: u8,
        usdt: bool,
        amount: u64,
    },
    Capture {
        order: u8,
    },
    Release {
        order: u8,
    },
    Adjust {
        usdt: bool,
        delta: i64,
    },
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 1u64..=10_000_000,
        1 => Just(MAX_AMOUNT),
        1 => (MAX_AMOUNT - 1_000)..=MAX_AMOUNT,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, any::<bool>(), amount()).prop_map(|(deposit, usdt, amount)| Op::Credit { deposit, usdt, amount }),
        4 => (0u8..8, any::<bool>(), amount()).prop_map(|(order, usdt, amount)| Op::Reserve { order, usdt, amount }),
        2 => (0u8..8).prop_map(|order| Op::Capture { order }),
        2 => (0u8..8).prop_map(|order| Op::Release { order }),
        2 => (any::<bool>(), prop_oneof![-20_000_000i64..=20_000_000, any::<i64>()])
            .prop_map(|(usdt, delta)| Op::Adjust { usdt, delta }),
    ]
}

fn asset(usdt: bool) -> Asset {
    if usdt {
        Asset::Usdt
    } else {
        Asset::Trx
    }
}

fn order_id(n: u8) -> OrderId {
    OrderId::parse(format!("ord-{n}")).unwrap()
}

fn command(op: &Op) -> Option<AccountCommand> {
    Some(match op.clone() {
        Op::Credit {
            deposit,
            usdt,
            amount,
        } => AccountCommand::CreditDeposit {
            deposit_id: DepositId::parse(&format!("{deposit:02x}").repeat(32)).unwrap(),
            asset: asset(usdt),
            amount: Amount::new(amount).ok()?,
        },
        Op::Reserve {
            order,
            usdt,
            amount,
        } => AccountCommand::ReserveFunds {
            order_id: order_id(order),
            asset: asset(usdt),
            amount: Amount::new(amount).ok()?,
        },
        Op::Capture { order } => AccountCommand::CaptureFunds {
            order_id: order_id(order),
        },
        Op::Release { order } => AccountCommand::ReleaseFunds {
            order_id: order_id(order),
            reason: "refund".into(),
        },
        Op::Adjust { usdt, delta } => AccountCommand::AdjustBalance {
            asset: asset(usdt),
            delta,
            reason: "correction".into(),
            actor: "admin:prop".into(),
        },
    })
}

/// The sum of held reservations in `asset`, from the reservation records.
fn held(account: &Account, asset: Asset) -> u128 {
    account
        .reservations
        .values()
        .filter(|r| r.asset == asset)
        .map(|r| u128::from(r.amount.units()))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_commands_never_drive_a_balance_below_zero_and_replay_reproduces_the_state(
        ops in prop::collection::vec(op(), 0..60)
    ) {
        let open = AccountCommand::OpenAccount {
            account_id: AccountId::parse("tg:1").unwrap(),
            at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        };
        let mut live = Account::default();
        let mut history = Vec::new();
        for cmd in std::iter::once(open).chain(ops.iter().filter_map(command)) {
            let before = live.clone();
            match live.decide(cmd, &()) {
                Ok(events) => {
                    for event in events {
                        live.apply(event.clone());
                        history.push(event);
                    }
                }
                Err(_) => prop_assert_eq!(&live, &before),
            }
            for asset in Asset::ALL {
                let b = live.balance(asset);
                prop_assert!(b.is_consistent(), "{asset}: {b:?}");
                prop_assert!(b.available <= MAX_AMOUNT && b.reserved <= MAX_AMOUNT);
                prop_assert_eq!(u128::from(b.reserved), held(&live, asset));
            }
        }
        prop_assert_eq!(&replay::<Account>(history.clone()), &live);

        let snapshot = serde_json::to_value(&live).unwrap();
        let restored: Account = serde_json::from_value(snapshot).unwrap();
        prop_assert_eq!(&restored, &live);

        let stored: Vec<AccountEvent> = history
            .iter()
            .map(|e| serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap())
            .collect();
        prop_assert_eq!(stored, history);
    }
}

/// One step of a long history: a fresh order reserved and then (usually) settled, a fresh
/// deposit credited, or an old order reserved again.
#[derive(Debug, Clone)]
enum Step {
    Order { settle: u8 },
    Credit,
    Again { back: u16 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u8..5).prop_map(|settle| Step::Order { settle }),
        2 => Just(Step::Credit),
        1 => (1u16..2_500).prop_map(|back| Step::Again { back }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn long_histories_keep_a_bounded_memory_and_replay_still_reproduces_the_state(
        steps in prop::collection::vec(step(), SETTLED_IDS_KEPT..SETTLED_IDS_KEPT * 2)
    ) {
        let mut live = Account::default();
        let mut history = Vec::new();
        let mut run = |live: &mut Account, cmd: AccountCommand| {
            if let Ok(events) = live.decide(cmd, &()) {
                for event in events {
                    live.apply(event.clone());
                    history.push(event);
                }
            }
        };
        run(&mut live, AccountCommand::OpenAccount {
            account_id: AccountId::parse("tg:1").unwrap(),
            at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        });
        run(&mut live, AccountCommand::CreditDeposit {
            deposit_id: DepositId::parse(&"ee".repeat(32)).unwrap(),
            asset: Asset::Trx,
            amount: Amount::new(10_000).unwrap(),
        });
        let long_order = |n: usize| OrderId::parse(format!("ord-{n}")).unwrap();
        let mut orders = 0usize;
        let mut deposits = 0usize;
        for step in &steps {
            match *step {
                Step::Order { settle } => {
                    orders += 1;
                    let order_id = long_order(orders);
                    run(&mut live, AccountCommand::ReserveFunds {
                        order_id: order_id.clone(),
                        asset: Asset::Trx,
                        amount: Amount::new(1 + orders as u64 % 7).unwrap(),
                    });
                    match settle {
                        0 => {}
                        1 | 2 => run(&mut live, AccountCommand::CaptureFunds { order_id }),
                        _ => run(&mut live, AccountCommand::ReleaseFunds {
                            order_id,
                            reason: "refund".into(),
                        }),
                    }
                }
                Step::Credit => {
                    deposits += 1;
                    run(&mut live, AccountCommand::CreditDeposit {
                        deposit_id: DepositId::parse(&format!("{deposits:064x}")).unwrap(),
                        asset: Asset::Trx,
                        amount: Amount::new(1_000).unwrap(),
                    });
                }
                Step::Again { back } => {
                    let n = orders.saturating_sub(usize::from(back)).max(1);
                    run(&mut live, AccountCommand::ReserveFunds {
                        order_id: long_order(n),
                        asset: Asset::Trx,
                        amount: Amount::new(1).unwrap(),
                    });
                }
            }
        }
        prop_assert!(live.settled.len() <= SETTLED_IDS_KEPT);
        prop_assert!(live.credited_deposits.len() <= SETTLED_IDS_KEPT);
        let b = live.balance(Asset::Trx);
        prop_assert!(b.is_consistent(), "{b:?}");
        prop_assert_eq!(u128::from(b.reserved), held(&live, Asset::Trx));
        prop_assert_eq!(&replay::<Account>(history.clone()), &live);
        let restored: Account =
            serde_json::from_value(serde_json::to_value(&live).unwrap()).unwrap();
        prop_assert_eq!(&restored, &live);
    }
}
