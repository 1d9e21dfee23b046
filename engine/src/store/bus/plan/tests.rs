//! The plan of a batch, without a database: decisions on the committed state, the rows they
//! append, and how the held state and its twin move on once the rows are written (or do not,
//! when they are not).

use chrono::{TimeZone, Utc};
use cqrs_es::Aggregate;

use super::*;
use crate::domain::account::{Account, AccountCommand, AccountEvent};
use crate::domain::ids::{AccountId, DepositId, OrderId};
use crate::domain::{replay, AccountError, Amount, Asset};
use crate::store::Actor;

/// An open account holding 10 TRX, as held in memory at version 2.
fn held() -> Loaded<Account> {
    let history = vec![
        AccountEvent::AccountOpened {
            account_id: AccountId::parse("tg:1").unwrap(),
            opened_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        },
        AccountEvent::FundsCredited {
            deposit_id: DepositId::parse(&"ab".repeat(32)).unwrap(),
            asset: Asset::Trx,
            amount: Amount::new(10_000_000).unwrap(),
            available_after: 10_000_000,
            reserved_after: 0,
        },
    ];
    Loaded {
        aggregate: replay(history),
        version: 2,
        events_read: 2,
        from_snapshot: false,
        snapshot_version: 0,
        snapshot_bytes: 0,
    }
}

fn order(n: u32) -> OrderId {
    OrderId::parse(format!("ord-{n}")).unwrap()
}

fn reserve(n: u32, sun: u64) -> AccountCommand {
    AccountCommand::ReserveFunds {
        order_id: order(n),
        asset: Asset::Trx,
        amount: Amount::new(sun).unwrap(),
    }
}

fn capture(n: u32) -> AccountCommand {
    AccountCommand::CaptureFunds { order_id: order(n) }
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("test", "bot"))
}

fn requests(commands: Vec<AccountCommand>) -> Vec<Request<Account>> {
    commands
        .into_iter()
        .map(|command| Request {
            command,
            meta: meta(),
        })
        .collect()
}

fn decide_batch(
    loaded: &Loaded<Account>,
    twin: &mut Option<Twin<Account>>,
    commands: Vec<AccountCommand>,
) -> Plan<Account> {
    decide(loaded, twin, &requests(commands), &()).unwrap()
}

fn accepted_events(decisions: &[Decision<Account>]) -> Vec<AccountEvent> {
    decisions
        .iter()
        .flat_map(|d| match d {
            Decision::Accepted { events, .. } => events.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// `n` made-up log positions, one per event written.
fn positions(n: usize) -> Vec<LogPosition> {
    (0..n as i64)
        .map(|i| LogPosition::new(7, 100 + i))
        .collect()
}

#[test]
fn a_batch_leaves_the_held_state_alone_until_its_append_is_committed() {
    let before = held();
    let mut loaded = before.clone();
    let mut twin = None;
    let plan = decide_batch(
        &loaded,
        &mut twin,
        vec![
            reserve(1, 6_000_000),
            reserve(2, 6_000_000),
            reserve(3, 4_000_000),
            capture(1),
        ],
    );
    assert_eq!(
        loaded, before,
        "an unwritten decision never reaches the held state"
    );
    assert_eq!(plan.events.len(), 3);
    assert!(matches!(
        plan.decisions[1],
        Decision::Rejected(AccountError::InsufficientFunds {
            available: 4_000_000,
            ..
        })
    ));

    let events = accepted_events(&plan.decisions);
    plan.commit(&mut loaded, &mut twin);
    assert_eq!(loaded.version, 5);
    let mut expected = held().aggregate;
    for event in events {
        expected.apply(event);
    }
    assert_eq!(loaded.aggregate, expected);
    assert_eq!(loaded.aggregate.balance(Asset::Trx).available, 0);
    assert!(
        loaded.aggregate.reservation(&order(1)).is_none(),
        "captured"
    );
    let twin = twin.expect("the copy the batch was decided on is kept");
    assert_eq!((twin.version, &twin.aggregate), (5, &expected));
}

#[test]
fn each_command_of_a_batch_is_decided_on_the_events_of_the_ones_before_it() {
    let loaded = held();
    let plan = decide_batch(
        &loaded,
        &mut None,
        vec![capture(1), reserve(1, 1_000_000), capture(1), capture(1)],
    );
    let kinds: Vec<&str> = plan
        .decisions
        .iter()
        .map(|d| match d {
            Decision::Accepted { .. } => "accepted",
            Decision::Rejected(AccountError::NoReservation { .. }) => "no_reservation",
            Decision::Rejected(AccountError::ReservationSettled { .. }) => "settled",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["no_reservation", "accepted", "accepted", "settled"]
    );
}

#[test]
fn events_are_numbered_from_the_held_version_and_every_command_gets_a_log_row() {
    let loaded = held();
    let plan = decide_batch(
        &loaded,
        &mut None,
        vec![
            reserve(1, 1),
            reserve(2, 20_000_000),
            reserve(3, 1),
            capture(3),
        ],
    );
    assert_eq!((plan.base_version, plan.version), (2, 5));
    let sequences: Vec<u64> = plan.events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![3, 4, 5]);
    assert_eq!(plan.events[0].event_type, "FundsReserved");
    let outcomes: Vec<serde_json::Value> = plan
        .log
        .iter()
        .map(|l| serde_json::from_str(&l.outcome).unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec![
            serde_json::json!({"accepted": {"first_sequence": 3, "last_sequence": 3}}),
            serde_json::json!({"rejected": {"code": "insufficient_funds", "asset": "TRX",
                "available": 9_999_999, "requested": 20_000_000}}),
            serde_json::json!({"accepted": {"first_sequence": 4, "last_sequence": 4}}),
            serde_json::json!({"accepted": {"first_sequence": 5, "last_sequence": 5}}),
        ],
        "a refusal is logged with its error, so its id keeps that answer"
    );
    let metadata: serde_json::Value = serde_json::from_str(&plan.events[0].metadata).unwrap();
    assert_eq!(
        metadata["command_id"],
        plan.log[0].command_id.to_string(),
        "each event carries its command's metadata"
    );
}

#[test]
fn each_answer_carries_the_positions_of_its_own_events() {
    let mut loaded = held();
    let mut twin = None;
    let batch = requests(vec![reserve(1, 1), reserve(2, 20_000_000), reserve(3, 1)]);
    let plan = decide(&loaded, &mut twin, &batch, &()).unwrap();
    let written = positions(plan.events.len());
    let decisions = plan.commit(&mut loaded, &mut twin);
    let answers = answers(&batch, decisions, &written);
    let first = answers[0].as_ref().unwrap();
    assert_eq!(first.command_id, batch[0].meta.command_id);
    let committed = first.result.as_ref().unwrap();
    assert_eq!(
        (committed.version, &committed.positions),
        (3, &written[..1].to_vec())
    );
    assert!(matches!(
        answers[1].as_ref().unwrap().result,
        Err(AccountError::InsufficientFunds { .. })
    ));
    let third = answers[2].as_ref().unwrap().result.as_ref().unwrap();
    assert_eq!(
        (third.version, third.positions.clone()),
        (4, written[1..].to_vec())
    );
    assert!(answers.iter().all(|a| !a.as_ref().unwrap().duplicate));
}

#[test]
fn a_command_id_twice_in_one_batch_is_decided_once_and_answered_twice() {
    let mut loaded = held();
    let mut twin = None;
    let mut batch = requests(vec![reserve(1, 1), reserve(1, 1)]);
    batch[1].meta = batch[0].meta.clone();
    let plan = decide(&loaded, &mut twin, &batch, &()).unwrap();
    assert_eq!((plan.events.len(), plan.log.len()), (1, 1), "one decision");
    let written = positions(1);
    let answers = answers(&batch, plan.commit(&mut loaded, &mut twin), &written);
    let (first, again) = (answers[0].as_ref().unwrap(), answers[1].as_ref().unwrap());
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(first.result, again.result);
}

#[test]
fn a_command_id_reused_in_one_batch_for_another_request_is_an_error_for_the_second() {
    let mut loaded = held();
    let mut twin = None;
    let mut batch = requests(vec![reserve(1, 1), reserve(1, 1)]);
    batch[0].meta = meta().with_fingerprint("body-a");
    batch[1].meta = batch[0].meta.clone().with_fingerprint("body-b");
    let plan = decide(&loaded, &mut twin, &batch, &()).unwrap();
    assert_eq!(plan.log.len(), 1);
    let answers = answers(&batch, plan.commit(&mut loaded, &mut twin), &positions(1));
    assert!(answers[0].as_ref().unwrap().is_accepted());
    assert!(matches!(
        answers[1],
        Err(Error::CommandIdReused { command_id, .. }) if command_id == batch[1].meta.command_id
    ));
}

#[test]
fn the_state_is_copied_once_and_then_kept_in_step_not_copied_per_batch() {
    let mut loaded = held();
    let mut twin = None;
    let mut copies = 0;
    let mut run = |loaded: &mut Loaded<Account>,
                   twin: &mut Option<Twin<Account>>,
                   commands: Vec<AccountCommand>,
                   written: bool| {
        let plan = decide_batch(loaded, twin, commands);
        copies += u32::from(plan.copied);
        let copied = plan.copy.is_some();
        if written {
            plan.commit(loaded, twin);
        }
        (copied, copies)
    };

    // One command, or a refusal before an acceptance: decided on the held state itself.
    assert_eq!(
        run(&mut loaded, &mut twin, vec![reserve(1, 1)], false),
        (false, 0)
    );
    let refused_first = vec![reserve(2, 20_000_000), reserve(2, 1)];
    assert_eq!(
        run(&mut loaded, &mut twin, refused_first, true),
        (false, 0),
        "a refusal writes no event to see"
    );

    // The first batch of two acceptances copies the state; the next ones use the twin.
    for n in [3, 5, 7] {
        run(
            &mut loaded,
            &mut twin,
            vec![reserve(n, 1), reserve(n + 1, 1)],
            true,
        );
    }
    assert_eq!(run(&mut loaded, &mut twin, vec![reserve(9, 1)], true).1, 1);
    // A single command keeps the twin in step.
    let t = twin.as_ref().unwrap();
    assert_eq!(
        (t.version, &t.aggregate),
        (loaded.version, &loaded.aggregate)
    );

    // A batch whose append fails takes the twin with it; the next batch copies again.
    run(
        &mut loaded,
        &mut twin,
        vec![reserve(10, 1), reserve(11, 1)],
        false,
    );
    assert!(twin.is_none());
    let before = loaded.clone();
    assert_eq!(
        run(
            &mut loaded,
            &mut twin,
            vec![reserve(10, 1), reserve(11, 1)],
            true
        )
        .1,
        2
    );
    assert_eq!(loaded.version, before.version + 2);
    assert_eq!(twin.unwrap().aggregate, loaded.aggregate);
}

#[test]
fn a_twin_left_behind_by_a_catch_up_is_not_used() {
    let mut loaded = held();
    let mut twin = None;
    decide_batch(&loaded, &mut twin, vec![reserve(1, 1), reserve(2, 1)])
        .commit(&mut loaded, &mut twin);
    assert_eq!(twin.as_ref().unwrap().version, loaded.version);
    // Another process appended; the held state caught up without the twin.
    let event = AccountEvent::FundsReserved {
        order_id: order(50),
        asset: Asset::Trx,
        amount: Amount::new(1).unwrap(),
        available_after: 9_999_997,
        reserved_after: 3,
    };
    loaded.aggregate.apply(event);
    loaded.version += 1;

    let plan = decide_batch(&loaded, &mut twin, vec![reserve(3, 1), reserve(4, 1)]);
    assert!(
        plan.copied,
        "the stale twin is dropped and the held state copied"
    );
    plan.commit(&mut loaded, &mut twin);
    assert_eq!(twin.unwrap().aggregate, loaded.aggregate);
}
