//! Reclaiming the delegated stake when the period ends, retried until it succeeds, then
//! completing the order.

use super::*;
use crate::domain::{FieldError, OrderError};

fn with(
    mut history: Vec<OrderEvent>,
    more: impl IntoIterator<Item = OrderEvent>,
) -> Vec<OrderEvent> {
    history.extend(more);
    history
}

// ---- RequestReclaim -------------------------------------------------------------------------

#[test]
fn the_stake_is_reclaimed_when_the_period_ends() {
    OrderTest::with(policy())
        .given(given::active())
        .when(OrderCommand::RequestReclaim { at: t(63) })
        .then_expect_events(vec![reclaim_requested(1)]);
}

#[test]
fn reclaiming_before_the_period_ends_is_too_early() {
    OrderTest::with(policy())
        .given(given::active())
        .when(OrderCommand::RequestReclaim { at: t(62) })
        .then_expect_error(OrderError::TooEarly {
            at: t(62),
            not_before: t(63),
        });
}

#[test]
fn only_an_active_order_is_reclaimed() {
    OrderTest::with(policy())
        .given(given::paid())
        .when(OrderCommand::RequestReclaim { at: t(63) })
        .then_expect_error(wrong_state("Paid", "RequestReclaim"));
    OrderTest::with(policy())
        .given(given::reclaim_requested())
        .when(OrderCommand::RequestReclaim { at: t(63) })
        .then_expect_error(wrong_state("ReclaimRequested", "RequestReclaim"));
}

// ---- RecordReclaimSigned --------------------------------------------------------------------

#[test]
fn the_signed_reclaim_is_recorded_before_it_is_broadcast() {
    OrderTest::with(policy())
        .given(given::reclaim_requested())
        .when(sign_reclaim(9))
        .then_expect_events(vec![reclaim_signed(1, 9)]);
}

#[test]
fn a_signed_reclaim_that_is_not_hex_is_refused() {
    let cmd = OrderCommand::RecordReclaimSigned {
        txid: txid(9),
        signed_tx_hex: "xyz!".into(),
        expiration_ms: t(65).timestamp_millis(),
        at: t(64),
    };
    OrderTest::with(policy())
        .given(given::reclaim_requested())
        .when(cmd)
        .then_expect_error(OrderError::InvalidSignedTransaction {
            problem: "signed_tx_hex is not whole bytes of hex".into(),
        });
}

#[test]
fn a_reclaim_is_not_signed_before_it_was_requested() {
    OrderTest::with(policy())
        .given(given::active())
        .when(sign_reclaim(9))
        .then_expect_error(wrong_state("Active", "RecordReclaimSigned"));
}

// ---- RecordReclaimExpired -------------------------------------------------------------------

#[test]
fn an_expired_reclaim_returns_to_requested_so_a_new_one_is_built() {
    let expired = OrderEvent::ReclaimExpired {
        wallet: wallet_a(),
        attempt: 1,
        txid: txid(9),
        at: t(65),
    };
    OrderTest::with(policy())
        .given(given::reclaim_signed())
        .when(OrderCommand::RecordReclaimExpired {
            txid: txid(9),
            at: t(65),
        })
        .then_expect_events(vec![expired.clone()]);
    OrderTest::with(policy())
        .given(with(given::reclaim_signed(), [expired]))
        .when(sign_reclaim(10))
        .then_expect_events(vec![reclaim_signed(1, 10)]);
}

#[test]
fn only_the_current_reclaim_can_expire() {
    OrderTest::with(policy())
        .given(given::reclaim_signed())
        .when(OrderCommand::RecordReclaimExpired {
            txid: txid(1),
            at: t(65),
        })
        .then_expect_error(OrderError::TxidMismatch {
            expected: txid(9),
            actual: txid(1),
        });
}

#[test]
fn a_reclaim_is_not_expired_before_its_expiration_time() {
    OrderTest::with(policy())
        .given(given::reclaim_signed())
        .when(OrderCommand::RecordReclaimExpired {
            txid: txid(9),
            at: t(64),
        })
        .then_expect_error(OrderError::TooEarly {
            at: t(64),
            not_before: t(65),
        });
}

#[test]
fn an_unsigned_reclaim_cannot_expire() {
    OrderTest::with(policy())
        .given(given::reclaim_requested())
        .when(OrderCommand::RecordReclaimExpired {
            txid: txid(9),
            at: t(65),
        })
        .then_expect_error(wrong_state("ReclaimRequested", "RecordReclaimExpired"));
}

// ---- FailReclaim ----------------------------------------------------------------------------

fn fail_reclaim() -> OrderCommand {
    OrderCommand::FailReclaim {
        reason: "bandwidth exhausted".into(),
        at: t(65),
    }
}

#[test]
fn a_failed_reclaim_is_retried_as_the_next_attempt() {
    let failed = OrderEvent::ReclaimFailed {
        wallet: wallet_a(),
        attempt: 1,
        txid: Some(txid(9)),
        reason: "bandwidth exhausted".into(),
        at: t(65),
    };
    OrderTest::with(policy())
        .given(given::reclaim_signed())
        .when(fail_reclaim())
        .then_expect_events(vec![failed.clone()]);
    OrderTest::with(policy())
        .given(with(given::reclaim_signed(), [failed]))
        .when(sign_reclaim(10))
        .then_expect_events(vec![reclaim_signed(2, 10)]);
}

#[test]
fn a_reclaim_may_fail_before_it_was_signed() {
    let failed = OrderEvent::ReclaimFailed {
        wallet: wallet_a(),
        attempt: 1,
        txid: None,
        reason: "bandwidth exhausted".into(),
        at: t(65),
    };
    OrderTest::with(policy())
        .given(given::reclaim_requested())
        .when(fail_reclaim())
        .then_expect_events(vec![failed]);
}

#[test]
fn a_reclaim_failure_needs_a_reason() {
    OrderTest::with(policy())
        .given(given::reclaim_requested())
        .when(OrderCommand::FailReclaim {
            reason: "".into(),
            at: t(65),
        })
        .then_expect_error(OrderError::from(FieldError::TextRequired {
            field: "reason".into(),
        }));
}

#[test]
fn a_reclaim_that_was_never_requested_cannot_fail() {
    OrderTest::with(policy())
        .given(given::active())
        .when(fail_reclaim())
        .then_expect_error(wrong_state("Active", "FailReclaim"));
}

// ---- ConfirmReclaim -------------------------------------------------------------------------

#[test]
fn a_confirmed_reclaim_returns_the_stake() {
    OrderTest::with(policy())
        .given(given::reclaim_signed())
        .when(OrderCommand::ConfirmReclaim {
            txid: txid(9),
            block_number: 70_001_200,
            at: t(65),
        })
        .then_expect_events(vec![reclaimed()]);
}

#[test]
fn confirming_another_reclaim_transaction_is_refused() {
    OrderTest::with(policy())
        .given(given::reclaim_signed())
        .when(OrderCommand::ConfirmReclaim {
            txid: txid(8),
            block_number: 1,
            at: t(65),
        })
        .then_expect_error(OrderError::TxidMismatch {
            expected: txid(9),
            actual: txid(8),
        });
}

#[test]
fn an_unsigned_reclaim_cannot_be_confirmed() {
    OrderTest::with(policy())
        .given(given::reclaim_requested())
        .when(OrderCommand::ConfirmReclaim {
            txid: txid(9),
            block_number: 1,
            at: t(65),
        })
        .then_expect_error(wrong_state("ReclaimRequested", "ConfirmReclaim"));
}

// ---- CompleteOrder --------------------------------------------------------------------------

#[test]
fn a_reclaimed_order_completes_with_the_price_to_capture() {
    OrderTest::with(policy())
        .given(given::reclaimed())
        .when(OrderCommand::CompleteOrder { at: t(66) })
        .then_expect_events(given::completed()[given::reclaimed().len()..].to_vec());
}

#[test]
fn an_order_still_holding_the_stake_cannot_complete() {
    OrderTest::with(policy())
        .given(given::active())
        .when(OrderCommand::CompleteOrder { at: t(66) })
        .then_expect_error(wrong_state("Active", "CompleteOrder"));
    OrderTest::with(policy())
        .given(given::completed())
        .when(OrderCommand::CompleteOrder { at: t(66) })
        .then_expect_error(wrong_state("Completed", "CompleteOrder"));
}
