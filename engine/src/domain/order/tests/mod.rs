//! Given/when/then for every order command, the wrong-state matrix, and the replay property.
//! The fixtures below describe one order: 65,000 energy for 1 hour paid in TRX (2,708,334 sun),
//! placed at 12:00, delegated from pool wallet A, active 12:03–13:03, reclaimed at 13:03.

mod delegating;
mod placing;
mod properties;
mod reclaiming;
mod transitions;

use crate::domain::{OrderError, TransitionError};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::domain::ids::{AccountId, TxId};
use crate::domain::money::{Amount, Asset};
use crate::domain::pricing::{DurationTier, PriceTable, Quote};
use crate::domain::TronAddress;

pub(super) type OrderTest = TestFramework<Order>;

pub(super) const PRICE: u64 = 2_708_334;
pub(super) const SUN: u64 = 5_900_000_000;

/// Minutes after 12:00 on 2025-03-01.
pub(super) fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

pub(super) fn account() -> AccountId {
    AccountId::parse("tg:123456").unwrap()
}

pub(super) fn receiver() -> TronAddress {
    TronAddress::from_evm_bytes([0x11; 20])
}

pub(super) fn wallet_a() -> TronAddress {
    TronAddress::from_evm_bytes([0xa1; 20])
}

pub(super) fn wallet_b() -> TronAddress {
    TronAddress::from_evm_bytes([0xb2; 20])
}

pub(super) fn wallet_c() -> TronAddress {
    TronAddress::from_evm_bytes([0xc3; 20])
}

pub(super) fn outsider() -> TronAddress {
    TronAddress::from_evm_bytes([0xee; 20])
}

pub(super) fn txid(n: u8) -> TxId {
    TxId::parse(&format!("{n:02x}").repeat(32)).unwrap()
}

/// TRX: 1 h at 1,000 and 1 d at 100 sun per energy per day; USDT: 1 d at 30. Pool: A, B, C.
pub(super) fn policy() -> OrderPolicy {
    let prices = PriceTable::new(32_000, 5_000_000)
        .and_then(|t| t.with_price(Asset::Trx, DurationTier::OneHour, 1_000))
        .and_then(|t| t.with_price(Asset::Trx, DurationTier::OneDay, 100))
        .and_then(|t| t.with_price(Asset::Usdt, DurationTier::OneDay, 30))
        .unwrap();
    OrderPolicy {
        prices,
        pool_wallets: [wallet_a(), wallet_b(), wallet_c()].into(),
        unpaid_timeout: TimeDelta::minutes(15),
        max_delegation_attempts: 3,
    }
}

pub(super) fn quote() -> Quote {
    Quote {
        energy: 65_000,
        duration: DurationTier::OneHour,
        asset: Asset::Trx,
        unit_price: 1_000,
        price: Amount::new(PRICE).unwrap(),
    }
}

pub(super) fn place() -> OrderCommand {
    OrderCommand::PlaceOrder {
        account_id: account(),
        receiver: receiver(),
        energy: 65_000,
        duration: DurationTier::OneHour,
        asset: Asset::Trx,
        max_price: None,
        at: t(0),
    }
}

pub(super) fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        account_id: account(),
        receiver: receiver(),
        energy: 65_000,
        duration: DurationTier::OneHour,
        quote: quote(),
        pay_by: t(15),
        placed_at: t(0),
    }
}

pub(super) fn paid() -> OrderEvent {
    OrderEvent::OrderPaid {
        account_id: account(),
        asset: Asset::Trx,
        amount: Amount::new(PRICE).unwrap(),
        paid_at: t(1),
    }
}

pub(super) fn requested(wallet: TronAddress, attempt: u32) -> OrderEvent {
    OrderEvent::DelegationRequested {
        account_id: account(),
        receiver: receiver(),
        wallet,
        attempt,
        delegate_sun: SUN,
        energy: 65_000,
        duration: DurationTier::OneHour,
        at: t(2),
    }
}

pub(super) fn request(wallet: TronAddress) -> OrderCommand {
    OrderCommand::RequestDelegation {
        wallet,
        delegate_sun: SUN,
        at: t(2),
    }
}

/// Signed at 12:02, expiring at 12:03.
pub(super) fn sign(n: u8) -> OrderCommand {
    OrderCommand::RecordDelegationSigned {
        txid: txid(n),
        signed_tx_hex: "0a02cafe".into(),
        expiration_ms: t(3).timestamp_millis(),
        at: t(2),
    }
}

pub(super) fn signed(wallet: TronAddress, attempt: u32, n: u8) -> OrderEvent {
    OrderEvent::DelegationSigned {
        wallet,
        attempt,
        txid: txid(n),
        signed_tx_hex: "0a02cafe".into(),
        expiration_ms: t(3).timestamp_millis(),
        at: t(2),
    }
}

pub(super) fn failed(
    wallet: TronAddress,
    attempt: u32,
    txid: Option<TxId>,
    retryable: bool,
    attempts_left: u32,
) -> OrderEvent {
    OrderEvent::DelegationFailed {
        wallet,
        attempt,
        txid,
        reason: "node refused".into(),
        retryable,
        attempts_left,
        at: t(3),
    }
}

pub(super) fn confirmed() -> OrderEvent {
    OrderEvent::DelegationConfirmed {
        wallet: wallet_a(),
        receiver: receiver(),
        attempt: 1,
        txid: txid(1),
        block_number: 70_000_000,
        delegate_sun: SUN,
        at: t(3),
    }
}

pub(super) fn activated() -> OrderEvent {
    OrderEvent::OrderActivated {
        account_id: account(),
        receiver: receiver(),
        wallet: wallet_a(),
        energy: 65_000,
        duration: DurationTier::OneHour,
        active_from: t(3),
        active_until: t(63),
    }
}

pub(super) fn reclaim_requested(attempt: u32) -> OrderEvent {
    OrderEvent::ReclaimRequested {
        wallet: wallet_a(),
        receiver: receiver(),
        delegate_sun: SUN,
        attempt,
        at: t(63),
    }
}

/// Reclaim signed at 13:04, expiring at 13:05.
pub(super) fn sign_reclaim(n: u8) -> OrderCommand {
    OrderCommand::RecordReclaimSigned {
        txid: txid(n),
        signed_tx_hex: "0b03beef".into(),
        expiration_ms: t(65).timestamp_millis(),
        at: t(64),
    }
}

pub(super) fn reclaim_signed(attempt: u32, n: u8) -> OrderEvent {
    OrderEvent::ReclaimSigned {
        wallet: wallet_a(),
        attempt,
        txid: txid(n),
        signed_tx_hex: "0b03beef".into(),
        expiration_ms: t(65).timestamp_millis(),
        at: t(64),
    }
}

pub(super) fn reclaimed() -> OrderEvent {
    OrderEvent::Reclaimed {
        wallet: wallet_a(),
        receiver: receiver(),
        txid: txid(9),
        block_number: 70_001_200,
        delegate_sun: SUN,
        at: t(65),
    }
}

/// Histories that leave the order in each state.
pub(super) mod given {
    use super::*;

    pub(crate) fn placed() -> Vec<OrderEvent> {
        vec![super::placed()]
    }
    pub(crate) fn paid() -> Vec<OrderEvent> {
        vec![super::placed(), super::paid()]
    }
    pub(crate) fn requested() -> Vec<OrderEvent> {
        let mut h = paid();
        h.push(super::requested(wallet_a(), 1));
        h
    }
    pub(crate) fn signed() -> Vec<OrderEvent> {
        let mut h = requested();
        h.push(super::signed(wallet_a(), 1, 1));
        h
    }
    /// A retryable failure of attempt 1 on wallet A.
    pub(crate) fn failed() -> Vec<OrderEvent> {
        let mut h = requested();
        h.push(super::failed(wallet_a(), 1, None, true, 2));
        h
    }
    pub(crate) fn active() -> Vec<OrderEvent> {
        let mut h = signed();
        h.extend([confirmed(), activated()]);
        h
    }
    pub(crate) fn reclaim_requested() -> Vec<OrderEvent> {
        let mut h = active();
        h.push(super::reclaim_requested(1));
        h
    }
    /// Reclaim signed with txid 9.
    pub(crate) fn reclaim_signed() -> Vec<OrderEvent> {
        let mut h = reclaim_requested();
        h.push(super::reclaim_signed(1, 9));
        h
    }
    pub(crate) fn reclaimed() -> Vec<OrderEvent> {
        let mut h = reclaim_signed();
        h.push(super::reclaimed());
        h
    }
    pub(crate) fn completed() -> Vec<OrderEvent> {
        let mut h = reclaimed();
        h.push(OrderEvent::OrderCompleted {
            account_id: account(),
            asset: Asset::Trx,
            amount: Amount::new(PRICE).unwrap(),
            energy: 65_000,
            duration: DurationTier::OneHour,
            at: t(66),
        });
        h
    }
    pub(crate) fn rejected() -> Vec<OrderEvent> {
        let mut h = placed();
        h.push(OrderEvent::OrderRejected {
            account_id: account(),
            reason: RejectionReason::InsufficientFunds,
            at: t(1),
        });
        h
    }
    pub(crate) fn cancelled() -> Vec<OrderEvent> {
        let mut h = placed();
        h.push(OrderEvent::OrderCancelled {
            account_id: account(),
            by: CancelledBy::Customer,
            release_funds: false,
            asset: Asset::Trx,
            amount: Amount::new(PRICE).unwrap(),
            at: t(1),
        });
        h
    }
    pub(crate) fn refunded() -> Vec<OrderEvent> {
        let mut h = failed();
        h.push(OrderEvent::OrderRefunded {
            account_id: account(),
            asset: Asset::Trx,
            amount: Amount::new(PRICE).unwrap(),
            reason: "no wallet has capacity".into(),
            at: t(4),
        });
        h
    }
}

pub(super) fn wrong_state(state: &str, command: &str) -> OrderError {
    OrderError::from(TransitionError::InvalidTransition {
        state: state.into(),
        command: command.into(),
    })
}
