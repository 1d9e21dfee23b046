//! The error's contract with the API: a stable code per variant that matches its serialised
//! tag, a serde round trip, and messages that never echo key material.

use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::ids::{DepositId, OrderId, TxId};
use crate::domain::money::Amount;

fn samples() -> Vec<DomainError> {
    use DomainError::*;
    let order = OrderId::parse("ord-1").unwrap();
    let txid = TxId::parse(&"ab".repeat(32)).unwrap();
    let wallet = TronAddress::parse("TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE").unwrap();
    let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let quote = Quote {
        energy: 65_000,
        duration: DurationTier::OneHour,
        asset: Asset::Trx,
        unit_price: 1_000,
        price: Amount::new(2_708_334).unwrap(),
    };
    vec![
        InvalidAmount {
            problem: AmountProblem::Zero,
        },
        UnknownAsset {
            asset: "BTC".into(),
        },
        InvalidAddress {
            problem: AddressError::BadChecksum,
        },
        InvalidId {
            kind: IdKind::Account,
            problem: "is empty".into(),
        },
        ZeroQuantity {
            field: "energy".into(),
        },
        QuantityTooLarge {
            field: "delegate_sun".into(),
            max: MAX_AMOUNT,
        },
        TextRequired {
            field: "reason".into(),
        },
        TextTooLong {
            field: "reason".into(),
            len: 501,
            max: 500,
        },
        TimeOutOfRange {
            field: "pay_by".into(),
        },
        EnergyBelowMinimum {
            energy: 1,
            min: 32_000,
        },
        EnergyAboveMaximum {
            energy: 1 << 40,
            max: 10_000_000,
        },
        DurationNotOffered {
            duration: "2h".into(),
        },
        AssetNotAccepted { asset: Asset::Usdt },
        PriceOverflow {
            energy: u64::MAX,
            unit_price: 1,
            duration: DurationTier::OneDay,
        },
        PriceAboveLimit {
            quote,
            max_price: 1,
        },
        InvalidPriceTable {
            problem: "empty bounds".into(),
        },
        InvalidTransition {
            state: "Placed".into(),
            command: "ConfirmDelegation".into(),
        },
        TooEarly { at, not_before: at },
        AccountNotOpen,
        AccountAlreadyOpen,
        DepositAlreadyCredited {
            deposit_id: DepositId::new(txid.clone(), Some(0)),
        },
        OrderAlreadyReserved {
            order_id: order.clone(),
        },
        InsufficientFunds {
            asset: Asset::Trx,
            available: 1,
            requested: 2,
        },
        NoReservation {
            order_id: order.clone(),
        },
        ReservationSettled {
            order_id: order.clone(),
            settlement: Settlement::Captured,
        },
        AdjustmentBelowZero {
            asset: Asset::Trx,
            available: 1,
            delta: -2,
        },
        BalanceOverflow { asset: Asset::Trx },
        OrderAlreadyPlaced,
        ReceiverIsPoolWallet { receiver: wallet },
        WalletNotInPool { wallet },
        WalletAlreadyTried { wallet },
        AttemptsExhausted {
            attempts: 3,
            max: 3,
        },
        FailureNotRetryable,
        TxidMismatch {
            expected: txid.clone(),
            actual: txid.clone(),
        },
        InvalidSignedTransaction {
            problem: "not hex".into(),
        },
        DepositAlreadyDetected {
            deposit_id: DepositId::new(txid, None),
        },
        LogIndexMismatch {
            asset: Asset::Usdt,
            log_index: None,
        },
        WalletNotRegistered,
        WalletAlreadyRegistered,
        KeyMaterialNotAllowed { length: 64 },
        WalletDisabled,
        InsufficientCapacity {
            free: 1,
            requested: 2,
        },
        CapacityAlreadyReserved {
            order_id: order.clone(),
        },
        NoCapacityReservation { order_id: order },
        InconsistentResources {
            staked_sun: 1,
            delegatable_sun: 2,
        },
    ]
}

#[test]
fn every_code_is_the_serialised_tag_and_unique() {
    let mut seen = std::collections::BTreeSet::new();
    for err in samples() {
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["code"], err.code(), "{json}");
        assert!(seen.insert(err.code()), "duplicate code {}", err.code());
        let code = err.code();
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
    assert_eq!(seen.len(), 45, "a sample per variant");
}

#[test]
fn errors_survive_a_serde_round_trip() {
    for err in samples() {
        let back: DomainError =
            serde_json::from_value(serde_json::to_value(&err).unwrap()).unwrap();
        assert_eq!(back, err);
    }
}

#[test]
fn errors_name_what_was_wrong() {
    let err = DomainError::InsufficientFunds {
        asset: Asset::Trx,
        available: 4,
        requested: 5,
    };
    assert_eq!(
        err.to_string(),
        "insufficient TRX: 4 available, 5 requested"
    );
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"code": "insufficient_funds", "asset": "TRX", "available": 4, "requested": 5})
    );
    let err = DomainError::transition("Placed", "ConfirmDelegation");
    assert_eq!(
        err.to_string(),
        "ConfirmDelegation is not allowed while Placed"
    );
}

#[test]
fn malformed_and_wrong_version_addresses_become_typed_errors() {
    let err: DomainError = TronAddress::parse("TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsF")
        .unwrap_err()
        .into();
    assert_eq!(
        err,
        DomainError::InvalidAddress {
            problem: AddressError::BadChecksum
        }
    );
    let err: DomainError = TronAddress::parse("420000000000000000000000000000000000000000")
        .unwrap_err()
        .into();
    assert_eq!(
        err,
        DomainError::InvalidAddress {
            problem: AddressError::WrongVersion(0x42)
        }
    );
    let err: DomainError = TronAddress::parse("not an address").unwrap_err().into();
    assert_eq!(err.code(), "invalid_address");
}
