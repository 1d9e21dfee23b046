//! Properties of the order over random command sequences: the state rebuilt from the emitted
//! events (and from a serde snapshot) equals the live one, and the delegation bounds hold.

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::*;
use crate::domain::{replay, DomainAggregate};

/// A command kind and the raw choices used to fill it in from the current state.
#[derive(Debug, Clone)]
struct Step {
    /// Take the next step of the happy path instead of `kind`.
    follow: bool,
    kind: u8,
    pick: u8,
    flag: bool,
    minutes: i64,
}

fn step() -> impl Strategy<Value = Step> {
    let minutes = prop_oneof![4 => 0i64..90, 1 => 0i64..50_000];
    (any::<bool>(), 0u8..17, any::<u8>(), any::<bool>(), minutes).prop_map(
        |(follow, kind, pick, flag, minutes)| Step {
            follow,
            kind,
            pick,
            flag,
            minutes,
        },
    )
}

fn pick<T: Clone>(choices: &[T], n: u8) -> T {
    choices[usize::from(n) % choices.len()].clone()
}

/// A plausible command: uses the order's current txids most of the time, so deep states are reached.
fn command(order: &Order, s: &Step, now: DateTime<Utc>) -> OrderCommand {
    use OrderCommand::*;
    let wallets = [wallet_a(), wallet_b(), wallet_c(), outsider()];
    let current_txid =
        |signed: Option<&SignedTx>| match (signed, s.flag || !s.pick.is_multiple_of(5)) {
            (Some(signed), true) => signed.txid.clone(),
            _ => txid(s.pick),
        };
    let delegation_tx = order.delegation().and_then(|d| d.signed.as_ref());
    let reclaim_tx = order.reclaim().and_then(|r| r.signed.as_ref());
    let hex = if s.pick.is_multiple_of(7) {
        "nothex"
    } else {
        "0a0b"
    };
    let expiration_ms = (now + TimeDelta::seconds(60)).timestamp_millis();
    if s.follow {
        if let Some(next) = happy_next(order, s, now) {
            return next;
        }
    }
    match s.kind {
        0 => PlaceOrder {
            account_id: account(),
            receiver: pick(&[receiver(), receiver(), receiver(), wallet_a()], s.pick),
            energy: pick(&[65_000, 32_000, 5_000_000, 0, 31_999, 131_000], s.pick),
            duration: pick(
                &[
                    DurationTier::OneHour,
                    DurationTier::OneDay,
                    DurationTier::ThirtyDays,
                ],
                s.pick,
            ),
            asset: if s.flag { Asset::Trx } else { Asset::Usdt },
            max_price: if s.pick.is_multiple_of(4) {
                Some(u64::from(s.pick) * 10_000)
            } else {
                None
            },
            at: now,
        },
        1 => MarkPaid { at: now },
        2 => RejectOrder {
            reason: if s.flag {
                RejectionReason::InsufficientFunds
            } else {
                RejectionReason::Invalid("bad".into())
            },
            at: now,
        },
        3 => CancelOrder {
            by: if s.flag {
                CancelledBy::Customer
            } else {
                CancelledBy::UnpaidTimeout
            },
            at: now,
        },
        4 | 5 => RequestDelegation {
            wallet: pick(&wallets, s.pick),
            delegate_sun: pick(&[SUN, 1, 0], s.pick / 4),
            at: now,
        },
        6 => RecordDelegationSigned {
            txid: txid(s.pick),
            signed_tx_hex: hex.into(),
            expiration_ms,
            at: now,
        },
        7 => RecordDelegationExpired {
            txid: current_txid(delegation_tx),
            at: now,
        },
        8 => ConfirmDelegation {
            txid: current_txid(delegation_tx),
            block_number: u64::from(s.pick),
            at: now,
        },
        9 => FailDelegation {
            reason: "boom".into(),
            retryable: s.flag || !s.pick.is_multiple_of(3),
            at: now,
        },
        10 => RefundOrder {
            reason: "gave up".into(),
            at: now,
        },
        11 => RequestReclaim { at: now },
        12 => RecordReclaimSigned {
            txid: txid(s.pick),
            signed_tx_hex: hex.into(),
            expiration_ms,
            at: now,
        },
        13 => RecordReclaimExpired {
            txid: current_txid(reclaim_tx),
            at: now,
        },
        14 => FailReclaim {
            reason: "boom".into(),
            at: now,
        },
        15 => ConfirmReclaim {
            txid: current_txid(reclaim_tx),
            block_number: u64::from(s.pick),
            at: now,
        },
        _ => CompleteOrder { at: now },
    }
}

/// The next command on the way to completion, if the order has one.
fn happy_next(order: &Order, s: &Step, now: DateTime<Utc>) -> Option<OrderCommand> {
    use OrderCommand::*;
    let signed_txid = |signed: Option<&SignedTx>| signed.map(|x| x.txid.clone());
    let untried = [wallet_a(), wallet_b(), wallet_c()]
        .into_iter()
        .find(|w| !order.failed_wallets().contains(w));
    Some(match order.status() {
        OrderStatus::New => place(),
        OrderStatus::Placed => MarkPaid { at: now },
        OrderStatus::Paid | OrderStatus::DelegationFailed => RequestDelegation {
            wallet: untried?,
            delegate_sun: SUN,
            at: now,
        },
        OrderStatus::DelegationRequested => RecordDelegationSigned {
            txid: txid(s.pick),
            signed_tx_hex: "0a0b".into(),
            expiration_ms: (now + TimeDelta::seconds(60)).timestamp_millis(),
            at: now,
        },
        OrderStatus::DelegationSigned => ConfirmDelegation {
            txid: signed_txid(order.delegation()?.signed.as_ref())?,
            block_number: 7,
            at: now,
        },
        OrderStatus::Active => RequestReclaim {
            at: now.max(order.active_until()?),
        },
        OrderStatus::ReclaimRequested => sign_reclaim(s.pick),
        OrderStatus::ReclaimSigned => ConfirmReclaim {
            txid: signed_txid(order.reclaim()?.signed.as_ref())?,
            block_number: 9,
            at: now,
        },
        OrderStatus::Reclaimed => CompleteOrder { at: now },
        _ => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_order_rebuilt_from_its_events_equals_the_live_one(steps in prop::collection::vec(step(), 0..80)) {
        let policy = policy();
        let mut live = Order::default();
        let mut history = Vec::new();
        let mut now = t(0);
        for s in &steps {
            now += TimeDelta::minutes(s.minutes);
            let cmd = command(&live, s, now);
            if let Ok(events) = live.decide(cmd, &policy) {
                for event in events {
                    live.apply(event.clone());
                    history.push(event);
                }
            }
            prop_assert!(live.attempts() <= policy.max_delegation_attempts);
            prop_assert!(live.failed_wallets().len() as u32 <= live.attempts());
            prop_assert!(live.failed_wallets().iter().all(|w| policy.pool_wallets.contains(w)));
            if let Some(d) = live.delegation() {
                prop_assert!(!live.failed_wallets().contains(&d.wallet));
            }
            if matches!(live.status(), OrderStatus::Active | OrderStatus::ReclaimRequested | OrderStatus::ReclaimSigned | OrderStatus::Reclaimed | OrderStatus::Completed) {
                prop_assert!(live.delegation().is_some_and(|d| d.confirmed.is_some()));
            }
        }
        prop_assert_eq!(&replay::<Order>(history.clone()), &live);

        let restored: Order = serde_json::from_value(serde_json::to_value(&live).unwrap()).unwrap();
        prop_assert_eq!(&restored, &live);

        let stored: Vec<OrderEvent> = history
            .iter()
            .map(|e| serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap())
            .collect();
        prop_assert_eq!(stored, history);
    }
}

#[test]
fn random_sequences_do_reach_the_end_of_the_lifecycle() {
    // A guard on the generator: the property above is only worth something if deep states occur.
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let policy = policy();
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..2_000 {
        let steps = prop::collection::vec(step(), 0..80)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut order = Order::default();
        let mut now = t(0);
        for s in &steps {
            now += TimeDelta::minutes(s.minutes);
            if let Ok(events) = order.decide(command(&order, s, now), &policy) {
                events.into_iter().for_each(|e| order.apply(e));
            }
            reached.insert(order.status().as_str());
        }
    }
    for status in [
        "Completed",
        "Refunded",
        "Cancelled",
        "Rejected",
        "ReclaimSigned",
        "DelegationFailed",
    ] {
        assert!(
            reached.contains(status),
            "never reached {status}: {reached:?}"
        );
    }
}
