//! Placing, paying for, rejecting and cancelling an order.

use super::*;
use crate::domain::AddressError;
use crate::domain::{DurationError, FieldError, OrderError, QuoteError};

fn place_with(f: impl FnOnce(&mut NewOrderFields)) -> OrderCommand {
    let mut o = NewOrderFields {
        energy: 65_000,
        duration: DurationTier::OneHour,
        asset: Asset::Trx,
        receiver: receiver(),
        max_price: None,
        at: t(0),
    };
    f(&mut o);
    OrderCommand::PlaceOrder {
        account_id: account(),
        receiver: o.receiver,
        energy: o.energy,
        duration: o.duration,
        asset: o.asset,
        max_price: o.max_price,
        at: o.at,
    }
}

struct NewOrderFields {
    energy: u64,
    duration: DurationTier,
    asset: Asset,
    receiver: TronAddress,
    max_price: Option<u64>,
    at: DateTime<Utc>,
}

// ---- PlaceOrder -----------------------------------------------------------------------------

#[test]
fn placing_an_order_fixes_its_quote_and_a_payment_deadline() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place())
        .then_expect_events(vec![placed()]);
}

#[test]
fn an_order_may_be_paid_in_usdt_at_the_usdt_price() {
    let cmd = place_with(|o| {
        o.asset = Asset::Usdt;
        o.duration = DurationTier::OneDay;
    });
    let events = OrderTest::with(policy())
        .given_no_previous_events()
        .when(cmd)
        .inspect_result()
        .unwrap();
    let OrderEvent::OrderPlaced { quote, .. } = &events[0] else {
        panic!("{events:?}")
    };
    // 65,000 × 30 × 24 / 24 = 1,950,000 (1.95 USDT).
    assert_eq!((quote.asset, quote.price.units()), (Asset::Usdt, 1_950_000));
}

#[test]
fn placing_an_order_twice_is_refused() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(place())
        .then_expect_error(OrderError::OrderAlreadyPlaced);
    OrderTest::with(policy())
        .given(given::completed())
        .when(place())
        .then_expect_error(OrderError::OrderAlreadyPlaced);
}

#[test]
fn zero_energy_is_refused() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.energy = 0))
        .then_expect_error(OrderError::from(FieldError::ZeroQuantity {
            field: "energy".into(),
        }));
}

#[test]
fn energy_outside_the_price_tables_bounds_is_refused() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.energy = 31_999))
        .then_expect_error(OrderError::from(QuoteError::EnergyBelowMinimum {
            energy: 31_999,
            min: 32_000,
        }));
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.energy = 5_000_001))
        .then_expect_error(OrderError::from(QuoteError::EnergyAboveMaximum {
            energy: 5_000_001,
            max: 5_000_000,
        }));
}

#[test]
fn a_duration_without_a_price_is_not_offered() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.duration = DurationTier::SevenDays))
        .then_expect_error(OrderError::from(QuoteError::Duration(
            DurationError::DurationNotOffered {
                duration: "7d".into(),
            },
        )));
}

#[test]
fn an_asset_without_prices_is_not_accepted() {
    let mut trx_only = policy();
    trx_only.prices = PriceTable::new(32_000, 5_000_000)
        .unwrap()
        .with_price(Asset::Trx, DurationTier::OneHour, 1_000)
        .unwrap();
    OrderTest::with(trx_only)
        .given_no_previous_events()
        .when(place_with(|o| o.asset = Asset::Usdt))
        .then_expect_error(OrderError::from(QuoteError::AssetNotAccepted {
            asset: Asset::Usdt,
        }));
}

#[test]
fn delivering_to_one_of_our_pool_wallets_is_refused() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.receiver = wallet_b()))
        .then_expect_error(OrderError::ReceiverIsPoolWallet {
            receiver: wallet_b(),
        });
}

#[test]
fn a_quote_above_the_customers_limit_is_refused() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.max_price = Some(PRICE - 1)))
        .then_expect_error(OrderError::PriceAboveLimit {
            quote: quote(),
            max_price: PRICE - 1,
        });
}

#[test]
fn a_quote_exactly_at_the_customers_limit_is_accepted() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.max_price = Some(PRICE)))
        .then_expect_events(vec![placed()]);
}

#[test]
fn a_payment_deadline_beyond_the_calendar_is_refused_not_a_panic() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(place_with(|o| o.at = DateTime::<Utc>::MAX_UTC))
        .then_expect_error(OrderError::from(FieldError::TimeOutOfRange {
            field: "pay_by".into(),
        }));
}

#[test]
fn malformed_addresses_durations_and_amounts_do_not_deserialise_into_an_order() {
    let json = |receiver: &str, energy: &str, duration: &str, asset: &str| {
        format!(
            r#"{{"PlaceOrder":{{"account_id":"tg:1","receiver":"{receiver}","energy":{energy},"duration":{duration},"asset":"{asset}","max_price":null,"at":"2025-03-01T12:00:00Z"}}}}"#
        )
    };
    let good = "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE";
    assert!(serde_json::from_str::<OrderCommand>(&json(good, "65000", "\"1h\"", "TRX")).is_ok());
    assert!(serde_json::from_str::<OrderCommand>(&json(good, "65000", "24", "TRX")).is_ok());
    for bad in [
        json(
            "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsF",
            "65000",
            "\"1h\"",
            "TRX",
        ),
        json(
            "420000000000000000000000000000000000000000",
            "65000",
            "\"1h\"",
            "TRX",
        ),
        json("", "65000", "\"1h\"", "TRX"),
        json(good, "-1", "\"1h\"", "TRX"),
        json(good, "18446744073709551616", "\"1h\"", "TRX"),
        json(good, "65000", "\"2h\"", "TRX"),
        json(good, "65000", "5", "TRX"),
        json(good, "65000", "\"1h\"", "BTC"),
    ] {
        assert!(serde_json::from_str::<OrderCommand>(&bad).is_err(), "{bad}");
    }
    // At the parse boundary the same inputs give the value types' own errors.
    assert_eq!(
        "420000000000000000000000000000000000000000".parse::<TronAddress>(),
        Err(AddressError::WrongVersion(0x42))
    );
    assert_eq!(
        "2h".parse::<DurationTier>(),
        Err(DurationError::DurationNotOffered {
            duration: "2h".into()
        })
    );
}

// ---- MarkPaid -------------------------------------------------------------------------------

#[test]
fn paying_a_placed_order_records_the_reserved_price() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(OrderCommand::MarkPaid { at: t(1) })
        .then_expect_events(vec![paid()]);
}

#[test]
fn paying_an_order_that_was_never_placed_or_already_paid_is_refused() {
    OrderTest::with(policy())
        .given_no_previous_events()
        .when(OrderCommand::MarkPaid { at: t(1) })
        .then_expect_error(wrong_state("New", "MarkPaid"));
    OrderTest::with(policy())
        .given(given::paid())
        .when(OrderCommand::MarkPaid { at: t(1) })
        .then_expect_error(wrong_state("Paid", "MarkPaid"));
}

// ---- RejectOrder ----------------------------------------------------------------------------

#[test]
fn an_order_the_account_cannot_pay_for_is_rejected() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(OrderCommand::RejectOrder {
            reason: RejectionReason::InsufficientFunds,
            at: t(1),
        })
        .then_expect_events(given::rejected()[1..].to_vec());
}

#[test]
fn an_invalid_order_is_rejected_with_its_reason() {
    let reason = RejectionReason::Invalid("receiver is not activated".into());
    OrderTest::with(policy())
        .given(given::placed())
        .when(OrderCommand::RejectOrder {
            reason: reason.clone(),
            at: t(1),
        })
        .then_expect_events(vec![OrderEvent::OrderRejected {
            account_id: account(),
            reason,
            at: t(1),
        }]);
}

#[test]
fn rejecting_as_invalid_needs_a_reason() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(OrderCommand::RejectOrder {
            reason: RejectionReason::Invalid("".into()),
            at: t(1),
        })
        .then_expect_error(OrderError::from(FieldError::TextRequired {
            field: "reason".into(),
        }));
}

#[test]
fn a_paid_order_cannot_be_rejected() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(OrderCommand::RejectOrder {
            reason: RejectionReason::InsufficientFunds,
            at: t(1),
        })
        .then_expect_error(wrong_state("Paid", "RejectOrder"));
}

// ---- CancelOrder ----------------------------------------------------------------------------

fn cancelled(by: CancelledBy, release_funds: bool, at: DateTime<Utc>) -> OrderEvent {
    OrderEvent::OrderCancelled {
        account_id: account(),
        by,
        release_funds,
        asset: Asset::Trx,
        amount: Amount::new(PRICE).unwrap(),
        at,
    }
}

#[test]
fn a_customer_may_cancel_an_unpaid_order_and_nothing_is_released() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(OrderCommand::CancelOrder {
            by: CancelledBy::Customer,
            at: t(1),
        })
        .then_expect_events(vec![cancelled(CancelledBy::Customer, false, t(1))]);
}

#[test]
fn a_customer_may_cancel_a_paid_order_before_delegation_and_the_funds_are_released() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(OrderCommand::CancelOrder {
            by: CancelledBy::Customer,
            at: t(2),
        })
        .then_expect_events(vec![cancelled(CancelledBy::Customer, true, t(2))]);
}

#[test]
fn a_customer_cannot_cancel_once_delegation_was_requested() {
    OrderTest::with(policy())
        .given(given::requested())
        .when(OrderCommand::CancelOrder {
            by: CancelledBy::Customer,
            at: t(2),
        })
        .then_expect_error(wrong_state("DelegationRequested", "CancelOrder"));
}

#[test]
fn an_unpaid_order_is_cancelled_by_the_timeout_at_its_deadline() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(OrderCommand::CancelOrder {
            by: CancelledBy::UnpaidTimeout,
            at: t(15),
        })
        .then_expect_events(vec![cancelled(CancelledBy::UnpaidTimeout, false, t(15))]);
}

#[test]
fn the_unpaid_timeout_before_the_deadline_is_too_early() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(OrderCommand::CancelOrder {
            by: CancelledBy::UnpaidTimeout,
            at: t(14),
        })
        .then_expect_error(OrderError::TooEarly {
            at: t(14),
            not_before: t(15),
        });
}

#[test]
fn the_unpaid_timeout_does_not_cancel_a_paid_order() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(OrderCommand::CancelOrder {
            by: CancelledBy::UnpaidTimeout,
            at: t(20),
        })
        .then_expect_error(wrong_state("Paid", "CancelOrder"));
}
