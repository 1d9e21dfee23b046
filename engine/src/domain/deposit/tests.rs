//! Given/when/then for every deposit command, and the parse boundary of its inputs.

use crate::domain::{DepositError, TransitionError};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};

use super::*;
use crate::domain::{replay, DomainAggregate, DomainCommand};

type DepositTest = TestFramework<Deposit>;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn txid() -> TxId {
    TxId::parse(&"c4".repeat(32)).unwrap()
}

fn account() -> AccountId {
    AccountId::parse("tg:123456").unwrap()
}

fn customer() -> TronAddress {
    TronAddress::from_evm_bytes([0x22; 20])
}

fn deposit_address() -> TronAddress {
    TronAddress::from_evm_bytes([0xd0; 20])
}

fn amount() -> Amount {
    Amount::new(25_000_000).unwrap()
}

fn detect(asset: Asset, log_index: Option<u32>) -> DepositCommand {
    DepositCommand::DetectDeposit {
        account_id: account(),
        asset,
        amount: amount(),
        txid: txid(),
        log_index,
        from: customer(),
        to: deposit_address(),
        block_number: 70_000_000,
        at: t(0),
    }
}

fn detected(asset: Asset, log_index: Option<u32>) -> DepositEvent {
    DepositEvent::DepositDetected {
        deposit_id: DepositId::new(txid(), log_index),
        account_id: account(),
        asset,
        amount: amount(),
        txid: txid(),
        log_index,
        from: customer(),
        to: deposit_address(),
        block_number: 70_000_000,
        at: t(0),
    }
}

fn id() -> DepositId {
    DepositId::new(txid(), None)
}

fn confirmed() -> DepositEvent {
    DepositEvent::DepositConfirmed {
        deposit_id: id(),
        account_id: account(),
        asset: Asset::Trx,
        amount: amount(),
        block_number: 70_000_019,
        at: t(1),
    }
}

fn credited() -> DepositEvent {
    DepositEvent::DepositCredited {
        deposit_id: id(),
        account_id: account(),
        asset: Asset::Trx,
        amount: amount(),
        at: t(2),
    }
}

fn rejected(reason: DepositRejection) -> DepositEvent {
    DepositEvent::DepositRejected {
        deposit_id: id(),
        account_id: account(),
        asset: Asset::Trx,
        amount: amount(),
        reason,
        at: t(2),
    }
}

fn wrong_state(state: &str, command: &str) -> DepositError {
    DepositError::from(TransitionError::InvalidTransition {
        state: state.into(),
        command: command.into(),
    })
}

// ---- DetectDeposit --------------------------------------------------------------------------

#[test]
fn a_trx_deposit_is_detected_under_its_txid() {
    DepositTest::with(())
        .given_no_previous_events()
        .when(detect(Asset::Trx, None))
        .then_expect_events(vec![detected(Asset::Trx, None)]);
}

#[test]
fn a_usdt_deposit_is_detected_under_its_txid_and_log_index() {
    let events = DepositTest::with(())
        .given_no_previous_events()
        .when(detect(Asset::Usdt, Some(2)))
        .inspect_result()
        .unwrap();
    assert_eq!(events, vec![detected(Asset::Usdt, Some(2))]);
    let DepositEvent::DepositDetected { deposit_id, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(deposit_id.to_string(), format!("{}:2", "c4".repeat(32)));
}

#[test]
fn a_rescanned_deposit_is_not_detected_twice() {
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None)])
        .when(detect(Asset::Trx, None))
        .then_expect_error(DepositError::DepositAlreadyDetected { deposit_id: id() });
}

#[test]
fn a_usdt_deposit_without_a_log_index_or_a_trx_deposit_with_one_is_refused() {
    DepositTest::with(())
        .given_no_previous_events()
        .when(detect(Asset::Usdt, None))
        .then_expect_error(DepositError::LogIndexMismatch {
            asset: Asset::Usdt,
            log_index: None,
        });
    DepositTest::with(())
        .given_no_previous_events()
        .when(detect(Asset::Trx, Some(0)))
        .then_expect_error(DepositError::LogIndexMismatch {
            asset: Asset::Trx,
            log_index: Some(0),
        });
}

#[test]
fn malformed_txids_amounts_and_addresses_do_not_deserialise_into_a_deposit() {
    let json = |txid: &str, amount: &str, from: &str| {
        format!(
            r#"{{"DetectDeposit":{{"account_id":"tg:1","asset":"TRX","amount":{amount},"txid":"{txid}","log_index":null,
               "from":"{from}","to":"TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE","block_number":1,"at":"2025-03-01T12:00:00Z"}}}}"#
        )
    };
    let (tx, from) = ("c4".repeat(32), "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE");
    assert!(serde_json::from_str::<DepositCommand>(&json(&tx, "1", from)).is_ok());
    for bad in [
        json(&tx[..63], "1", from),
        json(&format!("{}zz", &tx[..62]), "1", from),
        json(&tx, "0", from),
        json(&tx, "-1", from),
        json(&tx, "1", "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFs"),
    ] {
        assert!(
            serde_json::from_str::<DepositCommand>(&bad).is_err(),
            "{bad}"
        );
    }
    assert_eq!(TxId::parse(&tx[..63]).unwrap_err().code(), "invalid_id");
}

// ---- ConfirmDeposit -------------------------------------------------------------------------

#[test]
fn a_deposit_in_a_solidified_block_is_confirmed() {
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None)])
        .when(DepositCommand::ConfirmDeposit {
            block_number: 70_000_019,
            at: t(1),
        })
        .then_expect_events(vec![confirmed()]);
}

#[test]
fn an_undetected_or_already_confirmed_deposit_is_not_confirmed() {
    let cmd = || DepositCommand::ConfirmDeposit {
        block_number: 1,
        at: t(1),
    };
    DepositTest::with(())
        .given_no_previous_events()
        .when(cmd())
        .then_expect_error(wrong_state("New", "ConfirmDeposit"));
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None), confirmed()])
        .when(cmd())
        .then_expect_error(wrong_state("Confirmed", "ConfirmDeposit"));
}

// ---- MarkCredited ---------------------------------------------------------------------------

#[test]
fn a_confirmed_deposit_is_marked_credited() {
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None), confirmed()])
        .when(DepositCommand::MarkCredited { at: t(2) })
        .then_expect_events(vec![credited()]);
}

#[test]
fn an_unconfirmed_deposit_is_never_credited() {
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None)])
        .when(DepositCommand::MarkCredited { at: t(2) })
        .then_expect_error(wrong_state("Detected", "MarkCredited"));
}

#[test]
fn a_deposit_is_credited_once() {
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None), confirmed(), credited()])
        .when(DepositCommand::MarkCredited { at: t(3) })
        .then_expect_error(wrong_state("Credited", "MarkCredited"));
}

// ---- RejectDeposit --------------------------------------------------------------------------

#[test]
fn a_deposit_that_failed_on_chain_is_rejected() {
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None)])
        .when(DepositCommand::RejectDeposit {
            reason: DepositRejection::FailedOnChain,
            at: t(2),
        })
        .then_expect_events(vec![rejected(DepositRejection::FailedOnChain)]);
}

#[test]
fn a_confirmed_deposit_below_the_minimum_is_rejected() {
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None), confirmed()])
        .when(DepositCommand::RejectDeposit {
            reason: DepositRejection::BelowMinimum,
            at: t(2),
        })
        .then_expect_events(vec![rejected(DepositRejection::BelowMinimum)]);
}

#[test]
fn a_credited_or_rejected_deposit_cannot_be_rejected() {
    let cmd = || DepositCommand::RejectDeposit {
        reason: DepositRejection::Vanished,
        at: t(3),
    };
    DepositTest::with(())
        .given(vec![detected(Asset::Trx, None), confirmed(), credited()])
        .when(cmd())
        .then_expect_error(wrong_state("Credited", "RejectDeposit"));
    DepositTest::with(())
        .given(vec![
            detected(Asset::Trx, None),
            rejected(DepositRejection::Vanished),
        ])
        .when(cmd())
        .then_expect_error(wrong_state("Rejected", "RejectDeposit"));
    DepositTest::with(())
        .given_no_previous_events()
        .when(cmd())
        .then_expect_error(wrong_state("New", "RejectDeposit"));
}

// ---- plumbing -------------------------------------------------------------------------------

#[test]
fn a_deposit_rebuilt_from_events_or_a_snapshot_equals_itself_and_names_are_stable() {
    let history = vec![detected(Asset::Trx, None), confirmed(), credited()];
    let live = replay::<Deposit>(history.clone());
    assert_eq!(live.status(), DepositStatus::Credited);
    assert_eq!(live.confirmed_block(), Some(70_000_019));
    let restored: Deposit = serde_json::from_value(serde_json::to_value(&live).unwrap()).unwrap();
    assert_eq!(restored, live);
    for event in &history {
        let back: DepositEvent =
            serde_json::from_value(serde_json::to_value(event).unwrap()).unwrap();
        assert_eq!(&back, event);
    }
    assert_eq!(history[2].event_type(), "DepositCredited");
    assert_eq!(history[0].event_version(), "1.0");
    assert_eq!(detect(Asset::Trx, None).command_type(), "DetectDeposit");
    assert_eq!(Deposit::TYPE, "deposit");
    assert_eq!(<Deposit as DomainAggregate>::STATE_SCHEMA, "deposit/1");
}
