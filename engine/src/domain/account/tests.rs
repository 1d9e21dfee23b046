//! Given/when/then for every account command: each success and each refusal.

use crate::domain::{AccountError, FieldError};
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;

use super::Settlement;
use super::*;
use crate::domain::money::MAX_AMOUNT;
use crate::domain::money::{AmountError, UnknownAsset};
use crate::domain::DomainCommand;
use crate::domain::{replay, DomainAggregate};

type AccountTest = TestFramework<Account>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn amount(units: u64) -> Amount {
    Amount::new(units).unwrap()
}

fn order(n: u32) -> OrderId {
    OrderId::parse(format!("ord-{n}")).unwrap()
}

fn deposit(n: u8) -> DepositId {
    DepositId::parse(&format!("{n:02x}").repeat(32)).unwrap()
}

fn opened() -> AccountEvent {
    AccountEvent::AccountOpened {
        account_id: AccountId::parse("tg:123456").unwrap(),
        opened_at: at(),
    }
}

fn credited(n: u8, asset: Asset, units: u64, available_after: u64) -> AccountEvent {
    AccountEvent::FundsCredited {
        deposit_id: deposit(n),
        asset,
        amount: amount(units),
        available_after,
        reserved_after: 0,
    }
}

fn reserved(n: u32, units: u64, available_after: u64, reserved_after: u64) -> AccountEvent {
    AccountEvent::FundsReserved {
        order_id: order(n),
        asset: Asset::Trx,
        amount: amount(units),
        available_after,
        reserved_after,
    }
}

fn captured(n: u32, units: u64, available_after: u64, reserved_after: u64) -> AccountEvent {
    AccountEvent::FundsCaptured {
        order_id: order(n),
        asset: Asset::Trx,
        amount: amount(units),
        available_after,
        reserved_after,
    }
}

fn released(n: u32, units: u64, available_after: u64, reserved_after: u64) -> AccountEvent {
    AccountEvent::FundsReleased {
        order_id: order(n),
        asset: Asset::Trx,
        amount: amount(units),
        reason: "delegation failed".into(),
        available_after,
        reserved_after,
    }
}

/// An open account holding 10 TRX (10,000,000 sun).
fn with_ten_trx() -> Vec<AccountEvent> {
    vec![opened(), credited(1, Asset::Trx, 10_000_000, 10_000_000)]
}

fn with(events: &[AccountEvent]) -> Vec<AccountEvent> {
    let mut all = with_ten_trx();
    all.extend_from_slice(events);
    all
}

fn credit(n: u8, asset: Asset, units: u64) -> AccountCommand {
    AccountCommand::CreditDeposit {
        deposit_id: deposit(n),
        asset,
        amount: amount(units),
    }
}

fn reserve(n: u32, units: u64) -> AccountCommand {
    AccountCommand::ReserveFunds {
        order_id: order(n),
        asset: Asset::Trx,
        amount: amount(units),
    }
}

fn release(n: u32) -> AccountCommand {
    AccountCommand::ReleaseFunds {
        order_id: order(n),
        reason: "delegation failed".into(),
    }
}

fn adjust(delta: i64) -> AccountCommand {
    AccountCommand::AdjustBalance {
        asset: Asset::Trx,
        delta,
        reason: "chargeback #7".into(),
        actor: "admin:alice".into(),
    }
}

fn adjusted(delta: i64, available_after: u64, reserved_after: u64) -> AccountEvent {
    AccountEvent::BalanceAdjusted {
        asset: Asset::Trx,
        delta,
        reason: "chargeback #7".into(),
        actor: "admin:alice".into(),
        available_after,
        reserved_after,
    }
}

// ---- OpenAccount ----------------------------------------------------------------------------

#[test]
fn opening_a_new_account_records_who_and_when() {
    let cmd = AccountCommand::OpenAccount {
        account_id: AccountId::parse("tg:123456").unwrap(),
        at: at(),
    };
    AccountTest::with(())
        .given_no_previous_events()
        .when(cmd)
        .then_expect_events(vec![opened()]);
}

#[test]
fn opening_an_account_twice_is_refused() {
    let cmd = AccountCommand::OpenAccount {
        account_id: AccountId::parse("tg:123456").unwrap(),
        at: at(),
    };
    AccountTest::with(())
        .given(vec![opened()])
        .when(cmd)
        .then_expect_error(AccountError::AccountAlreadyOpen);
}

#[test]
fn every_other_command_needs_an_open_account() {
    let commands = [
        credit(1, Asset::Trx, 1),
        reserve(1, 1),
        AccountCommand::CaptureFunds { order_id: order(1) },
        release(1),
        adjust(5),
    ];
    for cmd in commands {
        AccountTest::with(())
            .given_no_previous_events()
            .when(cmd)
            .then_expect_error(AccountError::AccountNotOpen);
    }
}

// ---- CreditDeposit --------------------------------------------------------------------------

#[test]
fn crediting_a_deposit_adds_it_to_the_available_balance() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(credit(2, Asset::Trx, 2_500_000))
        .then_expect_events(vec![credited(2, Asset::Trx, 2_500_000, 12_500_000)]);
}

#[test]
fn a_usdt_deposit_is_kept_apart_from_trx() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(credit(2, Asset::Usdt, 5_000_000))
        .then_expect_events(vec![credited(2, Asset::Usdt, 5_000_000, 5_000_000)]);
}

#[test]
fn crediting_the_same_deposit_twice_is_refused() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(credit(1, Asset::Trx, 10_000_000))
        .then_expect_error(AccountError::DepositAlreadyCredited {
            deposit_id: deposit(1),
        });
}

#[test]
fn a_credit_that_would_exceed_the_largest_balance_is_refused() {
    let full = vec![opened(), credited(1, Asset::Trx, MAX_AMOUNT, MAX_AMOUNT)];
    AccountTest::with(())
        .given(full)
        .when(credit(2, Asset::Trx, 1))
        .then_expect_error(AccountError::BalanceOverflow { asset: Asset::Trx });
}

// ---- ReserveFunds ---------------------------------------------------------------------------

#[test]
fn reserving_moves_funds_from_available_to_reserved() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(reserve(1, 2_708_334))
        .then_expect_events(vec![reserved(1, 2_708_334, 7_291_666, 2_708_334)]);
}

#[test]
fn reserving_the_whole_available_balance_is_allowed() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(reserve(1, 10_000_000))
        .then_expect_events(vec![reserved(1, 10_000_000, 0, 10_000_000)]);
}

#[test]
fn reserving_more_than_the_available_balance_is_refused() {
    AccountTest::with(())
        .given(with(&[reserved(1, 6_000_000, 4_000_000, 6_000_000)]))
        .when(reserve(2, 4_000_001))
        .then_expect_error(AccountError::InsufficientFunds {
            asset: Asset::Trx,
            available: 4_000_000,
            requested: 4_000_001,
        });
}

#[test]
fn reserving_in_an_asset_never_deposited_is_refused() {
    let cmd = AccountCommand::ReserveFunds {
        order_id: order(1),
        asset: Asset::Usdt,
        amount: amount(1),
    };
    AccountTest::with(())
        .given(with_ten_trx())
        .when(cmd)
        .then_expect_error(AccountError::InsufficientFunds {
            asset: Asset::Usdt,
            available: 0,
            requested: 1,
        });
}

#[test]
fn reserving_twice_for_the_same_order_is_refused() {
    AccountTest::with(())
        .given(with(&[reserved(1, 1_000, 9_999_000, 1_000)]))
        .when(reserve(1, 1_000))
        .then_expect_error(AccountError::OrderAlreadyReserved { order_id: order(1) });
}

#[test]
fn reserving_again_for_an_order_already_refunded_is_refused() {
    AccountTest::with(())
        .given(with(&[
            reserved(1, 1_000, 9_999_000, 1_000),
            released(1, 1_000, 10_000_000, 0),
        ]))
        .when(reserve(1, 1_000))
        .then_expect_error(AccountError::OrderAlreadyReserved { order_id: order(1) });
}

// ---- CaptureFunds ---------------------------------------------------------------------------

#[test]
fn capturing_spends_the_reservation() {
    AccountTest::with(())
        .given(with(&[reserved(1, 3_000_000, 7_000_000, 3_000_000)]))
        .when(AccountCommand::CaptureFunds { order_id: order(1) })
        .then_expect_events(vec![captured(1, 3_000_000, 7_000_000, 0)]);
}

#[test]
fn capturing_without_a_reservation_is_refused() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(AccountCommand::CaptureFunds { order_id: order(9) })
        .then_expect_error(AccountError::NoReservation { order_id: order(9) });
}

#[test]
fn capturing_twice_is_refused() {
    AccountTest::with(())
        .given(with(&[
            reserved(1, 3_000_000, 7_000_000, 3_000_000),
            captured(1, 3_000_000, 7_000_000, 0),
        ]))
        .when(AccountCommand::CaptureFunds { order_id: order(1) })
        .then_expect_error(AccountError::ReservationSettled {
            order_id: order(1),
            settlement: Settlement::Captured,
        });
}

#[test]
fn capturing_a_released_reservation_is_refused() {
    AccountTest::with(())
        .given(with(&[
            reserved(1, 3_000_000, 7_000_000, 3_000_000),
            released(1, 3_000_000, 10_000_000, 0),
        ]))
        .when(AccountCommand::CaptureFunds { order_id: order(1) })
        .then_expect_error(AccountError::ReservationSettled {
            order_id: order(1),
            settlement: Settlement::Released,
        });
}

// ---- ReleaseFunds ---------------------------------------------------------------------------

#[test]
fn releasing_returns_the_reservation_to_the_available_balance() {
    AccountTest::with(())
        .given(with(&[
            reserved(1, 3_000_000, 7_000_000, 3_000_000),
            reserved(2, 1_000_000, 6_000_000, 4_000_000),
        ]))
        .when(release(1))
        .then_expect_events(vec![released(1, 3_000_000, 9_000_000, 1_000_000)]);
}

#[test]
fn releasing_without_a_reservation_is_refused() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(release(1))
        .then_expect_error(AccountError::NoReservation { order_id: order(1) });
}

#[test]
fn releasing_a_captured_reservation_is_refused() {
    AccountTest::with(())
        .given(with(&[
            reserved(1, 3_000_000, 7_000_000, 3_000_000),
            captured(1, 3_000_000, 7_000_000, 0),
        ]))
        .when(release(1))
        .then_expect_error(AccountError::ReservationSettled {
            order_id: order(1),
            settlement: Settlement::Captured,
        });
}

#[test]
fn releasing_twice_is_refused() {
    AccountTest::with(())
        .given(with(&[
            reserved(1, 3_000_000, 7_000_000, 3_000_000),
            released(1, 3_000_000, 10_000_000, 0),
        ]))
        .when(release(1))
        .then_expect_error(AccountError::ReservationSettled {
            order_id: order(1),
            settlement: Settlement::Released,
        });
}

#[test]
fn releasing_without_a_reason_is_refused() {
    AccountTest::with(())
        .given(with(&[reserved(1, 3_000_000, 7_000_000, 3_000_000)]))
        .when(AccountCommand::ReleaseFunds {
            order_id: order(1),
            reason: " ".into(),
        })
        .then_expect_error(AccountError::from(FieldError::TextRequired {
            field: "reason".into(),
        }));
}

// ---- AdjustBalance --------------------------------------------------------------------------

#[test]
fn an_admin_can_add_to_a_balance() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(adjust(500))
        .then_expect_events(vec![adjusted(500, 10_000_500, 0)]);
}

#[test]
fn an_admin_can_take_from_the_available_balance_down_to_zero() {
    AccountTest::with(())
        .given(with(&[reserved(1, 4_000_000, 6_000_000, 4_000_000)]))
        .when(adjust(-6_000_000))
        .then_expect_events(vec![adjusted(-6_000_000, 0, 4_000_000)]);
}

#[test]
fn an_adjustment_below_zero_is_refused_even_when_funds_are_reserved() {
    AccountTest::with(())
        .given(with(&[reserved(1, 4_000_000, 6_000_000, 4_000_000)]))
        .when(adjust(-6_000_001))
        .then_expect_error(AccountError::AdjustmentBelowZero {
            asset: Asset::Trx,
            available: 6_000_000,
            delta: -6_000_001,
        });
}

#[test]
fn the_most_negative_adjustment_is_refused_without_overflow() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(adjust(i64::MIN))
        .then_expect_error(AccountError::AdjustmentBelowZero {
            asset: Asset::Trx,
            available: 10_000_000,
            delta: i64::MIN,
        });
}

#[test]
fn an_adjustment_past_the_largest_balance_is_refused() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(adjust(i64::MAX))
        .then_expect_error(AccountError::BalanceOverflow { asset: Asset::Trx });
}

#[test]
fn a_zero_adjustment_is_refused() {
    AccountTest::with(())
        .given(with_ten_trx())
        .when(adjust(0))
        .then_expect_error(AccountError::from(FieldError::ZeroQuantity {
            field: "delta".into(),
        }));
}

#[test]
fn an_adjustment_needs_a_bounded_reason_and_an_actor() {
    let with_text = |reason: &str, actor: &str| AccountCommand::AdjustBalance {
        asset: Asset::Trx,
        delta: 1,
        reason: reason.into(),
        actor: actor.into(),
    };
    AccountTest::with(())
        .given(with_ten_trx())
        .when(with_text("", "admin:alice"))
        .then_expect_error(AccountError::from(FieldError::TextRequired {
            field: "reason".into(),
        }));
    AccountTest::with(())
        .given(with_ten_trx())
        .when(with_text(&"x".repeat(501), "admin:alice"))
        .then_expect_error(AccountError::from(FieldError::TextTooLong {
            field: "reason".into(),
            len: 501,
            max: 500,
        }));
    AccountTest::with(())
        .given(with_ten_trx())
        .when(with_text("goodwill", ""))
        .then_expect_error(AccountError::from(FieldError::TextRequired {
            field: "actor".into(),
        }));
}

// ---- the parse boundary and the plumbing ----------------------------------------------------

#[test]
fn commands_with_bad_amounts_assets_or_ids_do_not_deserialise() {
    let reserve = |order: &str, asset: &str, amount: &str| {
        format!(r#"{{"ReserveFunds":{{"order_id":{order},"asset":{asset},"amount":{amount}}}}}"#)
    };
    assert!(serde_json::from_str::<AccountCommand>(&reserve("\"o1\"", "\"TRX\"", "5")).is_ok());
    for bad in [
        reserve("\"o1\"", "\"TRX\"", "0"),
        reserve("\"o1\"", "\"TRX\"", "-5"),
        reserve("\"o1\"", "\"TRX\"", "9223372036854775808"),
        reserve("\"o1\"", "\"TRX\"", "2.5"),
        reserve("\"o1\"", "\"BTC\"", "5"),
        reserve("\"\"", "\"TRX\"", "5"),
        reserve("\"o 1\"", "\"TRX\"", "5"),
    ] {
        assert!(
            serde_json::from_str::<AccountCommand>(&bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn bad_amounts_and_assets_become_typed_errors_at_the_parse_boundary() {
    assert_eq!(Amount::new(0), Err(AmountError::Zero));
    assert_eq!(Amount::from_i128(-1), Err(AmountError::Negative));
    assert_eq!(
        Amount::from_i128(i128::from(MAX_AMOUNT) + 1),
        Err(AmountError::TooLarge)
    );
    let err = "DOGE".parse::<Asset>().unwrap_err();
    assert_eq!(err, UnknownAsset("DOGE".into()));
    assert_eq!(
        err.to_string(),
        "unknown asset \"DOGE\"; expected TRX or USDT"
    );
}

#[test]
fn command_and_event_names_are_stable() {
    assert_eq!(reserve(1, 1).command_type(), "ReserveFunds");
    assert_eq!(adjust(1).command_type(), "AdjustBalance");
    assert_eq!(cqrs_es::DomainEvent::event_type(&opened()), "AccountOpened");
    assert_eq!(
        cqrs_es::DomainEvent::event_type(&released(1, 1, 1, 0)),
        "FundsReleased"
    );
    assert_eq!(cqrs_es::DomainEvent::event_version(&opened()), "1.0");
    let json = serde_json::to_value(reserved(1, 5, 5, 5)).unwrap();
    assert!(
        json.get("FundsReserved").is_some(),
        "externally tagged: {json}"
    );
    assert_eq!(Account::TYPE, "account");
    assert_eq!(<Account as DomainAggregate>::STATE_SCHEMA, "account/2");
}

#[test]
fn decide_leaves_the_state_alone_and_handle_applies_what_it_decided() {
    let live = replay::<Account>(with_ten_trx());
    let before = live.clone();
    let events = live.decide(reserve(1, 1_000), &()).unwrap();
    assert_eq!(live, before);
    let after = replay::<Account>(with_ten_trx().into_iter().chain(events));
    assert_eq!(after.balance(Asset::Trx).reserved, 1_000);
    assert_eq!(
        after.reservation(&order(1)).copied(),
        Some(Reservation {
            asset: Asset::Trx,
            amount: amount(1_000)
        })
    );
}

// ---- a bounded memory of settled orders and credited deposits -------------------------------

const N: usize = SETTLED_IDS_KEPT;

fn long_deposit(n: usize) -> DepositId {
    DepositId::parse(&format!("{n:064x}")).unwrap()
}

/// 10 TRX credited, then orders 1..=count each reserved for 1 sun and settled: odd ones
/// captured, even ones released.
fn settled_orders(count: usize) -> Vec<AccountEvent> {
    let mut events = with_ten_trx();
    let mut available = 10_000_000;
    for n in 1..=count as u32 {
        events.push(reserved(n, 1, available - 1, 1));
        if n % 2 == 1 {
            available -= 1;
            events.push(captured(n, 1, available, 0));
        } else {
            events.push(released(n, 1, available, 0));
        }
    }
    events
}

/// Deposits 1..=count credited, 1 sun each, after opening.
fn credited_deposits(count: usize) -> Vec<AccountEvent> {
    let credits = (1..=count).map(|n| AccountEvent::FundsCredited {
        deposit_id: long_deposit(n),
        asset: Asset::Trx,
        amount: amount(1),
        available_after: n as u64,
        reserved_after: 0,
    });
    std::iter::once(opened()).chain(credits).collect()
}

#[test]
fn an_order_settled_within_the_window_is_still_refused_by_name() {
    // Exactly N settled: order 1 is the oldest the account still remembers.
    let given = || settled_orders(N);
    AccountTest::with(())
        .given(given())
        .when(reserve(1, 1_000))
        .then_expect_error(AccountError::OrderAlreadyReserved { order_id: order(1) });
    AccountTest::with(())
        .given(given())
        .when(AccountCommand::CaptureFunds { order_id: order(1) })
        .then_expect_error(AccountError::ReservationSettled {
            order_id: order(1),
            settlement: Settlement::Captured,
        });
    AccountTest::with(())
        .given(given())
        .when(release(2))
        .then_expect_error(AccountError::ReservationSettled {
            order_id: order(2),
            settlement: Settlement::Released,
        });
}

#[test]
fn after_n_plus_k_settlements_the_account_remembers_exactly_the_last_n() {
    let k = 5;
    let account = replay::<Account>(settled_orders(N + k));
    assert_eq!(account.settled.len(), N);
    assert!(
        account.reservations.is_empty(),
        "settled orders are not held"
    );
    let remembered: Vec<&OrderId> = account.settled.iter().map(|(id, _)| id).collect();
    assert_eq!(remembered.first(), Some(&&order(k as u32 + 1)));
    assert_eq!(remembered.last(), Some(&&order((N + k) as u32)));
    for n in 1..=k as u32 {
        assert_eq!(
            account.settlement(&order(n)),
            None,
            "order {n} is forgotten"
        );
    }
    assert_eq!(
        account.settlement(&order(k as u32 + 1)),
        Some(Settlement::Released)
    );
}

#[test]
fn an_order_settled_before_the_window_is_no_longer_known_to_the_account() {
    // Orders 1..=5 have left the window: settling one again finds no reservation (no money
    // moves), and a second reservation is no longer stopped here but by the order's own state
    // machine and the command log (ADR 0007).
    let k = 5;
    AccountTest::with(())
        .given(settled_orders(N + k))
        .when(AccountCommand::CaptureFunds { order_id: order(1) })
        .then_expect_error(AccountError::NoReservation { order_id: order(1) });
    let available = 10_000_000 - (N + k).div_ceil(2) as u64;
    AccountTest::with(())
        .given(settled_orders(N + k))
        .when(reserve(1, 1_000))
        .then_expect_events(vec![reserved(1, 1_000, available - 1_000, 1_000)]);
    AccountTest::with(())
        .given(settled_orders(N + k))
        .when(reserve(k as u32 + 1, 1_000))
        .then_expect_error(AccountError::OrderAlreadyReserved {
            order_id: order(k as u32 + 1),
        });
}

#[test]
fn a_deposit_credited_within_the_window_is_refused_and_the_window_keeps_the_last_n() {
    let k = 3;
    let account = replay::<Account>(credited_deposits(N + k));
    assert_eq!(account.credited_deposits.len(), N);
    assert_eq!(
        account.credited_deposits.iter().next(),
        Some(&long_deposit(k + 1))
    );
    assert!(!account.has_credited(&long_deposit(k)));
    let credit = |n: usize| AccountCommand::CreditDeposit {
        deposit_id: long_deposit(n),
        asset: Asset::Trx,
        amount: amount(1),
    };
    AccountTest::with(())
        .given(credited_deposits(N + k))
        .when(credit(k + 1))
        .then_expect_error(AccountError::DepositAlreadyCredited {
            deposit_id: long_deposit(k + 1),
        });
    AccountTest::with(())
        .given(credited_deposits(N + k))
        .when(credit(N + k))
        .then_expect_error(AccountError::DepositAlreadyCredited {
            deposit_id: long_deposit(N + k),
        });
}

#[test]
fn a_snapshot_of_a_full_window_restores_the_same_account() {
    let live = replay::<Account>(settled_orders(N + 7));
    let json = serde_json::to_string(&live).unwrap();
    let restored: Account = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, live);
    // The snapshot holds N settled orders, whatever the history's length (ids of 4 digits in
    // both windows here, so the sizes match exactly).
    let size =
        |count| serde_json::to_string(&replay::<Account>(settled_orders(count))).map(|j| j.len());
    assert_eq!(size(3 * N).unwrap(), size(2 * N).unwrap());
}
