//! The refusals' contract with the command log and the API: every aggregate's error has a
//! stable code per variant that is its serialised tag, survives a serde round trip as the same
//! error, and means the same thing in every aggregate that can give it; messages name what was
//! wrong. A sample of every variant of every aggregate's error is checked.

use std::collections::BTreeMap;
use std::fmt::Debug;

use chrono::{TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::account::{AccountError, Settlement};
use super::address::{AddressError, TronAddress};
use super::deposit::DepositError;
use super::duration::{DurationError, DurationTier};
use super::field::FieldError;
use super::ids::{DepositId, IdKind, OrderId, TxId};
use super::maintenance::MaintenanceError;
use super::money::{Amount, Asset, MAX_AMOUNT};
use super::order::OrderError;
use super::price_list::PriceListError;
use super::pricing::{PriceTableError, QuoteError};
use super::transition::TransitionError;
use super::wallet::WalletError;

fn fields() -> Vec<FieldError> {
    vec![
        FieldError::ZeroQuantity {
            field: "energy".into(),
        },
        FieldError::QuantityTooLarge {
            field: "delegate_sun".into(),
            max: MAX_AMOUNT,
        },
        FieldError::TextRequired {
            field: "reason".into(),
        },
        FieldError::TextTooLong {
            field: "reason".into(),
            len: 501,
            max: 500,
        },
        FieldError::TimeOutOfRange {
            field: "pay_by".into(),
        },
    ]
}

fn transition() -> TransitionError {
    TransitionError::new("Placed", "ConfirmDelegation")
}

fn order_id() -> OrderId {
    OrderId::parse("ord-1").unwrap()
}

fn txid() -> TxId {
    TxId::parse(&"ab".repeat(32)).unwrap()
}

fn wallet() -> TronAddress {
    TronAddress::parse("TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE").unwrap()
}

fn accounts() -> Vec<AccountError> {
    use AccountError::*;
    let mut all = vec![
        AccountNotOpen,
        AccountAlreadyOpen,
        DepositAlreadyCredited {
            deposit_id: DepositId::new(txid(), Some(0)),
        },
        OrderAlreadyReserved {
            order_id: order_id(),
        },
        InsufficientFunds {
            asset: Asset::Trx,
            available: 1,
            requested: 2,
        },
        NoReservation {
            order_id: order_id(),
        },
        ReservationSettled {
            order_id: order_id(),
            settlement: Settlement::Captured,
        },
        AdjustmentBelowZero {
            asset: Asset::Trx,
            available: 1,
            delta: -2,
        },
        BalanceOverflow { asset: Asset::Trx },
    ];
    all.extend(fields().into_iter().map(Field));
    all
}

fn quotes() -> Vec<QuoteError> {
    vec![
        QuoteError::EnergyBelowMinimum {
            energy: 1,
            min: 32_000,
        },
        QuoteError::EnergyAboveMaximum {
            energy: 1 << 40,
            max: 10_000_000,
        },
        QuoteError::AssetNotAccepted { asset: Asset::Usdt },
        QuoteError::PriceOverflow {
            energy: u64::MAX,
            unit_price: 1,
            duration: DurationTier::OneDay,
        },
        QuoteError::Duration(DurationError::DurationNotOffered {
            duration: "2h".into(),
        }),
    ]
}

fn orders() -> Vec<OrderError> {
    use OrderError::*;
    let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let quote = super::pricing::Quote {
        energy: 65_000,
        duration: DurationTier::OneHour,
        asset: Asset::Trx,
        unit_price: 1_000,
        price: Amount::new(2_708_334).unwrap(),
    };
    let mut all = vec![
        OrderAlreadyPlaced,
        ReceiverIsPoolWallet { receiver: wallet() },
        PriceAboveLimit {
            quote,
            max_price: 1,
        },
        TooEarly { at, not_before: at },
        WalletNotInPool { wallet: wallet() },
        WalletAlreadyTried { wallet: wallet() },
        AttemptsExhausted {
            attempts: 3,
            max: 3,
        },
        FailureNotRetryable,
        TxidMismatch {
            expected: txid(),
            actual: txid(),
        },
        InvalidSignedTransaction {
            problem: "not hex".into(),
        },
        Transition(transition()),
    ];
    all.extend(fields().into_iter().map(Field));
    all.extend(quotes().into_iter().map(OrderError::from));
    all
}

fn deposits() -> Vec<DepositError> {
    vec![
        DepositError::DepositAlreadyDetected {
            deposit_id: DepositId::new(txid(), None),
        },
        DepositError::LogIndexMismatch {
            asset: Asset::Usdt,
            log_index: None,
        },
        DepositError::Transition(transition()),
    ]
}

fn wallets() -> Vec<WalletError> {
    use WalletError::*;
    let mut all = vec![
        WalletNotRegistered,
        WalletAlreadyRegistered,
        KeyMaterialNotAllowed { length: 64 },
        WalletDisabled,
        InsufficientCapacity {
            free: 1,
            requested: 2,
        },
        CapacityAlreadyReserved {
            order_id: order_id(),
        },
        NoCapacityReservation {
            order_id: order_id(),
        },
        InconsistentResources {
            staked_sun: 1,
            delegatable_sun: 2,
        },
        Transition(transition()),
    ];
    all.extend(fields().into_iter().map(Field));
    all
}

fn price_lists() -> Vec<PriceListError> {
    let mut all = vec![PriceListError::Table(PriceTableError::InvalidPriceTable {
        problem: "empty bounds".into(),
    })];
    all.extend(fields().into_iter().map(PriceListError::Field));
    all
}

fn maintenance() -> Vec<MaintenanceError> {
    let mut all = vec![MaintenanceError::Transition(transition())];
    all.extend(fields().into_iter().map(MaintenanceError::Field));
    all
}

/// Checks each sample's code against its serialised tag and its round trip; records, per
/// code, the JSON keys it carries (so a code means one shape wherever it is given).
fn check<E>(
    aggregate: &str,
    samples: Vec<E>,
    code: fn(&E) -> &'static str,
    shapes: &mut BTreeMap<&'static str, Vec<String>>,
) where
    E: Serialize + DeserializeOwned + PartialEq + Debug,
{
    for err in samples {
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["code"], code(&err), "{aggregate}: {json}");
        let back: E = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, err, "{aggregate}: {json} reads back as itself");
        let mut keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let known = shapes.entry(code(&err)).or_insert_with(|| keys.clone());
        assert_eq!(*known, keys, "{aggregate}: {} has one shape", code(&err));
    }
}

#[test]
fn every_code_is_the_serialised_tag_reads_back_as_itself_and_has_one_shape() {
    let mut shapes = BTreeMap::new();
    check("account", accounts(), AccountError::code, &mut shapes);
    check("order", orders(), OrderError::code, &mut shapes);
    check("deposit", deposits(), DepositError::code, &mut shapes);
    check("wallet", wallets(), WalletError::code, &mut shapes);
    check(
        "price list",
        price_lists(),
        PriceListError::code,
        &mut shapes,
    );
    check(
        "maintenance",
        maintenance(),
        MaintenanceError::code,
        &mut shapes,
    );
    check("quote", quotes(), QuoteError::code, &mut shapes);
    for code in shapes.keys() {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
    assert_eq!(shapes.len(), 41, "a sample of every refusal");
}

#[test]
fn a_quote_s_zero_energy_is_an_order_s_field_refusal_as_it_reads_back() {
    let zero = QuoteError::Field(FieldError::ZeroQuantity {
        field: "energy".into(),
    });
    let refusal = OrderError::from(zero.clone());
    assert_eq!(
        refusal,
        OrderError::Field(FieldError::ZeroQuantity {
            field: "energy".into()
        })
    );
    let stored = serde_json::to_value(&refusal).unwrap();
    assert_eq!(stored, serde_json::to_value(&zero).unwrap());
    assert_eq!(
        serde_json::from_value::<OrderError>(stored).unwrap(),
        refusal
    );
}

#[test]
fn errors_name_what_was_wrong() {
    let err = AccountError::InsufficientFunds {
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
    let err = OrderError::from(transition());
    assert_eq!(
        err.to_string(),
        "ConfirmDelegation is not allowed while Placed"
    );
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        serde_json::json!({"code": "invalid_transition", "state": "Placed", "command": "ConfirmDelegation"})
    );
    let err = WalletError::from(FieldError::TextRequired {
        field: "key_ref".into(),
    });
    assert_eq!(err.to_string(), "key_ref must not be empty");
    assert_eq!(err.code(), "text_required");
}

#[test]
fn value_types_have_parse_errors_of_their_own() {
    assert_eq!(
        TronAddress::parse("TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsF"),
        Err(AddressError::BadChecksum)
    );
    assert_eq!(
        TronAddress::parse("420000000000000000000000000000000000000000"),
        Err(AddressError::WrongVersion(0x42))
    );
    let err = OrderId::parse("").unwrap_err();
    assert_eq!((err.kind, err.code()), (IdKind::Order, "invalid_id"));
    assert_eq!(err.to_string(), "invalid Order id: is empty");
    let err = "2h".parse::<DurationTier>().unwrap_err();
    assert_eq!(err.code(), "duration_not_offered");
    assert_eq!(
        err.to_string(),
        "duration \"2h\" is not offered (1h, 1d, 3d, 7d, 14d or 30d)"
    );
    let err = super::pricing::PriceTable::new(0, 1).unwrap_err();
    assert_eq!(err.code(), "invalid_price_table");
}
