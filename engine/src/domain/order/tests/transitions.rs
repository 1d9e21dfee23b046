//! The whole state machine as a table: every command in every state either succeeds (where the
//! lifecycle allows it) or is refused with `InvalidTransition` naming the state and command.

use super::*;
use crate::domain::OrderError;
use crate::domain::{DomainAggregate, DomainCommand};
use OrderStatus as S;

fn states() -> Vec<(OrderStatus, Vec<OrderEvent>)> {
    vec![
        (S::New, vec![]),
        (S::Placed, given::placed()),
        (S::Paid, given::paid()),
        (S::Rejected, given::rejected()),
        (S::Cancelled, given::cancelled()),
        (S::DelegationRequested, given::requested()),
        (S::DelegationSigned, given::signed()),
        (S::DelegationFailed, given::failed()),
        (S::Active, given::active()),
        (S::ReclaimRequested, given::reclaim_requested()),
        (S::ReclaimSigned, given::reclaim_signed()),
        (S::Reclaimed, given::reclaimed()),
        (S::Completed, given::completed()),
        (S::Refunded, given::refunded()),
    ]
}

/// Each command (valid wherever it is allowed) and the states that allow it.
fn commands() -> Vec<(OrderCommand, Vec<OrderStatus>)> {
    use OrderCommand::*;
    let late = t(100);
    vec![
        (MarkPaid { at: t(1) }, vec![S::Placed]),
        (
            RejectOrder {
                reason: RejectionReason::InsufficientFunds,
                at: t(1),
            },
            vec![S::Placed],
        ),
        (
            CancelOrder {
                by: CancelledBy::Customer,
                at: t(1),
            },
            vec![S::Placed, S::Paid],
        ),
        (
            CancelOrder {
                by: CancelledBy::UnpaidTimeout,
                at: late,
            },
            vec![S::Placed],
        ),
        (request(wallet_b()), vec![S::Paid, S::DelegationFailed]),
        (sign(1), vec![S::DelegationRequested]),
        (
            RecordDelegationExpired {
                txid: txid(1),
                at: late,
            },
            vec![S::DelegationSigned],
        ),
        (
            ConfirmDelegation {
                txid: txid(1),
                block_number: 1,
                at: t(3),
            },
            vec![S::DelegationSigned],
        ),
        (
            FailDelegation {
                reason: "x".into(),
                retryable: true,
                at: t(3),
            },
            vec![S::DelegationRequested, S::DelegationSigned],
        ),
        (
            RefundOrder {
                reason: "x".into(),
                at: t(4),
            },
            vec![S::Paid, S::DelegationFailed],
        ),
        (RequestReclaim { at: late }, vec![S::Active]),
        (sign_reclaim(9), vec![S::ReclaimRequested]),
        (
            RecordReclaimExpired {
                txid: txid(9),
                at: late,
            },
            vec![S::ReclaimSigned],
        ),
        (
            FailReclaim {
                reason: "x".into(),
                at: t(65),
            },
            vec![S::ReclaimRequested, S::ReclaimSigned],
        ),
        (
            ConfirmReclaim {
                txid: txid(9),
                block_number: 1,
                at: t(65),
            },
            vec![S::ReclaimSigned],
        ),
        (CompleteOrder { at: t(66) }, vec![S::Reclaimed]),
    ]
}

#[test]
fn the_fixture_histories_reach_the_states_they_are_named_after() {
    for (status, history) in states() {
        assert_eq!(crate::domain::replay::<Order>(history).status(), status);
    }
}

#[test]
fn every_command_in_a_state_that_does_not_allow_it_is_an_invalid_transition() {
    let policy = policy();
    let mut checked = 0;
    for (status, history) in states() {
        let order = crate::domain::replay::<Order>(history);
        for (command, allowed) in commands() {
            let name = command.command_type();
            let result = order.decide(command, &policy);
            if allowed.contains(&status) {
                assert!(result.is_ok(), "{name} in {status:?}: {result:?}");
            } else {
                assert_eq!(
                    result,
                    Err(wrong_state(status.as_str(), name)),
                    "{name} in {status:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 14 * 16 - 21);
}

#[test]
fn placing_is_allowed_only_for_a_new_order() {
    for (status, history) in states() {
        let result = crate::domain::replay::<Order>(history).decide(place(), &policy());
        match status {
            S::New => assert_eq!(result, Ok(vec![placed()])),
            _ => assert_eq!(result, Err(OrderError::OrderAlreadyPlaced), "{status:?}"),
        }
    }
}

#[test]
fn final_states_are_exactly_the_four_exits() {
    let finals: Vec<_> = states()
        .into_iter()
        .map(|(s, _)| s)
        .filter(|s| s.is_final())
        .collect();
    assert_eq!(
        finals,
        vec![S::Rejected, S::Cancelled, S::Completed, S::Refunded]
    );
}

#[test]
fn order_names_are_stable() {
    use cqrs_es::{Aggregate, DomainEvent};
    assert_eq!(place().command_type(), "PlaceOrder");
    assert_eq!(sign(1).command_type(), "RecordDelegationSigned");
    assert_eq!(placed().event_type(), "OrderPlaced");
    assert_eq!(reclaimed().event_type(), "Reclaimed");
    assert_eq!(activated().event_version(), "1.0");
    assert_eq!(Order::TYPE, "order");
    assert_eq!(<Order as DomainAggregate>::STATE_SCHEMA, "order/1");
    let json = serde_json::to_value(placed()).unwrap();
    assert_eq!(json["OrderPlaced"]["quote"]["price"], PRICE);
    assert_eq!(json["OrderPlaced"]["duration"], "1h");
}

#[test]
fn the_whole_happy_path_runs_through_handle_and_the_state_matches_a_replay() {
    use OrderCommand::*;
    let policy = policy();
    let steps = vec![
        place(),
        MarkPaid { at: t(1) },
        request(wallet_a()),
        sign(1),
        ConfirmDelegation {
            txid: txid(1),
            block_number: 70_000_000,
            at: t(3),
        },
        RequestReclaim { at: t(63) },
        sign_reclaim(9),
        ConfirmReclaim {
            txid: txid(9),
            block_number: 70_001_200,
            at: t(65),
        },
        CompleteOrder { at: t(66) },
    ];
    let mut history = Vec::new();
    for step in steps {
        let events = OrderTest::with(policy.clone())
            .given(history.clone())
            .when(step)
            .inspect_result()
            .unwrap();
        history.extend(events);
    }
    assert_eq!(history, given::completed());
}
