//! Delegating: requesting from a pool wallet, write-ahead signing, expiry, confirmation,
//! failure with a bounded retry on other wallets, and the refund when delivery is given up.

use super::*;
use crate::domain::money::MAX_AMOUNT;
use crate::domain::{FieldError, OrderError};

fn with(
    mut history: Vec<OrderEvent>,
    more: impl IntoIterator<Item = OrderEvent>,
) -> Vec<OrderEvent> {
    history.extend(more);
    history
}

// ---- RequestDelegation ----------------------------------------------------------------------

#[test]
fn a_paid_order_requests_its_first_delegation_from_a_pool_wallet() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(request(wallet_a()))
        .then_expect_events(vec![requested(wallet_a(), 1)]);
}

#[test]
fn after_a_retryable_failure_another_wallet_is_tried_as_the_next_attempt() {
    OrderTest::with(policy())
        .given(given::failed())
        .when(request(wallet_b()))
        .then_expect_events(vec![requested(wallet_b(), 2)]);
}

#[test]
fn a_wallet_that_already_failed_for_this_order_is_not_tried_again() {
    OrderTest::with(policy())
        .given(given::failed())
        .when(request(wallet_a()))
        .then_expect_error(OrderError::WalletAlreadyTried { wallet: wallet_a() });
}

#[test]
fn after_a_failure_that_is_not_retryable_no_delegation_is_requested() {
    let history = with(given::requested(), [failed(wallet_a(), 1, None, false, 0)]);
    OrderTest::with(policy())
        .given(history)
        .when(request(wallet_b()))
        .then_expect_error(OrderError::FailureNotRetryable);
}

#[test]
fn no_delegation_is_requested_beyond_the_maximum_attempts() {
    let history = with(
        given::failed(),
        [
            requested(wallet_b(), 2),
            failed(wallet_b(), 2, None, true, 1),
            requested(wallet_c(), 3),
            failed(wallet_c(), 3, None, true, 0),
        ],
    );
    let mut four_wallets = policy();
    four_wallets.pool_wallets.insert(outsider());
    OrderTest::with(four_wallets)
        .given(history)
        .when(request(outsider()))
        .then_expect_error(OrderError::AttemptsExhausted {
            attempts: 3,
            max: 3,
        });
}

#[test]
fn a_delegation_from_a_wallet_outside_the_pool_is_refused() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(request(outsider()))
        .then_expect_error(OrderError::WalletNotInPool { wallet: outsider() });
}

#[test]
fn a_delegation_of_zero_or_too_much_sun_is_refused() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(OrderCommand::RequestDelegation {
            wallet: wallet_a(),
            delegate_sun: 0,
            at: t(2),
        })
        .then_expect_error(OrderError::from(FieldError::ZeroQuantity {
            field: "delegate_sun".into(),
        }));
    OrderTest::with(policy())
        .given(given::paid())
        .when(OrderCommand::RequestDelegation {
            wallet: wallet_a(),
            delegate_sun: MAX_AMOUNT + 1,
            at: t(2),
        })
        .then_expect_error(OrderError::from(FieldError::QuantityTooLarge {
            field: "delegate_sun".into(),
            max: MAX_AMOUNT,
        }));
}

#[test]
fn a_receiver_that_has_since_become_a_pool_wallet_gets_no_delegation() {
    let mut grown = policy();
    grown.pool_wallets.insert(receiver());
    OrderTest::with(grown)
        .given(given::paid())
        .when(request(wallet_a()))
        .then_expect_error(OrderError::ReceiverIsPoolWallet {
            receiver: receiver(),
        });
}

#[test]
fn an_unpaid_order_gets_no_delegation() {
    OrderTest::with(policy())
        .given(given::placed())
        .when(request(wallet_a()))
        .then_expect_error(wrong_state("Placed", "RequestDelegation"));
}

// ---- RecordDelegationSigned -----------------------------------------------------------------

#[test]
fn the_signed_delegation_is_recorded_before_it_is_broadcast() {
    OrderTest::with(policy())
        .given(given::requested())
        .when(sign(1))
        .then_expect_events(vec![signed(wallet_a(), 1, 1)]);
}

#[test]
fn signed_bytes_that_are_not_whole_hex_bytes_are_refused() {
    for hex in ["", "abc", "zz", "0a 0b"] {
        let cmd = OrderCommand::RecordDelegationSigned {
            txid: txid(1),
            signed_tx_hex: hex.into(),
            expiration_ms: t(3).timestamp_millis(),
            at: t(2),
        };
        let err = OrderTest::with(policy())
            .given(given::requested())
            .when(cmd)
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.code(), "invalid_signed_transaction", "{hex:?}");
    }
}

#[test]
fn a_signed_delegation_with_a_meaningless_expiration_is_refused() {
    for expiration_ms in [0, -1, i64::MAX] {
        let cmd = OrderCommand::RecordDelegationSigned {
            txid: txid(1),
            signed_tx_hex: "0a".into(),
            expiration_ms,
            at: t(2),
        };
        OrderTest::with(policy())
            .given(given::requested())
            .when(cmd)
            .then_expect_error(OrderError::InvalidSignedTransaction {
                problem: "expiration_ms is not a valid time".into(),
            });
    }
}

#[test]
fn a_second_signed_transaction_while_one_is_outstanding_is_refused() {
    OrderTest::with(policy())
        .given(given::signed())
        .when(sign(2))
        .then_expect_error(wrong_state("DelegationSigned", "RecordDelegationSigned"));
}

// ---- RecordDelegationExpired ----------------------------------------------------------------

#[test]
fn an_expired_delegation_returns_the_order_to_requested_on_the_same_wallet() {
    let cmd = OrderCommand::RecordDelegationExpired {
        txid: txid(1),
        at: t(3),
    };
    let expired = OrderEvent::DelegationExpired {
        wallet: wallet_a(),
        attempt: 1,
        txid: txid(1),
        at: t(3),
    };
    OrderTest::with(policy())
        .given(given::signed())
        .when(cmd)
        .then_expect_events(vec![expired.clone()]);
    // … and a new transaction may then be built and recorded for the same attempt.
    OrderTest::with(policy())
        .given(with(given::signed(), [expired]))
        .when(sign(2))
        .then_expect_events(vec![signed(wallet_a(), 1, 2)]);
}

#[test]
fn only_the_current_transaction_can_expire() {
    OrderTest::with(policy())
        .given(given::signed())
        .when(OrderCommand::RecordDelegationExpired {
            txid: txid(7),
            at: t(3),
        })
        .then_expect_error(OrderError::TxidMismatch {
            expected: txid(1),
            actual: txid(7),
        });
}

#[test]
fn a_transaction_is_not_expired_before_its_expiration_time() {
    let at = t(3) - TimeDelta::milliseconds(1);
    OrderTest::with(policy())
        .given(given::signed())
        .when(OrderCommand::RecordDelegationExpired { txid: txid(1), at })
        .then_expect_error(OrderError::TooEarly {
            at,
            not_before: t(3),
        });
}

#[test]
fn nothing_expires_before_it_was_signed() {
    OrderTest::with(policy())
        .given(given::requested())
        .when(OrderCommand::RecordDelegationExpired {
            txid: txid(1),
            at: t(3),
        })
        .then_expect_error(wrong_state(
            "DelegationRequested",
            "RecordDelegationExpired",
        ));
}

// ---- ConfirmDelegation ----------------------------------------------------------------------

#[test]
fn a_confirmed_delegation_activates_the_order_for_its_duration() {
    OrderTest::with(policy())
        .given(given::signed())
        .when(OrderCommand::ConfirmDelegation {
            txid: txid(1),
            block_number: 70_000_000,
            at: t(3),
        })
        .then_expect_events(vec![confirmed(), activated()]);
}

#[test]
fn confirming_a_transaction_other_than_the_signed_one_is_refused() {
    OrderTest::with(policy())
        .given(given::signed())
        .when(OrderCommand::ConfirmDelegation {
            txid: txid(2),
            block_number: 70_000_000,
            at: t(3),
        })
        .then_expect_error(OrderError::TxidMismatch {
            expected: txid(1),
            actual: txid(2),
        });
}

#[test]
fn an_active_period_beyond_the_calendar_is_refused_not_a_panic() {
    OrderTest::with(policy())
        .given(given::signed())
        .when(OrderCommand::ConfirmDelegation {
            txid: txid(1),
            block_number: 1,
            at: DateTime::<Utc>::MAX_UTC,
        })
        .then_expect_error(OrderError::from(FieldError::TimeOutOfRange {
            field: "active_until".into(),
        }));
}

#[test]
fn nothing_is_confirmed_before_it_was_signed() {
    OrderTest::with(policy())
        .given(given::requested())
        .when(OrderCommand::ConfirmDelegation {
            txid: txid(1),
            block_number: 1,
            at: t(3),
        })
        .then_expect_error(wrong_state("DelegationRequested", "ConfirmDelegation"));
}

// ---- FailDelegation -------------------------------------------------------------------------

fn fail(retryable: bool) -> OrderCommand {
    OrderCommand::FailDelegation {
        reason: "node refused".into(),
        retryable,
        at: t(3),
    }
}

#[test]
fn a_failed_request_counts_the_attempts_left() {
    OrderTest::with(policy())
        .given(given::requested())
        .when(fail(true))
        .then_expect_events(vec![failed(wallet_a(), 1, None, true, 2)]);
}

#[test]
fn a_failed_signed_delegation_names_its_transaction() {
    OrderTest::with(policy())
        .given(given::signed())
        .when(fail(true))
        .then_expect_events(vec![failed(wallet_a(), 1, Some(txid(1)), true, 2)]);
}

#[test]
fn a_failure_that_is_not_retryable_leaves_no_attempts() {
    OrderTest::with(policy())
        .given(given::requested())
        .when(fail(false))
        .then_expect_events(vec![failed(wallet_a(), 1, None, false, 0)]);
}

#[test]
fn a_failure_needs_a_reason() {
    OrderTest::with(policy())
        .given(given::requested())
        .when(OrderCommand::FailDelegation {
            reason: "".into(),
            retryable: true,
            at: t(3),
        })
        .then_expect_error(OrderError::from(FieldError::TextRequired {
            field: "reason".into(),
        }));
}

#[test]
fn an_active_order_cannot_fail_its_delegation() {
    OrderTest::with(policy())
        .given(given::active())
        .when(fail(true))
        .then_expect_error(wrong_state("Active", "FailDelegation"));
}

// ---- RefundOrder ----------------------------------------------------------------------------

fn refund() -> OrderCommand {
    OrderCommand::RefundOrder {
        reason: "no wallet has capacity".into(),
        at: t(4),
    }
}

#[test]
fn a_failed_delivery_is_refunded_in_full() {
    OrderTest::with(policy())
        .given(given::failed())
        .when(refund())
        .then_expect_events(given::refunded()[4..].to_vec());
}

#[test]
fn a_paid_order_whose_receiver_is_unusable_is_refunded_before_any_delegation() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(refund())
        .then_expect_events(given::refunded()[4..].to_vec());
}

#[test]
fn a_refund_needs_a_reason() {
    OrderTest::with(policy())
        .given(given::failed())
        .when(OrderCommand::RefundOrder {
            reason: " ".into(),
            at: t(4),
        })
        .then_expect_error(OrderError::from(FieldError::TextRequired {
            field: "reason".into(),
        }));
}

#[test]
fn there_is_no_refund_without_a_failure_behind_it() {
    OrderTest::with(policy())
        .given(given::active())
        .when(refund())
        .then_expect_error(wrong_state("Active", "RefundOrder"));
    OrderTest::with(policy())
        .given(given::signed())
        .when(refund())
        .then_expect_error(wrong_state("DelegationSigned", "RefundOrder"));
    OrderTest::with(policy())
        .given(given::refunded())
        .when(refund())
        .then_expect_error(wrong_state("Refunded", "RefundOrder"));
}
