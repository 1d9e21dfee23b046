//! Bad input reaching the bus: typed errors, and no event stored.

use std::collections::BTreeSet;

use chrono::Utc;
use engine::domain::account::{Account, AccountCommand};
use engine::domain::ids::AccountId;
use engine::domain::order::{Order, OrderCommand, OrderPolicy};
use engine::domain::{Asset, DomainError, DurationTier, PriceTable, TronAddress};
use engine::store::{Actor, CommandBus, CommandMetadata};
use engine::testing::TestDb;
use sqlx::PgPool;

const POOL_WALLET: &str = "TJAAinkKN2h9KxtBZXw6SyL7HwCQXnzFsE";
const CUSTOMER: &str = "TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zru";

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
        let out = bus
            .execute(&format!("order-{i}"), cmd, meta())
            .await
            .unwrap();
        let err: DomainError = out.result.expect_err(code);
        assert_eq!(err.code(), code);
    }
    assert_eq!(events(&db.pool).await, 0);
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
    // Commands arrive as JSON from the edges; what cannot be a valid command never reaches the bus.
    let bad = [
        r#"{"ReserveFunds":{"order_id":"o1","asset":"TRX","amount":0}}"#,
        r#"{"ReserveFunds":{"order_id":"o1","asset":"TRX","amount":-5}}"#,
        r#"{"ReserveFunds":{"order_id":"o1","asset":"TRX","amount":99999999999999999999}}"#,
        r#"{"ReserveFunds":{"order_id":"o1","asset":"BTC","amount":5}}"#,
    ];
    for json in bad {
        assert!(
            serde_json::from_str::<AccountCommand>(json).is_err(),
            "parsed {json}"
        );
    }
    let order_bad = [
        // A duration between the tiers.
        r#"{"PlaceOrder":{"account_id":"tg:1","receiver":"TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zru","energy":65000,"duration":"2h","asset":"TRX","max_price":null,"at":"2026-01-01T00:00:00Z"}}"#,
        // A receiver with a broken checksum, and one with the wrong version byte.
        r#"{"PlaceOrder":{"account_id":"tg:1","receiver":"TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zrv","energy":65000,"duration":"1d","asset":"TRX","max_price":null,"at":"2026-01-01T00:00:00Z"}}"#,
        r#"{"PlaceOrder":{"account_id":"tg:1","receiver":"423c9b65b212316904572826240224750eccce29a2","energy":65000,"duration":"1d","asset":"TRX","max_price":null,"at":"2026-01-01T00:00:00Z"}}"#,
    ];
    for json in order_bad {
        assert!(
            serde_json::from_str::<OrderCommand>(json).is_err(),
            "parsed {json}"
        );
    }
    let good = r#"{"PlaceOrder":{"account_id":"tg:1","receiver":"TFVfhkyJAULWQbHMgVfgbkmgeGBkHo5zru","energy":65000,"duration":"1d","asset":"TRX","max_price":null,"at":"2026-01-01T00:00:00Z"}}"#;
    assert!(serde_json::from_str::<OrderCommand>(good).is_ok());
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
