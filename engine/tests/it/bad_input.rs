//! Bad input reaching the bus: typed errors, and no event stored (only the refusal, in the
//! command log, so that the command id keeps its answer).

use std::collections::BTreeSet;

use chrono::Utc;
use engine::domain::account::{Account, AccountCommand};
use engine::domain::ids::AccountId;
use engine::domain::order::{Order, OrderCommand, OrderPolicy};
use engine::domain::{
    AddressError, Asset, DurationError, DurationTier, OrderError, PriceTable, TronAddress,
    UnknownAsset,
};
use engine::store::{Actor, CommandBus, CommandMetadata};
use engine::testing::TestDb;
use sqlx::PgPool;

const POOL_WALLET: &str = "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE";
const CUSTOMER: &str = "TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zru";
/// CUSTOMER's 20-byte account hash behind a version byte of 0x42 instead of 0x41, in both forms
/// (the base58check one with a valid checksum).
const WRONG_VERSION_HEX: &str = "423c9b65b212316904572826240224750eccce29a2";
const WRONG_VERSION_BASE58: &str = "TeqGgsGaseoPE2RShv115t3UGmSgzqcGSe";
/// CUSTOMER with its last character changed.
const BAD_CHECKSUM: &str = "TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zrv";

fn policy() -> OrderPolicy {
    OrderPolicy {
        prices: PriceTable::sample(),
        pool_wallets: BTreeSet::from([TronAddress::parse(POOL_WALLET).unwrap()]),
        ..OrderPolicy::default()
    }
}

fn place(receiver: &str, energy: u64, max_price: Option<u64>) -> OrderCommand {
    OrderCommand::PlaceOrder {
        account_id: AccountId::parse("tg:1").unwrap(),
        receiver: TronAddress::parse(receiver).unwrap(),
        energy,
        duration: DurationTier::OneDay,
        asset: Asset::Trx,
        max_price,
        at: Utc::now(),
    }
}

async fn events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(Actor::new("bot", "bot"))
}

#[tokio::test]
async fn an_order_to_one_of_our_pool_wallets_or_outside_the_limits_is_refused_and_stores_nothing() {
    let db = TestDb::new().await;
    let bus = CommandBus::<Order>::new(db.pool.clone(), policy());
    let (min, max) = (
        PriceTable::sample().min_energy(),
        PriceTable::sample().max_energy(),
    );
    assert!(min > 1);
    let cases = [
        (place(POOL_WALLET, 65_000, None), "receiver_is_pool_wallet"),
        (place(CUSTOMER, 0, None), "zero_quantity"),
        (place(CUSTOMER, min - 1, None), "energy_below_minimum"),
        (place(CUSTOMER, max + 1, None), "energy_above_maximum"),
        (place(CUSTOMER, 65_000, Some(1)), "price_above_limit"),
    ];
    for (i, (cmd, code)) in cases.into_iter().enumerate() {
        let meta = meta();
        let command_id = meta.command_id;
        let out = bus.execute(&format!("order-{i}"), cmd, meta).await.unwrap();
        let err: OrderError = out.result.expect_err(code);
        assert_eq!(err.code(), code);
        // What is stored is the refusal itself, under the command's id (docs/event-store.md).
        let (command_type, outcome): (String, serde_json::Value) =
            sqlx::query_as("SELECT command_type, outcome FROM command_log WHERE command_id = $1")
                .bind(command_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(command_type, "PlaceOrder");
        let logged: OrderError = serde_json::from_value(outcome["rejected"].clone())
            .unwrap_or_else(|e| panic!("{outcome} is not a logged rejection: {e}"));
        assert_eq!(logged, err);
    }
    assert_eq!(events(&db.pool).await, 0);
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(logged, 5, "one command-log row per refusal, nothing else");
    // The same order within the limits goes through.
    let out = bus
        .execute("order-ok", place(CUSTOMER, 65_000, None), meta())
        .await
        .unwrap();
    assert!(out.is_accepted(), "{:?}", out.result);
    assert!(events(&db.pool).await > 0);
}

#[tokio::test]
async fn malformed_input_fails_to_parse_into_a_command_at_all() {
    // Commands arrive as JSON from the edges; what cannot be a valid command never reaches the
    // bus, and the parse error says what was wrong with which value.
    let bad = [
        (
            r#"{"ReserveFunds":{"order_id":"o1","asset":"TRX","amount":0}}"#,
            "amount must be greater than zero",
        ),
        (
            r#"{"ReserveFunds":{"order_id":"o1","asset":"TRX","amount":-5}}"#,
            "amount must not be negative",
        ),
        (
            r#"{"ReserveFunds":{"order_id":"o1","asset":"TRX","amount":99999999999999999999}}"#,
            "expected a whole number of the asset's smallest unit",
        ),
        (
            r#"{"ReserveFunds":{"order_id":"o1","asset":"BTC","amount":5}}"#,
            "unknown variant `BTC`, expected `TRX` or `USDT`",
        ),
    ];
    for (json, says) in bad {
        let err = serde_json::from_str::<AccountCommand>(json)
            .map(|c| panic!("parsed {json} into {c:?}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{json}: {err}");
    }
    let place = |receiver: &str, duration: &str| {
        format!(
            r#"{{"PlaceOrder":{{"account_id":"tg:1","receiver":"{receiver}","energy":65000,"duration":"{duration}","asset":"TRX","max_price":null,"at":"2026-01-01T00:00:00Z"}}}}"#
        )
    };
    let order_bad = [
        // A duration between the tiers.
        (
            place(CUSTOMER, "2h"),
            DurationError::DurationNotOffered {
                duration: "2h".into(),
            }
            .to_string(),
        ),
        // A receiver with a broken checksum, and ones with the wrong version byte.
        (
            place(BAD_CHECKSUM, "1d"),
            AddressError::BadChecksum.to_string(),
        ),
        (
            place(WRONG_VERSION_HEX, "1d"),
            AddressError::WrongVersion(0x42).to_string(),
        ),
        (
            place(WRONG_VERSION_BASE58, "1d"),
            AddressError::WrongVersion(0x42).to_string(),
        ),
    ];
    for (json, says) in order_bad {
        let err = serde_json::from_str::<OrderCommand>(&json)
            .map(|c| panic!("parsed {json} into {c:?}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&says), "{json}: {err}");
    }
    assert!(serde_json::from_str::<OrderCommand>(&place(CUSTOMER, "1d")).is_ok());

    // The domain's own parsers, which the API uses, give each value type's own typed error.
    assert_eq!("BTC".parse::<Asset>(), Err(UnknownAsset("BTC".into())));
    for wrong_version in [WRONG_VERSION_HEX, WRONG_VERSION_BASE58] {
        assert_eq!(
            TronAddress::parse(wrong_version),
            Err(AddressError::WrongVersion(0x42)),
            "{wrong_version}"
        );
    }
    assert_eq!(
        TronAddress::parse(BAD_CHECKSUM),
        Err(AddressError::BadChecksum)
    );
    assert_eq!(
        "2h".parse::<DurationTier>(),
        Err(DurationError::DurationNotOffered {
            duration: "2h".into()
        })
    );
}

#[tokio::test]
async fn a_command_that_names_another_aggregate_is_refused_before_anything_is_written() {
    let db = TestDb::new().await;
    let bus = CommandBus::<Account>::new(db.pool.clone(), ());
    let open = AccountCommand::OpenAccount {
        account_id: AccountId::parse("tg:1").unwrap(),
        at: Utc::now(),
    };
    let err = bus.execute("tg:2", open, meta()).await.unwrap_err();
    assert!(matches!(err, engine::Error::WrongAggregate { .. }), "{err}");
    assert_eq!(events(&db.pool).await, 0);
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(logged, 0);
}
